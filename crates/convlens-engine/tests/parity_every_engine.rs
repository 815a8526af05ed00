//! One parity body for every engine: the same graph through `Engine` on the scalar reference,
//! packed GEMM, GEMM+Winograd, and WebGPU with f32 and f16 weights (lavapipe in CI), every
//! layer against onnxruntime. The graph is unfused, so the Conv outputs that a fused ReLU
//! reads are compared as well, read back through `Engine::read` like the explorer does.

use std::sync::Arc;

use convlens_core::archs::{Net, Weights};
use convlens_core::exec::Keep;
use convlens_core::graph::{Op, Preprocess};
use convlens_core::Tensor;
use convlens_engine::{Engine, EngineKind};
use convlens_gpu::{Timing, WeightPrecision};
use convlens_testkit::*;


fn tolerance(kind: EngineKind) -> f32 {
    match kind {
        EngineKind::WebGpu(WeightPrecision::F16) => GPU_F16_LAYER_TOL,
        EngineKind::WebGpu(WeightPrecision::F32) => GPU_LAYER_TOL,
        EngineKind::Reference | EngineKind::Gemm | EngineKind::Cpu => ORT_LAYER_TOL,
    }
}

/// Every engine in `kinds` on the seeded case of `model`; returns the layers compared on each.
fn every_engine(model: &std::path::Path, case: &str, kinds: &[EngineKind]) -> Vec<usize> {
    every_engine_on(Arc::new(import(model).unfused()), case, kinds, tolerance)
}

fn every_engine_on(graph: Arc<convlens_core::Graph>, case: &str, kinds: &[EngineKind], tolerance: fn(EngineKind) -> f32) -> Vec<usize> {
    let dir = refs().join(case).join("seeded");
    let x = load_npy(&dir.join("input.npy"));
    let has_f16 = pollster::block_on(convlens_gpu::Gpu::new()).is_ok_and(|g| g.has_f16());
    let mut counts = Vec::new();
    for &kind in kinds {
        if kind == EngineKind::WebGpu(WeightPrecision::F16) && !has_f16 {
            eprintln!("{}: skipped, no shader-f16 on this device", kind.key());
            continue;
        }
        let engine = Engine::new_blocking(graph.clone(), kind, true).unwrap_or_else(|e| panic!("{}: {e}", kind.key()));
        engine.forward_blocking(&x, &Keep::All, Timing::Off).unwrap();
        let ids: Vec<usize> = graph.nodes.iter().map(|n| n.output).collect();
        let mut values = engine.read_blocking(&ids).unwrap();
        let mut got = |v| values.remove(&v).unwrap();
        let n = assert_layers_close(&graph, &mut got, &mut |v| reference(&graph, &dir, v), tolerance(kind), &engine.label());
        counts.push(n);
    }
    counts
}

#[test]
fn squeezenet_every_layer_on_every_engine() {
    let counts = every_engine(&shared_models().join("squeezenet1.1.onnx"), "squeezenet1.1", &EngineKind::ALL);
    // 26 convs and their 26 ReLUs, 3 max pools, 8 concats, dropout, avgpool, flatten.
    assert!(counts.len() >= 4 && counts.iter().all(|&n| n >= 60), "{counts:?}");
}

#[test]
fn googlenet_every_layer_on_every_engine() {
    let counts = every_engine(&shared_models().join("googlenet-synthetic.onnx"), "googlenet-synthetic", &EngineKind::ALL);
    assert!(counts.len() >= 4 && counts.iter().all(|&n| n >= 140), "{counts:?}");
}

#[test]
fn ops_zoo_every_layer_on_every_engine() {
    let counts = every_engine(&refs().join("ops-zoo.onnx"), "ops-zoo", &EngineKind::ALL);
    assert!(counts.len() >= 4 && counts.iter().all(|&n| n >= 18), "{counts:?}");
}

/// The scalar reference takes minutes on VGG16 (the core's parity test covers it); the fast
/// engines run it here.
#[test]
fn vgg16_every_layer_on_the_fast_engines() {
    let kinds = [EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)];
    let counts = every_engine(&refs().join("vgg16-seeded.onnx"), "vgg16-seeded", &kinds);
    assert!(counts.len() == 2 && counts.iter().all(|&n| n >= 13 + 13 + 5 + 3 + 2), "{counts:?}");
}

/// A Gemm whose C is an activation (not a constant) is not a fully connected layer for either
/// engine (`prep::is_fc`); the CPU and the GPU run it as a general product and agree with the
/// reference, which agrees with a hand computation.
#[test]
fn gemm_with_a_dynamic_c_runs_on_every_engine() {
    let mut n = Net::new(Weights::Seeded(3));
    let x = n.b.input("x", vec![1, 3, 8, 8]).unwrap();
    let flat = n.b.node_with_shape("flat", "Flatten", Op::Reshape, vec![x], "flat", Some(vec![1, 192])).unwrap();
    let wdata: Vec<f32> = (0..1920).map(|i| ((i * 37 % 101) as f32 - 50.0) / 500.0).collect();
    let w = n.b.constant("w", vec![192, 10], Some(Arc::new(wdata.clone()))).unwrap();
    let gemm = |alpha, beta, relu| Op::Gemm { alpha, beta, trans_a: false, trans_b: false, relu };
    let c = n.b.node("c", "Gemm", gemm(1.0, 0.0, false), vec![flat, w], "c").unwrap();
    let y = n.b.node("y", "Gemm", gemm(0.5, 2.0, true), vec![flat, w, c], "y").unwrap();
    let graph = Arc::new(n.finish("dynamic-c", x, vec![y], Preprocess::imagenet_rgb()));
    assert!(!convlens_core::prep::is_fc(&graph, &graph.nodes[2]), "C is an activation");
    let input = Tensor::new(vec![1, 3, 8, 8], (0..192).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
    let reference = Engine::new_blocking(graph.clone(), EngineKind::Reference, true).unwrap();
    let want = reference.forward_blocking(&input, &Keep::All, Timing::Off).unwrap().outputs.remove(&y).unwrap();
    // By hand for output 0: relu(0.5 * x.w0 + 2 * x.w0) = relu(2.5 * x.w0).
    let dot: f32 = (0..192).map(|k| input.data[k] * wdata[k * 10]).sum();
    assert!((want.data[0] - (2.5 * dot).max(0.0)).abs() < 1e-4, "{} vs {}", want.data[0], 2.5 * dot);
    for kind in [EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)] {
        let engine = Engine::new_blocking(graph.clone(), kind, true).unwrap_or_else(|e| panic!("{}: {e}", kind.key()));
        let got = engine.forward_blocking(&input, &Keep::Outputs, Timing::Off).unwrap().outputs.remove(&y).unwrap();
        let err = convlens_core::tensor::rel_error(&got.data, &want.data);
        assert!(err <= ORT_LAYER_TOL, "{}: {err}", kind.key());
    }
}

/// ResNet-50 from the onnx package's light models with seeded weights (tests/reference/
/// make_refs.py): 16 residual joins (ONNX Sum, imported as an Add), BatchNorm folded into every
/// conv, a 7x7 average pool. The scalar reference would take long on 4.1 G multiply-adds; the
/// fast engines run it.
#[test]
fn resnet50_every_layer_on_the_fast_engines() {
    let kinds = [EngineKind::Gemm, EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)];
    let counts = every_engine(&refs().join("resnet50-seeded.onnx"), "resnet50-seeded", &kinds);
    // 53 convs, 49 ReLUs, 16 joins, the pools and the head.
    assert!(counts.len() == 3 && counts.iter().all(|&n| n >= 53 + 49 + 16), "{counts:?}");
}

/// ResNet-50 v2 (pre-activation, 18 BatchNorms run as such), CaffeNet (pools before LRN,
/// ceil mode, grouped convs), VGG19 and VGG16 with BatchNorm (folded into each conv), seeded.
#[test]
fn resnet50v2_caffenet_vgg19_and_vgg16bn_every_layer_on_the_fast_engines() {
    let kinds = [EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)];
    // (model, at least this many layers compared on each engine)
    for (name, layers) in [("resnet50v2-seeded", 53 + 18 + 16), ("caffenet-seeded", 8 + 7 + 3 + 2), ("vgg19-seeded", 16 + 18 + 5 + 3), ("vgg16-bn-seeded", 13 + 15 + 5 + 3)] {
        let counts = every_engine(&refs().join(format!("{name}.onnx")), name, &kinds);
        assert!(counts.len() == 2 && counts.iter().all(|&n| n >= layers), "{name}: {counts:?}");
    }
}

/// Inception v2 (BN-Inception) and DenseNet-121 from the onnx package's light models with
/// seeded weights: BatchNorms exported as a per-channel Mul and Add (broadcast constants),
/// Inception v2's 3x3-pair branches, DenseNet's 58 growing concatenations.
#[test]
fn inception_v2_and_densenet121_every_layer_on_the_fast_engines() {
    let kinds = [EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)];
    let counts = every_engine(&refs().join("inception_v2-seeded.onnx"), "inception_v2-seeded", &kinds);
    assert!(counts.len() == 2 && counts.iter().all(|&n| n >= 69 * 3), "{counts:?}");
    let counts = every_engine(&refs().join("densenet121-seeded.onnx"), "densenet121-seeded", &kinds);
    assert!(counts.len() == 2 && counts.iter().all(|&n| n >= 121 * 3 + 58), "{counts:?}");
}

/// ShuffleNet v1 (seeded): 16 channel shuffles (a rank-5 Reshape, Transpose, Reshape each),
/// grouped 1x1 and depthwise 3x3 convs, average-pooled shortcuts concatenated or summed. The
/// scalar reference runs it too: it is small (0.14 G multiply-adds).
#[test]
fn shufflenet_every_layer_on_every_engine() {
    let kinds = [EngineKind::Reference, EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)];
    let counts = every_engine(&refs().join("shufflenet-seeded.onnx"), "shufflenet-seeded", &kinds);
    // 49 convs, 16 shuffles of 3 nodes, 13 joins.
    assert!(counts.len() == 3 && counts.iter().all(|&n| n >= 49 + 16 * 3 + 13), "{counts:?}");
}

/// The zoo's other classic CNNs, seeded (tests/reference/make_refs.py): AlexNet and ZFNet-512
/// (LRN, ceil-mode pools, fc6 of 38 M weights), SqueezeNet 1.0, and MobileNet v2 (depthwise
/// 3x3s, ReLU6 as Clip, BatchNorm folded into every conv, linear bottlenecks added).
#[test]
fn alexnet_zfnet_squeezenet10_and_mobilenetv2_every_layer_on_the_fast_engines() {
    let kinds = [EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)];
    // (model, at least this many layers compared on each engine)
    for (name, layers) in [("bvlc_alexnet-seeded", 20), ("zfnet512-seeded", 19), ("squeezenet-seeded", 60), ("mobilenetv2-seeded", 52 + 35 + 10)] {
        let counts = every_engine(&refs().join(format!("{name}.onnx")), name, &kinds);
        assert!(counts.len() == 2 && counts.iter().all(|&n| n >= layers), "{name}: {counts:?}");
    }
}

/// The f16 FC weights option on VGG16 and AlexNet (their FC layers hold 89% and 96% of the
/// weights): every layer on the CPU engines and the GPU (which widens the halves as it uploads
/// them) against onnxruntime's f32 within CPU_F16_FC_TOL; and on the CPU, bit for bit what the
/// f32 kernels compute on the same graph with its halves widened back, so rounding the weights
/// is the only difference from f32.
#[test]
fn fc_f16_weights_every_layer_on_the_cpu_engines_and_the_gpu() {
    use convlens_core::onnx::WeightPrecision as Held;
    for (name, kinds, fc_weights) in [
        ("vgg16-seeded", &[EngineKind::Gemm, EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)][..], 123_633_664),
        ("bvlc_alexnet-seeded", &[EngineKind::Reference, EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)][..], 58_621_952),
    ] {
        let graph = import_with(&refs().join(format!("{name}.onnx")), Held::FcF16);
        // fc6, fc7, fc8 weights (biases and convs stay f32): 2 bytes each.
        assert_eq!(graph.half_weights(), (fc_weights, 2 * fc_weights), "{name}");
        let graph = Arc::new(graph.unfused());
        let counts = every_engine_on(graph.clone(), name, kinds, |_| CPU_F16_FC_TOL);
        assert!(counts.len() == kinds.len() && counts.iter().all(|&n| n >= 20), "{name}: {counts:?}");
        let x = load_npy(&refs().join(name).join("seeded/input.npy"));
        let run = |g: Arc<convlens_core::Graph>| {
            let e = Engine::new_blocking(g, EngineKind::Cpu, true).unwrap();
            assert_eq!(e.label().contains("f16 FC weights"), graph_has_half(&e), "{}", e.label());
            e.forward_blocking(&x, &Keep::Outputs, Timing::Off).unwrap().outputs
        };
        let (half, wide) = (run(graph.clone()), run(Arc::new(widened(&graph))));
        for (v, t) in &half {
            let bits = |t: &Tensor| t.data.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert!(bits(t) == bits(&wide[v]), "{name}: output {} differs from the f32 kernels on the widened weights", graph.value(*v).name);
        }
    }
}

fn graph_has_half(e: &Engine) -> bool {
    e.graph().half_weights().0 > 0
}
