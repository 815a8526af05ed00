//! Times feature visualization with the core alone, so the same program runs natively and as
//! wasm32-wasip1 under Node (V8's wasm SIMD, as in the browser's worker):
//!   cargo run --release -p convlens-core --example visualize -- MODEL.onnx LAYER CHANNEL [STEPS] [SIZE]
//!   node scripts/wasi-test.mjs target/wasm32-wasip1/release/examples/visualize.wasm MODEL.onnx LAYER CHANNEL 256 128

use convlens_core::exec::{cpu_backend, CpuKind};
use convlens_core::visualize::{channel_objective, pre_relu, Settings, Visualizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: visualize MODEL.onnx LAYER CHANNEL [STEPS] [SIZE]";
    let (path, layer, channel) = (args.get(1).ok_or(usage)?, args.get(2).ok_or(usage)?, args.get(3).ok_or(usage)?.parse::<usize>()?);
    let steps: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(256);
    let size: Option<usize> = args.get(5).map(|s| s.parse()).transpose()?;
    let graph = convlens_core::onnx::import(&std::fs::read(path)?, "model")?.unfused();
    let value = graph.find_value(layer).ok_or("no such layer")?;
    let (target, ch) = pre_relu(&graph, value, channel);
    let graph = graph.up_to(target, size)?;
    let mut backend = cpu_backend(CpuKind::Simd, &graph)?;
    let mut vis = Visualizer::new(graph.shape(graph.input), graph.preprocess.clone(), Settings { steps, ..Default::default() })?;
    let mut objective = |x: &convlens_core::Tensor| channel_objective(&graph, backend.as_mut(), target, ch, x);
    let t0 = web_time::Instant::now();
    let start = objective(&vis.input())?.0;
    let mut end = start;
    for _ in 0..steps {
        end = vis.step(&mut objective)?;
    }
    let s = t0.elapsed().as_secs_f64();
    println!("{layer} channel {channel} at {} px: {start:.2} -> {end:.2} in {steps} steps, {s:.1} s ({:.1} steps/s)", graph.image_side()?, steps as f64 / s);
    Ok(())
}
