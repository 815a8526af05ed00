//! The wgpu backend (natively: Mesa's lavapipe in CI) against onnxruntime, every layer, with
//! the same references and tolerance as the CPU backends.

use std::path::Path;

use convlens_core::Tensor;
use convlens_testkit::{assert_layers_close, load_npy, reference, refs, shared_models as models, GPU_F16_LAYER_TOL, GPU_LAYER_TOL};

/// A shared model planned on the GPU (every activation kept) with its seeded reference input.
fn planned(file: &str, case: &str) -> (convlens_core::Graph, convlens_gpu::GpuModel, Tensor) {
    let graph = convlens_core::onnx::import(&std::fs::read(models().join(file)).unwrap(), "m").unwrap();
    let gpu = convlens_gpu::load_blocking(&graph, Default::default()).unwrap();
    let x = load_npy(&refs().join(case).join("seeded/input.npy"));
    (graph, gpu, x)
}

fn compare(model: &Path, case: &Path) -> usize {
    compare_with_limit(model, case, None)
}

fn compare_with_limit(model: &Path, case: &Path, limit: Option<u64>) -> usize {
    let options = convlens_gpu::PlanOptions { binding_limit: limit, ..Default::default() };
    compare_planned(model, case, options, GPU_LAYER_TOL)
}

fn compare_planned(model: &Path, case: &Path, options: convlens_gpu::PlanOptions, tol: f32) -> usize {
    let graph = convlens_core::onnx::import(&std::fs::read(model).unwrap(), "m").unwrap();
    let device = pollster::block_on(convlens_gpu::Gpu::new()).unwrap();
    let gpu = convlens_gpu::GpuModel::plan(device, &graph, options).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let x = load_npy(&case.join("input.npy"));
    // Half the layers read back with the pass, the rest afterwards from the same buffers.
    let outputs: Vec<usize> = graph.nodes.iter().map(|n| n.output).collect();
    let (now, later) = outputs.split_at(outputs.len() / 2);
    let mut out = gpu.run(&x, now, convlens_gpu::Timing::Off).unwrap();
    out.values.extend(pollster::block_on(gpu.read_async(later)).unwrap());
    let mut got = |v| out.values.remove(&v).unwrap();
    assert_layers_close(&graph, &mut got, &mut |v| reference(&graph, case, v), tol, gpu.adapter())
}

#[test]
fn squeezenet_every_layer_on_the_gpu() {
    let n = compare(&models().join("squeezenet1.1.onnx"), &refs().join("squeezenet1.1/seeded"));
    assert!(n >= 35, "{n}");
}

#[test]
fn googlenet_every_layer_on_the_gpu() {
    let n = compare(&models().join("googlenet-synthetic.onnx"), &refs().join("googlenet-synthetic/seeded"));
    assert!(n >= 80, "{n}");
}

#[test]
fn vgg16_every_layer_on_the_gpu() {
    let n = compare(&refs().join("vgg16-seeded.onnx"), &refs().join("vgg16-seeded/seeded"));
    assert!(n >= 23, "{n}");
}

/// The ops zoo: grouped, dilated and SAME convs, a BatchNorm, broadcast Adds, LRN, ceil-mode
/// pools, Gemm with a constant transposed A and a dynamic B, MatMul, Squeeze/Unsqueeze and a
/// Softmax over a middle axis, every layer against onnxruntime.
#[test]
fn ops_zoo_every_layer_on_the_gpu() {
    let n = compare(&refs().join("ops-zoo.onnx"), &refs().join("ops-zoo/seeded"));
    assert!(n >= 15, "{n}");
}

/// Both convolution kernel sets on this one adapter: the one it would not pick (on lavapipe,
/// a software adapter, the workgroup-memory tiles a GPU runs) and the one it picks, every layer
/// of SqueezeNet, GoogLeNet and the ops zoo (strides, padding, dilation, 1x1, 5x5, 7x7, channel
/// counts that fill no tile).
#[test]
fn both_conv_kernel_sets_every_layer() {
    use convlens_gpu::ConvKernels;
    for conv in [ConvKernels::Tiled, ConvKernels::Direct] {
        for (model, case, min) in [
            (models().join("squeezenet1.1.onnx"), refs().join("squeezenet1.1/seeded"), 35),
            (models().join("googlenet-synthetic.onnx"), refs().join("googlenet-synthetic/seeded"), 80),
            (refs().join("ops-zoo.onnx"), refs().join("ops-zoo/seeded"), 15),
        ] {
            let options = convlens_gpu::PlanOptions { conv, ..Default::default() };
            let n = compare_planned(&model, &case, options, GPU_LAYER_TOL);
            assert!(n >= min, "{conv:?} {}: {n}", model.display());
        }
    }
}

/// GoogLeNet's classifier (1000 x 1024 weights, 4 MB) under a 3.5 MiB binding limit (the
/// largest activation, conv1's, is 3.2 MB): split into chunks of 896 and 104 rows, as fc6
/// must be on a browser's 128 MiB limit; same answer.
#[test]
fn fully_connected_weights_split_across_bindings() {
    let n = compare_with_limit(&models().join("googlenet-synthetic.onnx"), &refs().join("googlenet-synthetic/seeded"), Some(3_670_016));
    assert!(n >= 80, "{n}");
}

/// A timed pass (one compute pass per layer, with timestamp queries or one submission per
/// layer) computes the same values as the untimed one, and times every layer that dispatches.
#[test]
fn timed_passes_match_and_time_every_layer() {
    use convlens_gpu::{LayerClock, Timing};
    let (graph, gpu, x) = planned("squeezenet1.1.onnx", "squeezenet1.1");
    let plain = gpu.run(&x, &graph.outputs, Timing::Off).unwrap();
    assert!(plain.layer_ms.is_empty() && plain.clock.is_none());
    let auto = if gpu.has_timestamps() { LayerClock::Timestamps } else { LayerClock::PerPass };
    for (timing, clock) in [(Timing::Layers, auto), (Timing::PerPass, LayerClock::PerPass)] {
        let timed = gpu.run(&x, &graph.outputs, timing).unwrap();
        let o = graph.outputs[0];
        assert_eq!(timed.values[&o].data, plain.values[&o].data, "same kernels, same order: bit-identical");
        assert_eq!(timed.layer_ms.len(), graph.nodes.len());
        assert_eq!(timed.clock, Some(clock));
        for (i, node) in graph.nodes.iter().enumerate() {
            if matches!(node.op, convlens_core::graph::Op::Conv { .. }) {
                assert!(timed.layer_ms[i] > 0.0, "{} ({clock}) has no time", node.name);
            }
        }
        let sum: f64 = timed.layer_ms.iter().sum();
        assert!(sum <= timed.total_ms * 1.05 + 0.5, "{clock}: layers {sum} ms > pass {} ms", timed.total_ms);
    }
}

/// A pass that reports progress is submitted in parts: the counts rise to the number of
/// layers, and the outputs (and, timed, the per-layer times' coverage) are those of one submission.
#[test]
fn progress_in_parts_gives_the_same_outputs() {
    use convlens_gpu::Timing;
    let (graph, _, x) = planned("squeezenet1.1.onnx", "squeezenet1.1");
    let o = graph.outputs[0];
    for timing in [Timing::Off, Timing::Layers, Timing::PerPass] {
        // A fresh plan: its first pass, of unknown speed, goes in the most parts.
        let gpu = convlens_gpu::load_blocking(&graph, Default::default()).unwrap();
        let mut seen = Vec::new();
        let mut progress = |done: usize, total: usize| seen.push((done, total));
        let r = pollster::block_on(gpu.run_reporting(&x, &graph.outputs, timing, Some(&mut progress))).unwrap();
        let plain = gpu.run(&x, &graph.outputs, Timing::Off).unwrap();
        assert_eq!(r.values[&o].data, plain.values[&o].data, "{timing:?}: same kernels, same order: bit-identical");
        let total = seen.last().map(|s| s.1).unwrap();
        assert!(seen.len() >= 4, "{timing:?}: only {} progress reports", seen.len());
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{timing:?}: progress goes forward: {seen:?}");
        assert_eq!(seen.last().unwrap().0, total, "{timing:?}: ends at all layers");
        if timing != Timing::Off {
            let timed = graph.nodes.iter().enumerate().filter(|(i, n)| matches!(n.op, convlens_core::graph::Op::Conv { .. }) && r.layer_ms[*i] > 0.0).count();
            assert_eq!(timed, graph.nodes.iter().filter(|n| matches!(n.op, convlens_core::graph::Op::Conv { .. })).count(), "{timing:?}: every conv timed");
        }
    }
}

/// After the first pass, a pass that reports progress is split by how long the last one took
/// (one part per `PROGRESS_PART_MS`): a quick pass goes whole, with no waits between parts,
/// and reports once, at the end.
#[test]
fn progress_parts_follow_the_last_pass_time() {
    use convlens_gpu::{Timing, PROGRESS_PARTS, PROGRESS_PART_MS};
    // The op-semantics model: a pass of a few milliseconds even on lavapipe.
    let graph = convlens_core::onnx::import(&std::fs::read(refs().join("ops-zoo.onnx")).unwrap(), "m").unwrap();
    let gpu = convlens_gpu::load_blocking(&graph, Default::default()).unwrap();
    let x = load_npy(&refs().join("ops-zoo/seeded/input.npy"));
    assert_eq!(gpu.progress_parts(), PROGRESS_PARTS, "first pass: speed unknown");
    let mut quickest = f64::INFINITY;
    for _ in 0..3 {
        let expected = gpu.progress_parts();
        let mut seen = Vec::new();
        let r = pollster::block_on(gpu.run_reporting(&x, &graph.outputs, Timing::Off, Some(&mut |d: usize, t: usize| seen.push((d, t))))).unwrap();
        assert_eq!(seen.len(), expected, "one report per part: {seen:?}");
        let next = gpu.progress_parts();
        let by_time = ((r.total_ms / PROGRESS_PART_MS).ceil() as usize).clamp(1, PROGRESS_PARTS);
        assert_eq!(next, by_time, "a {:.1} ms pass", r.total_ms);
        if r.total_ms < PROGRESS_PART_MS {
            assert_eq!(next, 1, "a pass under {PROGRESS_PART_MS} ms goes whole");
        }
        quickest = quickest.min(r.total_ms);
    }
    assert!(quickest < PROGRESS_PART_MS, "no pass of the small model under {PROGRESS_PART_MS} ms (quickest {quickest:.1}): the whole-pass case went untested");
    // A pass timed layer by layer says nothing of a whole pass's speed.
    let before = gpu.progress_parts();
    gpu.run(&x, &graph.outputs, Timing::PerPass).unwrap();
    assert_eq!(gpu.progress_parts(), before);
}

/// Buffers reused by lifetime: the outputs are bit-identical to a plan that keeps every
/// activation, the activations take a fraction of the memory, and reading a layer whose
/// buffer a later layer took over is refused rather than answered with the wrong data.
#[test]
fn buffers_reused_by_lifetime_give_the_same_outputs() {
    use convlens_gpu::{GpuModel, PlanOptions, Residency, Timing};
    let graph = convlens_core::onnx::import(&std::fs::read(models().join("googlenet-synthetic.onnx")).unwrap(), "m").unwrap();
    let x = load_npy(&refs().join("googlenet-synthetic/seeded/input.npy"));
    let gpu = || pollster::block_on(convlens_gpu::Gpu::new()).unwrap();
    let all = GpuModel::new(gpu(), &graph).unwrap();
    let lean = GpuModel::plan(gpu(), &graph, PlanOptions { residency: Residency::Reuse, ..Default::default() }).unwrap();
    let a = all.run(&x, &graph.outputs, Timing::Off).unwrap();
    let b = lean.run(&x, &graph.outputs, Timing::Off).unwrap();
    for o in &graph.outputs {
        assert_eq!(a.values[o].data, b.values[o].data);
    }
    assert!(lean.activation_bytes() * 3 < all.activation_bytes(), "{} vs {}", lean.activation_bytes(), all.activation_bytes());
    let first_conv = graph.nodes[0].output;
    let err = lean.run(&x, &[first_conv], Timing::Off).err().expect("conv1's buffer was reused");
    assert!(err.0.contains("reused"), "{err}");
}

/// Tile colours: the GPU's block means can round differently from the CPU's in the last bit,
/// which moves a colour channel by at most one level; 2 levels of 255 leaves margin, while a
/// wrong block, range or ramp stop is off by tens.
const TILE_RGB_TOL: u8 = 2;
/// Per-channel min/max are exact; the mean is summed in another order (workgroup tree).
const TILE_MEAN_TOL: f32 = 1e-4;

/// Feature-map tiles drawn on the GPU (stats, shared range, block means, colour ramp) match
/// `viz::tiles_reference` on the same activation read back to the CPU, for full-size and downscaled
/// tiles, per-channel and shared scales, a concat slice (written in place) and a 2-D output.
#[test]
fn tiles_drawn_on_the_gpu_match_the_cpu() {
    use convlens_core::viz::tiles_reference as tiles;
    let (graph, gpu, x) = planned("googlenet-synthetic.onnx", "googlenet-synthetic");
    gpu.run(&x, &[], convlens_gpu::Timing::Off).unwrap();
    let producers = graph.producers();
    let concat = graph.nodes.iter().find(|n| matches!(n.op, convlens_core::graph::Op::Concat { .. })).unwrap();
    let slice = concat.inputs[1]; // a branch output: a channel slice of the concat's buffer
    let picks = [(graph.nodes[0].output, 56, false), (graph.nodes[0].output, 512, true), (slice, 20, false), (concat.output, 9, true), (graph.outputs[0], 1, false)];
    for (value, max_side, shared) in picks {
        let name = &graph.value(value).name;
        assert!(producers[value].is_some(), "{name}");
        let got = pollster::block_on(gpu.tiles_async(value, max_side, shared)).unwrap();
        let act = pollster::block_on(gpu.read_async(&[value])).unwrap().remove(&value).unwrap();
        let want = tiles(&act.data, &act.shape, max_side, shared);
        assert_eq!((got.channels, got.tile_h, got.tile_w, got.factor), (want.channels, want.tile_h, want.tile_w, want.factor), "{name}");
        for (g, w) in got.stats.iter().zip(&want.stats) {
            assert_eq!((g[0], g[1]), (w[0], w[1]), "{name}: min/max");
            let scale = w[0].abs().max(w[1].abs()).max(1.0);
            assert!((g[2] - w[2]).abs() <= TILE_MEAN_TOL * scale, "{name}: mean {} vs {}", g[2], w[2]);
        }
        assert_eq!(got.shared, want.shared, "{name}");
        let worst = got.rgba.iter().zip(&want.rgba).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(worst <= TILE_RGB_TOL, "{name} at {max_side}px: a colour off by {worst}");
        assert_eq!(got.rgba.len(), want.rgba.len());
    }
}

#[test]
fn f16_weights_every_layer_on_the_gpu() {
    use convlens_gpu::{PlanOptions, WeightPrecision};
    if !pollster::block_on(convlens_gpu::Gpu::new()).unwrap().has_f16() {
        eprintln!("skipped: no shader-f16 on this device");
        return;
    }
    let f16 = PlanOptions { weights: WeightPrecision::F16, ..Default::default() };
    for (model, case, min) in [
        (models().join("squeezenet1.1.onnx"), refs().join("squeezenet1.1/seeded"), 35),
        (models().join("googlenet-synthetic.onnx"), refs().join("googlenet-synthetic/seeded"), 80),
    ] {
        let n = compare_planned(&model, &case, f16, GPU_F16_LAYER_TOL);
        assert!(n >= min, "{n}");
    }
    // Half the weight memory (biases and other constants stay f32).
    let graph = convlens_core::onnx::import(&std::fs::read(models().join("googlenet-synthetic.onnx")).unwrap(), "m").unwrap();
    let full = convlens_gpu::load_blocking(&graph, Default::default()).unwrap().weight_bytes();
    let half = convlens_gpu::load_blocking(&graph, f16).unwrap().weight_bytes();
    assert!((half as f64) < 0.52 * full as f64, "{half} vs {full}");
}

/// A lost device (here destroyed on purpose, as a driver reset would) makes the next pass and
/// readback return an error the app can fall back on: no panic, no hang.
#[test]
fn lost_device_gives_an_error_not_a_panic() {
    let (graph, gpu, x) = planned("squeezenet1.1.onnx", "squeezenet1.1");
    gpu.run(&x, &graph.outputs, convlens_gpu::Timing::Off).unwrap();
    gpu.gpu().device.destroy();
    let err = gpu.run(&x, &graph.outputs, convlens_gpu::Timing::Off).err().expect("a destroyed device cannot run");
    assert!(err.0.to_lowercase().contains("lost") || err.0.contains("GPU"), "{err}");
    assert!(pollster::block_on(gpu.tiles_async(graph.nodes[0].output, 28, false)).is_err());
}
