//! Benchmark: what a pass costs beyond its kernels on the browser's WebGPU, where every awaited
//! submission is a round trip through the event loop. A small network (many layers, little
//! arithmetic, like a real GPU's view of GoogLeNet) is run as the app's worker runs it
//! (`run_reporting` with progress) and with no progress wanted (one submission), medians side by
//! side; its outputs are held to the CPU's first. Not part of `scripts/test.sh`; run:
//!   WASM_BINDGEN_TEST_TIMEOUT=300 CHROMEDRIVER=/usr/bin/chromedriver cargo test --release \
//!     --target wasm32-unknown-unknown -p convlens-gpu --test browser_pass_overhead -- --nocapture
#![cfg(target_arch = "wasm32")]

use convlens_core::archs::{Net, Weights};
use convlens_core::exec::{cpu_backend, run, CpuKind, Keep};
use convlens_core::graph::Preprocess;
use convlens_core::{Graph, Tensor};
use convlens_gpu::Timing;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Browser WebGPU vs the CPU at the output, relative to its scale (as in `parity_browser`).
const OUTPUT_TOL: f32 = 1e-4;
const PASSES: usize = 60;

/// Twelve 3x3 convs of 8 channels on a 14x14 map, then pooled: 14 dispatches of a few
/// microseconds' arithmetic each.
fn small_deep_net() -> Graph {
    let mut n = Net::new(Weights::Seeded(7));
    let input = n.b.input("data", vec![1, 3, 14, 14]).unwrap();
    let mut x = n.conv("conv0", input, 8, 3, 1, 1, true).unwrap();
    for i in 1..12 {
        x = n.conv(&format!("conv{i}"), x, 8, 3, 1, 1, true).unwrap();
    }
    x = n.global_avg_pool("pool", x).unwrap();
    x = n.flatten("flatten", x).unwrap();
    n.finish("small deep net", input, vec![x], Preprocess::imagenet_rgb())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[wasm_bindgen_test]
async fn pass_overhead_with_and_without_progress() {
    let graph = small_deep_net();
    let shape = graph.shape(graph.input).to_vec();
    let x = Tensor::new(shape.clone(), (0..shape.iter().product::<usize>()).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect()).unwrap();
    let gpu = convlens_gpu::Gpu::new().await.expect("headless Chromium exposes WebGPU (--enable-unsafe-webgpu)");
    let model = convlens_gpu::GpuModel::plan_checked(gpu, &graph, Default::default()).await.unwrap();
    let out = graph.outputs[0];
    let mut cpu = cpu_backend(CpuKind::Reference, &graph).unwrap();
    let want = run(&graph, cpu.as_mut(), &x, &Keep::Outputs, &mut |_, _| {}).unwrap();
    let want = want.get(out).unwrap();
    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut reports = 0;
    for i in 0..=PASSES {
        for progress in [true, false] {
            let t0 = web_time::Instant::now();
            let mut count = 0;
            let mut report = |_: usize, _: usize| count += 1;
            let r = model.run_reporting(&x, &graph.outputs, Timing::Off, progress.then_some(&mut report as &mut dyn FnMut(usize, usize))).await.unwrap();
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            let worst = r.values[&out].data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
            assert!(worst <= OUTPUT_TOL, "output off by {worst} of its scale");
            // The first pass of each kind compiles pipelines and warms up.
            if i > 0 {
                if progress {
                    with.push(ms);
                    reports = count;
                } else {
                    without.push(ms);
                }
            }
        }
    }
    let (a, b) = (median(with), median(without));
    console_log!(
        "{}: {} dispatches a pass; median of {PASSES}: {a:.2} ms with progress ({reports} report(s), the last pass's), {b:.2} ms without: {:.2}x",
        model.adapter(),
        graph.nodes.len(),
        a / b
    );
}
