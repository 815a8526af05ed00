//! One gradient body for every engine: the same backward pass through `Engine::backward` on the
//! scalar reference (the oracle, itself held to central differences in f64 by the core's
//! `gradients.rs`), packed GEMM, GEMM+Winograd, and WebGPU with f32 and f16 weights (lavapipe
//! in CI), at the input (saliency, guided backprop) and at Grad-CAM's layer.

use std::sync::Arc;

use convlens_core::exec::Keep;
use convlens_core::grad::explain;
use convlens_core::grad::ReluRule;
use convlens_core::graph::ValueId;
use convlens_core::{Graph, Tensor};
use convlens_engine::{BackwardRan, Engine, EngineKind};
use convlens_gpu::{PlanOptions, Timing, WeightPrecision};
use convlens_testkit::*;

/// Relative L2 error ||a - b|| / ||b||: a unit on the other side of a kink moves a few values'
/// gradient, a wrong index, stride or routing moves all of it (~1).
fn rel_l2(a: &[f32], b: &[f32]) -> f32 {
    let diff: f64 = a.iter().zip(b).map(|(p, q)| ((p - q) as f64).powi(2)).sum();
    let norm: f64 = b.iter().map(|q| (*q as f64).powi(2)).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt() as f32
}

fn tolerance(kind: EngineKind) -> f32 {
    match kind {
        EngineKind::WebGpu(WeightPrecision::F16) => GPU_F16_GRAD_TOL,
        _ => GRAD_F32_TOL,
    }
}

/// A seeded pseudo-random input in the range preprocessing gives. Not a periodic pattern:
/// that makes exact ties in max-pool windows, where engines that sum in another order pick
/// another winner and the whole window's gradient moves.
fn input_for(graph: &Graph) -> Tensor {
    let shape = graph.shape(graph.input).to_vec();
    let n: usize = shape.iter().product();
    let mut s = 0x9e3779b97f4a7c15u64;
    let data = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        })
        .collect();
    Tensor::new(shape, data).unwrap()
}

fn has_f16() -> bool {
    pollster::block_on(convlens_gpu::Gpu::new()).is_ok_and(|g| g.has_f16())
}

/// One walk to check: from `of` with `seed` back to `until` (None: the input) by `rule`.
struct Walk {
    of: ValueId,
    seed: Tensor,
    until: Option<ValueId>,
    rule: ReluRule,
}

fn engine(graph: &Arc<Graph>, kind: EngineKind, options: PlanOptions) -> Engine {
    match kind {
        EngineKind::WebGpu(weights) => Engine::gpu_blocking(graph.clone(), PlanOptions { weights, ..options }),
        _ => Engine::new_blocking(graph.clone(), kind, true),
    }
    .unwrap_or_else(|e| panic!("{}: {e}", kind.key()))
}

/// Every walk on every engine in `kinds` against the first, which is the oracle. Returns, per
/// engine after the oracle, where its backward passes ran.
fn every_engine(graph: &Arc<Graph>, walks: &[Walk], kinds: &[EngineKind], options: PlanOptions) -> Vec<Vec<BackwardRan>> {
    let x = input_for(graph);
    let f16 = has_f16();
    let mut oracle: Vec<Tensor> = Vec::new();
    let mut ran = Vec::new();
    for &kind in kinds {
        if kind == EngineKind::WebGpu(WeightPrecision::F16) && !f16 {
            eprintln!("{}: skipped, no shader-f16 on this device", kind.key());
            continue;
        }
        let e = engine(graph, kind, options);
        e.forward_blocking(&x, &Keep::All, Timing::Off).unwrap();
        let mut here = Vec::new();
        for (i, w) in walks.iter().enumerate() {
            let at = w.until.unwrap_or(graph.input);
            let g = e.backward_blocking(&x, w.of, &w.seed, w.until, w.rule).unwrap_or_else(|err| panic!("{}: {err}", kind.key()));
            let got = g.values.get(&at).unwrap_or_else(|| panic!("{}: no gradient at {}", kind.key(), graph.value(at).name)).clone();
            assert_eq!(got.shape, graph.shape(at), "{}", kind.key());
            match oracle.get(i) {
                None => {
                    assert!(got.data.iter().any(|&v| v != 0.0), "the oracle's d/d {} is all zero: the walk checks nothing", graph.value(at).name);
                    oracle.push(got);
                }
                Some(want) => {
                    let err = rel_l2(&got.data, &want.data);
                    if std::env::var_os("CONVLENS_PRINT_ERRORS").is_some() {
                        eprintln!("{} on {} ({}): d/d {} {:?}: {err:e}", graph.name, kind.key(), g.ran, graph.value(at).name, w.rule);
                    }
                    assert!(err <= tolerance(kind), "{} on {} ({}): d/d {} ({:?}) off the reference by {err:e}", graph.name, kind.key(), g.ran, graph.value(at).name, w.rule);
                    here.push(g.ran);
                }
            }
        }
        if !here.is_empty() {
            ran.push(here);
        }
    }
    ran
}

fn one_hot(graph: &Graph, v: ValueId, k: usize) -> Tensor {
    let mut t = Tensor::zeros(graph.shape(v)).unwrap();
    t.data[k] = 1.0;
    t
}

/// Saliency, guided backprop and Grad-CAM's layer for class `class` of a classifier.
fn class_walks(graph: &Graph, class: usize) -> Vec<Walk> {
    let of = explain::score_value(graph).unwrap();
    let layer = explain::default_layer(graph).unwrap();
    vec![
        Walk { of, seed: one_hot(graph, of, class), until: None, rule: ReluRule::Plain },
        Walk { of, seed: one_hot(graph, of, class), until: None, rule: ReluRule::Guided },
        Walk { of, seed: one_hot(graph, of, class), until: Some(layer), rule: ReluRule::Plain },
    ]
}

fn all_on_device(ran: &[Vec<BackwardRan>], gpu_engines: usize) {
    let on_gpu: Vec<&BackwardRan> = ran.iter().rev().take(gpu_engines).flatten().collect();
    assert!(on_gpu.iter().all(|r| **r == BackwardRan::Device), "{ran:?}");
}

#[test]
fn squeezenet_gradients_on_every_engine() {
    let graph = Arc::new(import(&shared_models().join("squeezenet1.1.onnx")));
    let ran = every_engine(&graph, &class_walks(&graph, 281), &EngineKind::ALL, PlanOptions::default());
    assert!(ran.len() >= 3, "{ran:?}");
    all_on_device(&ran, ran.len() - 2);
}

/// The zoo GoogLeNet graph: LRN, Inception concats whose inputs are channel slices of one
/// buffer, gradients adding up where the four branches meet, the FC head.
#[test]
fn googlenet_gradients_on_every_engine() {
    let graph = Arc::new(import(&shared_models().join("googlenet-synthetic.onnx")));
    let ran = every_engine(&graph, &class_walks(&graph, 281), &EngineKind::ALL, PlanOptions::default());
    assert!(ran.len() >= 3, "{ran:?}");
    all_on_device(&ran, ran.len() - 2);
}

/// The ops zoo from the pooled concat back to the input, fused and with its ReLUs as nodes:
/// grouped, dilated, strided and SAME convs with asymmetric pads, a folded and a standalone
/// BatchNorm, an Add of a broadcast constant, LRN of size 3, ceil-mode average pools with and
/// without pads in the count, a SAME max pool. From the output, the walk meets a Softmax and a
/// MatMul, which have no GPU backward: the engine says it ran on the CPU instead.
#[test]
fn ops_zoo_gradients_on_every_engine() {
    for graph in [import(&refs().join("ops-zoo.onnx")), import(&refs().join("ops-zoo.onnx")).unfused()] {
        let graph = Arc::new(graph);
        let gap = graph.values.iter().position(|v| v.name == "gap").expect("the ops zoo's concat");
        let n: usize = graph.shape(gap).iter().product();
        let seed = Tensor::new(graph.shape(gap).to_vec(), (0..n).map(|i| (i as f32 * 0.7).sin()).collect()).unwrap();
        let out = graph.outputs[0];
        let walks = [
            Walk { of: gap, seed: seed.clone(), until: None, rule: ReluRule::Plain },
            Walk { of: gap, seed, until: None, rule: ReluRule::Guided },
            Walk { of: out, seed: one_hot(&graph, out, 3), until: None, rule: ReluRule::Plain },
        ];
        let kinds = [EngineKind::Reference, EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)];
        let ran = every_engine(&graph, &walks, &kinds, PlanOptions::default());
        let gpu = ran.last().unwrap();
        assert_eq!(gpu[..2], [BackwardRan::Device, BackwardRan::Device]);
        assert!(matches!(&gpu[2], BackwardRan::HostAfterReading(why) if why.contains("no GPU backward")), "{:?}", gpu[2]);
    }
}

/// VGG16 (seeded weights) with storage bindings capped so fc6's weights span several chunks,
/// as on a browser's 128 MiB limit: Grad-CAM's walk back to conv5_3 adds the chunks' parts.
/// Against the CPU engine (the reference takes minutes here; the CPU is held to it above).
#[test]
fn vgg16_gradcam_with_fc6_in_chunks() {
    let graph = Arc::new(import(&refs().join("vgg16-seeded.onnx")));
    let walks: Vec<Walk> = class_walks(&graph, 281).into_iter().skip(2).collect();
    let options = PlanOptions { binding_limit: Some(32 << 20), ..Default::default() };
    let ran = every_engine(&graph, &walks, &[EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)], options);
    assert_eq!(ran, vec![vec![BackwardRan::Device]]);
}

/// A plan is kept per walk: asking again (as Grad-CAM does on every webcam frame) gives the
/// same gradient, and a new forward pass's activations are the ones the next walk reads
/// (saliency: SqueezeNet's gradient at its last conv is a constant of the global pool).
#[test]
fn a_kept_plan_reads_the_newest_pass() {
    let graph = Arc::new(import(&shared_models().join("squeezenet1.1.onnx")));
    let walk = &class_walks(&graph, 7)[0];
    let gpu = engine(&graph, EngineKind::WebGpu(WeightPrecision::F32), PlanOptions::default());
    let cpu = engine(&graph, EngineKind::Cpu, PlanOptions::default());
    let at = graph.input;
    let x1 = input_for(&graph);
    let x2 = Tensor::new(x1.shape.clone(), x1.data.iter().map(|v| -0.5 * v + 0.1).collect()).unwrap();
    let mut last = None;
    for x in [&x1, &x1, &x2] {
        gpu.forward_blocking(x, &Keep::All, Timing::Off).unwrap();
        cpu.forward_blocking(x, &Keep::All, Timing::Off).unwrap();
        let got = gpu.backward_blocking(x, walk.of, &walk.seed, walk.until, walk.rule).unwrap().values.remove(&at).unwrap();
        let want = cpu.backward_blocking(x, walk.of, &walk.seed, walk.until, walk.rule).unwrap().values.remove(&at).unwrap();
        assert!(rel_l2(&got.data, &want.data) <= GRAD_F32_TOL);
        if let Some((px, pg)) = last.replace((x.data.clone(), got.data.clone())) {
            assert_eq!(px == x.data, pg == got.data, "same input, same gradient; a new input, a new one");
        }
    }
}

/// ResNet-50 (seeded; 16 residual joins): each block's input gets its gradient from the join
/// and from the block's first conv, added on the GPU as on the CPU. Against the CPU engine
/// (itself held to the reference above).
#[test]
fn resnet50_gradients_on_the_gpu() {
    let graph = Arc::new(import(&refs().join("resnet50-seeded.onnx")));
    let walks: Vec<Walk> = class_walks(&graph, 7).into_iter().take(1).collect();
    let ran = every_engine(&graph, &walks, &[EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)], PlanOptions::default());
    assert_eq!(ran, vec![vec![BackwardRan::Device]]);
}

/// ShuffleNet v1 (seeded): its channel shuffles are rank-5 Transposes, whose GPU backward is
/// the same kernel with the inverse permutation; grouped and depthwise convs; Sum joins.
#[test]
fn shufflenet_gradients_on_the_gpu() {
    let graph = Arc::new(import(&refs().join("shufflenet-seeded.onnx")));
    assert!(graph.nodes.iter().filter(|n| n.op_type == "Transpose").count() >= 16);
    let walks: Vec<Walk> = class_walks(&graph, 7).into_iter().take(1).collect();
    let ran = every_engine(&graph, &walks, &[EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)], PlanOptions::default());
    assert_eq!(ran, vec![vec![BackwardRan::Device]]);
}
