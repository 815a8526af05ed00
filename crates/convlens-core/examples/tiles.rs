//! Times the explorer's live tiles (every map of a layer at the size the page shows it) with
//! the fast path and the scalar reference, side by side, for each conv of a model:
//!   cargo run --release -p convlens-core --example tiles -- MODEL.onnx [RUNS] [THREADS]
//!   node scripts/wasi-test.mjs target/wasm32-wasip1/release/examples/tiles.wasm MODEL.onnx 20

use convlens_core::exec::{cpu_backend, run, CpuKind, Keep};
use convlens_core::graph::Op;
use convlens_core::{par, viz, Tensor};

/// The page's tile side for a layer of `channels` maps (`components::feature_grid::tile_px`
/// at a device pixel ratio of 1).
fn live_side(channels: usize) -> usize {
    ((440.0 * 440.0 / (channels as f64).max(1.0)).sqrt().clamp(28.0, 140.0)) as usize
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = std::time::Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: tiles MODEL.onnx [RUNS] [THREADS]")?;
    let runs: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(20).max(1);
    par::set_threads(args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1));
    let graph = convlens_core::onnx::import(&std::fs::read(path)?, "model")?;
    let mut backend = cpu_backend(CpuKind::Simd, &graph)?;
    let n: usize = graph.shape(graph.input).iter().product();
    let x = Tensor::new(graph.shape(graph.input).to_vec(), (0..n).map(|i| ((i % 251) as f32 / 125.0 - 1.0) * 1.5).collect())?;
    let out = run(&graph, backend.as_mut(), &x, &Keep::All, &mut |_, _| {})?;
    println!("{} thread(s), medians of {runs}", par::threads());
    println!("{:<28} {:>16} {:>6} {:>10} {:>8} {:>6}", "layer", "shape", "side", "reference", "fast", "ratio");
    let (mut sum_ref, mut sum_fast) = (0.0, 0.0);
    for node in graph.nodes.iter().filter(|n| matches!(n.op, Op::Conv { .. } | Op::Concat { .. })) {
        let t = &out.values[&node.output];
        let side = live_side(t.shape.get(1).copied().unwrap_or(1));
        let r = median_ms(runs, || drop(std::hint::black_box(viz::tiles_reference(&t.data, &t.shape, side, false))));
        let f = median_ms(runs, || drop(std::hint::black_box(viz::tiles(&t.data, &t.shape, side, false))));
        sum_ref += r;
        sum_fast += f;
        println!("{:<28} {:>16} {:>6} {:>8.3}ms {:>6.3}ms {:>5.2}x", node.name, format!("{:?}", &t.shape[1..]), side, r, f, f / r);
    }
    println!("{:<28} {:>16} {:>6} {:>8.3}ms {:>6.3}ms {:>5.2}x", "all of them", "", "", sum_ref, sum_fast, sum_fast / sum_ref);
    Ok(())
}
