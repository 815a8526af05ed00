//! One GEMM shape (a 1x1 convolution's: M output channels, K input channels, N pixels) timed
//! with its operands in cache and again after 64 MB of other memory has been walked, so the
//! layer's cold reads show as they do in a pass: the squeezes of SqueezeNet are memory-bound
//! there, not bound by their FMAs.
//!   cargo run --release -p convlens-core --example gemm_shape M K N RUNS
//!   (SqueezeNet's conv1: 16 64 3025 300)
use convlens_core::kernels::gemm::{gemm, DenseB, Epilogue, PackedA};
use std::time::Instant;

fn median(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("M K N RUNS, as numbers")).collect();
    let [m, k, n, runs] = args[..] else {
        eprintln!("usage: gemm_shape M K N RUNS");
        std::process::exit(2);
    };
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let packed = PackedA::from_row_major(m, k, &a);
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect();
    let bias = vec![0.1f32; m];
    let mut c = vec![0.0f32; m * n];
    let mut scratch = Vec::new();
    let mut pass = |c: &mut Vec<f32>| {
        let t = Instant::now();
        gemm(&packed, &DenseB { k, n, data: &b }, c, n, Epilogue { bias: Some(&bias), relu: true }, &mut scratch);
        t.elapsed().as_secs_f64() * 1e3
    };
    let hot = median((0..runs.max(1)).map(|_| pass(&mut c)).collect());
    let mut other = vec![0u8; 64 << 20];
    let cold = median(
        (0..runs.clamp(1, 50))
            .map(|r| {
                for i in (0..other.len()).step_by(64) {
                    other[i] = other[i].wrapping_add(r as u8);
                }
                pass(&mut c)
            })
            .collect(),
    );
    let gflops = |ms: f64| 2.0 * (m * k * n) as f64 / (ms * 1e6);
    println!(
        "M={m} K={k} N={n}: in cache median {:.3} ms ({:.1} GFLOP/s, min {:.3}); after 64 MB elsewhere median {:.3} ms ({:.1} GFLOP/s, min {:.3}) [{}]",
        hot.0,
        gflops(hot.0),
        hot.1,
        cold.0,
        gflops(cold.0),
        cold.1,
        other[12345] // keeps the walk from being optimised away
    );
}
