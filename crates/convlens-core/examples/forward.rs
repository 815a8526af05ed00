//! Times forward passes of an .onnx model with the core alone (no CLI dependencies), so the
//! same program runs natively and as wasm32-wasip1 under Node (V8's wasm SIMD, as in Chromium):
//!   cargo run --release -p convlens-core --example forward -- MODEL.onnx [RUNS] [ref|gemm|simd] [layers] [keep-all]
//! (`keep-all`: every layer's output kept, as the app's explorer keeps them)
//!   node scripts/wasi-test.mjs target/wasm32-wasip1/release/examples/forward.wasm MODEL.onnx 5

use convlens_core::exec::{cpu_backend, run, CpuKind, Keep};
use convlens_core::{analytics::analyze, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: forward MODEL.onnx [RUNS] [ref|gemm|simd]")?;
    let runs: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let kind = match args.get(3).map(|s| s.as_str()) {
        Some("ref") => CpuKind::Reference,
        Some("gemm") => CpuKind::Gemm,
        _ => CpuKind::Simd,
    };
    let keep = if args.iter().skip(4).any(|a| a == "keep-all") { Keep::All } else { Keep::Outputs };
    let graph = convlens_core::onnx::import(&std::fs::read(path)?, "model")?;
    let mut backend = cpu_backend(kind, &graph)?;
    let n: usize = graph.shape(graph.input).iter().product();
    let x = Tensor::new(graph.shape(graph.input).to_vec(), (0..n).map(|i| ((i % 251) as f32 / 125.0 - 1.0) * 1.5).collect())?;
    run(&graph, backend.as_mut(), &x, &keep, &mut |_, _| {})?;
    let mut layer_ms = vec![0.0; graph.nodes.len()];
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let out = run(&graph, backend.as_mut(), &x, &keep, &mut |_, _| {})?;
        layer_ms.iter_mut().zip(&out.node_ms).for_each(|(a, b)| *a += b / runs.max(1) as f64);
        times.push(out.total_ms);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let macs = analyze(&graph).macs as f64;
    let median = times[times.len() / 2];
    println!(
        "{path}: {} median {median:.1} ms (min {:.1}, max {:.1}, {} runs), {:.1} GFLOP/s",
        backend.name(),
        times[0],
        times[times.len() - 1],
        times.len(),
        2.0 * macs / (median * 1e6)
    );
    if args.iter().skip(4).any(|a| a == "layers") {
        let mut idx: Vec<usize> = (0..graph.nodes.len()).collect();
        idx.sort_by(|&a, &b| layer_ms[b].total_cmp(&layer_ms[a]));
        for &i in idx.iter().take(12) {
            println!("  {:<28} {:<18} {:>7.2} ms", graph.nodes[i].name, graph.nodes[i].op_type, layer_ms[i]);
        }
    }
    Ok(())
}
