//! The wgpu backend on the browser's WebGPU (headless Chromium; SwiftShader here), every layer
//! against the CPU in the same wasm instance. The CPU paths are themselves held to
//! onnxruntime (natively and as wasm simd128), so this closes the loop for WebGPU in a browser:
//! Tint, not naga, compiles the shaders, and buffers map through the browser's event loop.
#![cfg(target_arch = "wasm32")]

use convlens_core::archs::{builtin, Weights};
use convlens_core::exec::{cpu_backend, run, CpuKind, Keep};
use convlens_testkit::assert_layers_close;
use convlens_core::{Graph, Tensor};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Browser WebGPU vs the CPU per layer, relative to the layer's scale: the same budget as
/// lavapipe vs onnxruntime (summation order and exp/pow differ in the last bits).
const BROWSER_GPU_LAYER_TOL: f32 = 1e-4;

/// Tile colours drawn on the GPU vs `viz::tiles`: block means may round one level apart.
const TILE_RGB_TOL: u8 = 2;

const SQUEEZENET: &[u8] = include_bytes!("../../../../shared/models/squeezenet1.1.onnx");

/// A deterministic image-like input (values in the range preprocessing produces).
fn input_for(graph: &Graph) -> Tensor {
    let shape = graph.shape(graph.input).to_vec();
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 4.0).collect();
    Tensor::new(shape, data).unwrap()
}

/// Runs `graph` on WebGPU (binding size capped at `limit` when given) and on the CPU `kind`,
/// compares every layer, and returns how many were compared.
async fn every_layer(graph: &Graph, kind: CpuKind, limit: Option<u64>) -> usize {
    let options = convlens_gpu::PlanOptions { binding_limit: limit, ..Default::default() };
    every_layer_planned(graph, kind, options, BROWSER_GPU_LAYER_TOL).await
}

async fn every_layer_planned(graph: &Graph, kind: CpuKind, options: convlens_gpu::PlanOptions, tol: f32) -> usize {
    let x = input_for(graph);
    let gpu = convlens_gpu::Gpu::new().await.expect("headless Chromium exposes WebGPU (--enable-unsafe-webgpu)");
    let model = convlens_gpu::GpuModel::plan(gpu, graph, options).unwrap_or_else(|e| panic!("{}: {e}", graph.name));
    let outputs: Vec<usize> = graph.nodes.iter().map(|n| n.output).collect();
    let got = model.run_async(&x, &outputs, convlens_gpu::Timing::Off).await.unwrap_or_else(|e| panic!("{}: {e}", graph.name));
    // The first layer's tiles as the explorer's live mode gets them, drawn by the browser's GPU.
    let first = graph.nodes[0].output;
    let tiles = model.tiles_async(first, 28, false).await.unwrap();
    let want = convlens_core::viz::tiles_reference(&got.values[&first].data, graph.shape(first), 28, false);
    assert_eq!((tiles.tile_h, tiles.tile_w), (want.tile_h, want.tile_w));
    let worst = tiles.rgba.iter().zip(&want.rgba).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    assert!(worst <= TILE_RGB_TOL, "{}: tile colour off by {worst}", graph.name);
    let mut cpu = cpu_backend(kind, graph).unwrap();
    let want = run(graph, cpu.as_mut(), &x, &Keep::All, &mut |_, _| {}).unwrap();
    let mut gpu_values = got.values;
    let who = format!("{} vs {}", model.adapter(), cpu.name());
    let mut from_gpu = |v| gpu_values.remove(&v).unwrap();
    assert_layers_close(graph, &mut from_gpu, &mut |v| want.get(v).cloned(), tol, &who)
}

/// With both conv kernel sets, whichever this browser's adapter would pick: Tint compiles each.
#[wasm_bindgen_test]
async fn squeezenet_every_layer_on_browser_webgpu() {
    let graph = convlens_core::onnx::import(SQUEEZENET, "squeezenet1.1").unwrap();
    for conv in [convlens_gpu::ConvKernels::Tiled, convlens_gpu::ConvKernels::Direct] {
        let options = convlens_gpu::PlanOptions { conv, ..Default::default() };
        let n = every_layer_planned(&graph, CpuKind::Reference, options, BROWSER_GPU_LAYER_TOL).await;
        assert!(n >= 40, "{conv:?}: {n} layers compared");
    }
}

/// f16 weights where the browser's adapter has shader-f16: the same every-layer check with the
/// f16 budget (measured worst 2.5e-3 on lavapipe). Headless Chromium's SwiftShader has no
/// shader-f16, so here it logs that it skipped; on a browser with a GPU it runs.
#[wasm_bindgen_test]
async fn squeezenet_f16_weights_on_browser_webgpu() {
    let gpu = convlens_gpu::Gpu::new().await.unwrap();
    if !gpu.has_f16() {
        wasm_bindgen_test::console_log!("skipped: this browser's WebGPU adapter has no shader-f16");
        return;
    }
    let graph = convlens_core::onnx::import(SQUEEZENET, "squeezenet1.1").unwrap();
    let options = convlens_gpu::PlanOptions { weights: convlens_gpu::WeightPrecision::F16, ..Default::default() };
    let n = every_layer_planned(&graph, CpuKind::Reference, options, 1e-2).await;
    assert!(n >= 40, "{n} layers compared");
}

/// The built-in GoogLeNet with its two auxiliary heads (seeded weights): LRN, ceil-mode pools,
/// the in-place concatenations, three classifiers.
#[wasm_bindgen_test]
async fn googlenet_with_aux_heads_every_layer_on_browser_webgpu() {
    let graph = builtin("googlenet", Weights::Seeded(3)).unwrap();
    let n = every_layer(&graph, CpuKind::Reference, None).await;
    assert!(n >= 100, "{n} layers compared");
}

/// VGG16 (seeded): fc6's 411 MB weight is four times a browser's default 128 MiB storage
/// binding, so it runs split into row chunks. The scalar reference would take minutes on
/// 15.5 G multiply-adds as wasm; the simd128 path stands in (held to onnxruntime elsewhere).
#[wasm_bindgen_test]
async fn vgg16_with_fc6_split_every_layer_on_browser_webgpu() {
    let graph = builtin("vgg16", Weights::Seeded(5)).unwrap();
    let n = every_layer(&graph, CpuKind::Simd, Some(128 << 20)).await;
    assert!(n >= 24, "{n} layers compared");
}

/// Gradients on the browser's WebGPU (Tint compiles the backward kernels): d class score / d
/// input, plain and guided, and d score / d the last Inception output, for the built-in
/// GoogLeNet with its aux heads (LRN, ceil-mode pools, branches adding up where they meet,
/// in-place concat slices), against the CPU backward in the same wasm instance, as the
/// relative L2 error that the native gradient tests use (GRAD_F32_TOL).
#[wasm_bindgen_test]
async fn googlenet_gradients_on_browser_webgpu() {
    use convlens_core::grad::{backward, explain, ReluRule};
    let graph = builtin("googlenet", Weights::Seeded(3)).unwrap();
    // Pseudo-random, not `input_for`'s periodic pattern: that makes exact ties in max-pool
    // windows, where a GPU that sums in another order picks another winner.
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut x = input_for(&graph);
    for v in x.data.iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *v = ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0;
    }
    let gpu = convlens_gpu::Gpu::new().await.unwrap();
    let model = convlens_gpu::GpuModel::plan(gpu, &graph, Default::default()).unwrap();
    model.run_async(&x, &graph.outputs, convlens_gpu::Timing::Off).await.unwrap();
    let mut cpu = cpu_backend(CpuKind::Simd, &graph).unwrap();
    let want = run(&graph, cpu.as_mut(), &x, &Keep::All, &mut |_, _| {}).unwrap();
    let kept = |v: usize| want.get(v);
    let get = explain::f32_source(&graph, &x, &kept);
    let score = explain::score_value(&graph).unwrap();
    let layer = explain::default_layer(&graph).unwrap();
    let seed = explain::seed(&graph, score, 281).unwrap();
    for (until, rule) in [(None, ReluRule::Plain), (None, ReluRule::Guided), (Some(layer), ReluRule::Plain)] {
        let at = until.unwrap_or(graph.input);
        let got = model.backward_async(&graph, score, &seed, until, &[], rule).await.unwrap_or_else(|e| panic!("{e}"));
        let want = backward(&graph, &get, score, seed.clone(), until, &[], rule).unwrap();
        let (g, w) = (&got[&at].data, &want[&at].data);
        let diff: f64 = g.iter().zip(w).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        let norm: f64 = w.iter().map(|b| (*b as f64).powi(2)).sum();
        let err = (diff / norm).sqrt() as f32;
        assert!(norm > 0.0, "the CPU's d/d {} is all zero", graph.value(at).name);
        wasm_bindgen_test::console_log!("d score / d {} ({rule:?}): {err:e} off the CPU", graph.value(at).name);
        assert!(err <= convlens_testkit::GRAD_F32_TOL, "d score / d {} ({rule:?}) on {}: {err:e} off the CPU", graph.value(at).name, model.adapter());
    }
}
