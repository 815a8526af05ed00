//! The subcommands.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use convlens_core::analytics::{analyze, human_count, human_macs, ModelStats};
use convlens_core::classify::heads_top_k;
use convlens_core::exec::Keep;
use convlens_core::graph::structure::{detect, display_name, display_names, Structure};
use convlens_core::graph::{file_name_for, Graph};
use convlens_core::preprocess::Fit;
use convlens_core::viz::{channel_rgba, value_range};
use convlens_core::{imagenet_labels, lessons, Tensor};
use convlens_engine::Engine;
use convlens_gpu::Timing;
use serde_json::json;

use crate::{images, models, npy, BackendArg, FitArg, GpuConvArg, ModelArgs};

/// `every_layer`: the command reads intermediate layers, so a GPU keeps every activation;
/// otherwise its buffers are reused by lifetime.
fn engine(kind: BackendArg, graph: Graph, every_layer: bool) -> Result<Engine> {
    Ok(Engine::new_blocking(Arc::new(graph), kind.engine_kind(), every_layer)?)
}

fn untrained_note(graph: &Graph) -> &'static str {
    if graph.untrained {
        " [UNTRAINED: seeded random weights, classes are meaningless]"
    } else {
        ""
    }
}

pub fn classify(args: &ModelArgs, kind: BackendArg, top: usize, as_json: bool, fit: FitArg, paths: &[PathBuf]) -> Result<()> {
    let be = engine(kind, models::load(args)?, false)?;
    let graph = be.graph().clone();
    let side = graph.image_side()?;
    let structure = detect(&graph);
    let labels = imagenet_labels();
    let fit = match fit {
        FitArg::Crop => Fit::ResizeAndCenterCrop,
        FitArg::Squash => Fit::Squash,
    };
    let mut failed = 0;
    for path in paths {
        let result = (|| -> Result<()> {
            let img = images::load_rgb(path)?;
            let (x, _) = images::to_input(&img, side, fit, &graph.preprocess)?;
            let out = be.forward_blocking(&x, &Keep::Outputs, Timing::Off)?;
            let heads = heads_top_k(&graph, &structure, &out.outputs, top);
            let main = heads.iter().find(|h| h.output == graph.outputs[0]).ok_or_else(|| anyhow!("the model gave no class scores"))?;
            let best = &main.top;
            let label = |i: usize| labels.get(i).copied().unwrap_or("?");
            if as_json {
                let top: Vec<_> = best.iter().map(|&(i, p)| json!({"index": i, "label": label(i), "prob": p})).collect();
                let line = json!({
                    "image": path.display().to_string(),
                    "model": graph.name,
                    "top": top,
                    "ms": (out.total_ms * 100.0).round() / 100.0,
                    "output": if main.softmax_applied { "logits, softmax applied" } else { "probabilities (model ends in Softmax)" },
                    "untrained": graph.untrained,
                    "backend": be.label(),
                });
                println!("{line}");
            } else {
                println!("{} ({}, {:.1} ms, {}){}", path.display(), graph.name, out.total_ms, be.label(), untrained_note(&graph));
                for (rank, (i, p)) in best.iter().enumerate() {
                    println!("  {}. {:>6.2}%  {:4}  {}", rank + 1, p * 100.0, i, label(*i));
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            failed += 1;
            let msg = e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
            eprintln!("error: {msg}");
        }
    }
    if failed > 0 {
        bail!("{failed} of {} image(s) failed", paths.len());
    }
    Ok(())
}

pub fn inspect(spec: &str, as_json: bool) -> Result<()> {
    let graph = models::for_analytics(spec)?;
    let stats = analyze(&graph);
    let structure = detect(&graph);
    if as_json {
        return inspect_json(&graph, &stats, &structure);
    }
    let guess = if graph.preprocess.guessed { "; a guess: the file does not say" } else { "" };
    println!("{}  (preprocessing: {}{guess})", graph.name, graph.preprocess.family);
    println!("{:<36} {:<20} {:<20} {:>10} {:>10} {:>10} {:>9}", "layer", "op", "output", "params", "mult-adds", "act. mem", "RF");
    for l in &stats.layers {
        let rf = if l.receptive_field.global { "global".to_string() } else { format!("{}x{}", l.receptive_field.size[0], l.receptive_field.size[1]) };
        println!(
            "{:<36} {:<20} {:<20} {:>10} {:>10} {:>10} {:>9}",
            l.name,
            l.op_type,
            format!("{:?}", &l.output_shape[1..]),
            human_count(l.params),
            human_count(l.macs),
            format!("{}B", human_count(l.activation_bytes)),
            rf
        );
    }
    println!(
        "total: {} parameters ({} MB of f32 weights), {} multiply-adds, {} MB of activations if every layer is kept",
        stats.params,
        stats.weight_bytes / 1_000_000,
        human_count(stats.macs),
        stats.activation_bytes / 1_000_000
    );
    for m in &structure.modules {
        let parts: Vec<String> = m
            .branches
            .iter()
            .map(|b| format!("{} {:?} {}", b.label, &graph.shape(b.output)[1..], human_macs(b.macs(&stats))))
            .collect();
        println!("module {} ({:?}): {}", m.name, m.kind, parts.join(" | "));
    }
    for h in &structure.heads {
        let names: Vec<String> = h.nodes.iter().map(|&n| stats.layers[n].name.clone()).collect();
        println!("{}: {}", h.name, names.join(" -> "));
    }
    if let Some(b) = backward_costs(&graph, &stats) {
        println!(
            "explanations: the backward pass keeps every activation ({:.1} MB) and at most {:.1} MB of gradients down to the input (saliency, guided), {:.1} MB down to {} (Grad-CAM)",
            b.activations as f64 / 1e6,
            b.to_input as f64 / 1e6,
            b.to_layer as f64 / 1e6,
            b.layer
        );
    }
    println!("lessons:");
    for l in lessons::texts(&graph, &stats) {
        println!("  {}\n    {}", l.title, l.detail);
    }
    Ok(())
}

/// What explaining costs in memory: the activations the backward pass reads, and its gradients.
struct BackwardCosts {
    activations: u64,
    to_input: u64,
    to_layer: u64,
    layer: String,
}

fn backward_costs(graph: &Graph, stats: &ModelStats) -> Option<BackwardCosts> {
    use convlens_core::grad::{explain, peak_gradient_bytes};
    let score = explain::score_value(graph).ok()?;
    let layer = explain::default_layer(graph).ok()?;
    Some(BackwardCosts {
        activations: stats.activation_bytes,
        to_input: peak_gradient_bytes(graph, score, None),
        to_layer: peak_gradient_bytes(graph, score, Some(layer)),
        layer: graph.value(layer).name.clone(),
    })
}

/// `inspect --json`: the table, modules, heads and the lessons' numbers, for scripts.
fn inspect_json(graph: &Graph, stats: &ModelStats, structure: &Structure) -> Result<()> {
    let largest = lessons::largest_layer(stats);
    let pooling = lessons::pooling_vs_fc(graph);
    let stack = lessons::stacked_3x3_vs_7x7(64)?;
    let (naive, bottleneck) = (lessons::lecture_inception(false)?, lessons::lecture_inception(true)?);
    let layers: Vec<_> = stats
        .layers
        .iter()
        .map(|l| {
            json!({
                "name": l.name, "node": graph.nodes[l.node].name, "op": l.op_type,
                "output": graph.value(graph.nodes[l.node].output).name, "shape": l.output_shape,
                "params": l.params, "macs": l.macs, "activations": l.activations, "activation_bytes": l.activation_bytes,
                "receptive_field": if l.receptive_field.global { json!("global") } else { json!(l.receptive_field.size) },
                "rf_stride": l.receptive_field.stride,
            })
        })
        .collect();
    let modules: Vec<_> = structure
        .modules
        .iter()
        .map(|m| {
            json!({
                "name": m.name, "kind": format!("{:?}", m.kind),
                "branches": m.branches.iter().map(|b| json!({
                    "label": b.label,
                    "layers": b.nodes.iter().map(|&n| stats.layers[n].name.clone()).collect::<Vec<_>>(),
                    "shape": graph.shape(b.output),
                    "macs": b.macs(&stats),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let heads: Vec<_> = structure
        .heads
        .iter()
        .map(|h| json!({"name": h.name, "auxiliary": h.auxiliary, "layers": h.nodes.iter().map(|&n| stats.layers[n].name.clone()).collect::<Vec<_>>()}))
        .collect();
    let out = json!({
        "model": graph.name, "untrained": graph.untrained, "preprocess": graph.preprocess.family,
        "params": stats.params, "macs": stats.macs, "activation_bytes": stats.activation_bytes, "weight_bytes": stats.weight_bytes,
        "layers": layers, "modules": modules, "heads": heads,
        "backward": backward_costs(graph, stats).map(|b| json!({
            "activation_bytes": b.activations, "gradient_bytes_to_input": b.to_input,
            "gradient_bytes_to_layer": b.to_layer, "gradcam_layer": b.layer,
        })),
        "lessons": {
            "largest_layer": largest.map(|l| json!({"layer": l.layer, "params": l.params, "total": l.total})),
            "pooling_vs_fc": pooling.map(|p| json!({"pool": p.pool, "map": p.map, "classifier_weights": p.classifier_weights, "fc_instead_weights": p.fc_instead_weights})),
            "stacked_3x3_vs_7x7_c64": {"receptive_field": stack.stacked_receptive_field, "stacked_weights": stack.stacked_weights, "single_weights": stack.single_weights},
            "lecture_inception": {"naive_macs": naive.macs, "naive_depth": naive.output_depth, "bottleneck_macs": bottleneck.macs, "bottleneck_depth": bottleneck.output_depth},
        }
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Every tensor of the file's graph: fused ReLUs are split back out so the Conv/Gemm outputs
/// they read are written too, under the names onnxruntime gives them.
pub fn run_dump(args: &ModelArgs, input: &Path, dir: &Path, kind: BackendArg) -> Result<()> {
    let graph = models::load(args)?.unfused();
    let x = npy::read(input)?;
    let be = engine(kind, graph, true)?;
    let graph = be.graph().clone();
    let out = be.forward_blocking(&x, &Keep::All, Timing::Off)?;
    let ids: Vec<usize> = graph.nodes.iter().map(|n| n.output).collect();
    let values = be.read_blocking(&ids)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for &v in &ids {
        let t = values.get(&v).ok_or_else(|| anyhow!("{} was not kept", graph.value(v).name))?;
        npy::write(&dir.join(format!("{}.npy", file_name_for(&graph.value(v).name))), t)?;
    }
    // Node outputs the importer folded into constants (e.g. a Reshape of weights).
    for &v in &graph.folded {
        npy::write(&dir.join(format!("{}.npy", file_name_for(&graph.value(v).name))), &*graph.const_data(v)?)?;
    }
    let n = ids.len() + graph.folded.len();
    eprintln!("{n} tensors written to {} ({:.1} ms, {})", dir.display(), out.total_ms, be.label());
    Ok(())
}

pub fn maps(args: &ModelArgs, image_path: &Path, layer: &str, out_path: &Path, shared_scale: bool) -> Result<()> {
    let graph = models::load(args)?;
    let node = graph
        .find_node(layer)
        .or_else(|| display_names(&graph).iter().position(|n| n == layer))
        .ok_or_else(|| anyhow!("no layer named '{layer}' (see `convlens inspect`)"))?;
    let value = graph.nodes[node].output;
    let shape = graph.shape(value).to_vec();
    let [_, c, h, w] = shape[..] else { bail!("layer '{layer}' has shape {shape:?}, not a feature map") };
    let img = images::load_rgb(image_path)?;
    let (x, _) = images::to_input(&img, graph.image_side()?, Fit::ResizeAndCenterCrop, &graph.preprocess)?;
    let be = engine(BackendArg::Cpu, graph, true)?;
    let graph = be.graph().clone();
    be.forward_blocking(&x, &Keep::These(vec![value]), Timing::Off)?;
    let t: Tensor = be.read_blocking(&[value])?.remove(&value).ok_or_else(|| anyhow!("layer output not kept"))?;
    let cols = (c as f64).sqrt().ceil() as usize;
    let rows = c.div_ceil(cols);
    let gap = 1;
    let (gw, gh) = (cols * (w + gap) + gap, rows * (h + gap) + gap);
    let mut grid = image::RgbImage::from_pixel(gw as u32, gh as u32, image::Rgb([40, 40, 40]));
    let global = value_range(&t.data);
    for ch in 0..c {
        let plane = &t.data[ch * h * w..(ch + 1) * h * w];
        let (lo, hi) = if shared_scale { global } else { value_range(plane) };
        let rgba = channel_rgba(plane, lo, hi);
        let (ox, oy) = (gap + (ch % cols) * (w + gap), gap + (ch / cols) * (h + gap));
        for (i, px) in rgba.chunks_exact(4).enumerate() {
            grid.put_pixel((ox + i % w) as u32, (oy + i / w) as u32, image::Rgb([px[0], px[1], px[2]]));
        }
    }
    grid.save(out_path).with_context(|| format!("cannot write {}", out_path.display()))?;
    eprintln!(
        "{c} channels of {} ({}x{}) written to {} as a {cols}x{rows} grid, values {:.3}..{:.3}{}",
        display_name(&graph, node),
        h,
        w,
        out_path.display(),
        global.0,
        global.1,
        untrained_note(&graph)
    );
    Ok(())
}

pub fn bench(args: &ModelArgs, kind: BackendArg, runs: usize, per_layer: bool, conv: GpuConvArg) -> Result<()> {
    let be = match kind.engine_kind() {
        convlens_engine::EngineKind::WebGpu(weights) => {
            let options = convlens_gpu::PlanOptions { residency: convlens_gpu::Residency::Reuse, weights, conv: conv.kernels(), ..Default::default() };
            Engine::gpu_blocking(Arc::new(models::load(args)?), options)?
        }
        _ => engine(kind, models::load(args)?, false)?,
    };
    let graph = be.graph().clone();
    let stats = analyze(&graph);
    let n: usize = graph.shape(graph.input).iter().product();
    // A fixed, image-like input: smooth values in the range preprocessing gives.
    let x = Tensor::new(graph.shape(graph.input).to_vec(), (0..n).map(|i| ((i % 251) as f32 / 125.0 - 1.0) * 1.5).collect())?;
    be.forward_blocking(&x, &Keep::Outputs, Timing::Off)?; // warm-up
    let mut times = Vec::new();
    let mut layer_ms = vec![0.0; graph.nodes.len()];
    convlens_core::par::take_stats();
    for _ in 0..runs.max(1) {
        let out = be.forward_blocking(&x, &Keep::Outputs, Timing::Off)?;
        times.push(out.total_ms);
        for (a, b) in layer_ms.iter_mut().zip(&out.layer_ms) {
            *a += b / runs.max(1) as f64;
        }
    }
    let pool = convlens_core::par::take_stats();
    // The GPU's totals come from single-pass runs; its per-layer times from separate runs with
    // one compute pass per layer, so timing never slows the totals.
    let mut clock = String::new();
    if per_layer && be.gpu_model().is_some() {
        for _ in 0..runs.max(1) {
            let r = be.forward_blocking(&x, &Keep::Outputs, Timing::Layers)?;
            for (a, b) in layer_ms.iter_mut().zip(&r.layer_ms) {
                *a += b / runs.max(1) as f64;
            }
            clock = format!(" (per layer: {}, sum {:.1} ms)", r.clock, r.layer_ms.iter().sum::<f64>());
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    println!(
        "{}: {} | median {:.2} ms, min {:.2}, max {:.2} over {} runs | {:.2} G multiply-adds, {:.1} GFLOP/s{}",
        graph.name,
        be.label(),
        median,
        times[0],
        times[times.len() - 1],
        times.len(),
        stats.macs as f64 / 1e9,
        2.0 * stats.macs as f64 / (median * 1e6),
        untrained_note(&graph)
    );
    if pool.jobs > 0 {
        let per = |v: u64| v as f64 / runs.max(1) as f64;
        println!(
            "  threads: {:.0} jobs a pass, the helpers ran {:.1}% of their tasks; a helper fell asleep {:.1} times a pass, the caller waited asleep {:.1}",
            per(pool.jobs),
            100.0 * pool.helper_share(),
            per(pool.helper_sleeps),
            per(pool.caller_sleeps)
        );
    }
    if per_layer {
        if !clock.is_empty() {
            println!("  top layers{clock}");
        }
        if let Some(g) = be.gpu_model() {
            println!(
                "  on the GPU: weights {:.1} MB, activations {:.1} MB (buffers reused by lifetime), convs {}",
                g.weight_bytes() as f64 / 1e6,
                g.activation_bytes() as f64 / 1e6,
                if g.direct_conv() { "direct (conv_direct)" } else { "tiled (workgroup memory)" }
            );
        }
        let mut idx: Vec<usize> = (0..graph.nodes.len()).collect();
        idx.sort_by(|&a, &b| layer_ms[b].total_cmp(&layer_ms[a]));
        for &i in idx.iter().take(std::env::var("CONVLENS_TOP_LAYERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10)) {
            let gf = if layer_ms[i] > 0.0 { 2.0 * stats.layers[i].macs as f64 / (layer_ms[i] * 1e6) } else { 0.0 };
            println!("  {:<36} {:<16} {:>8.3} ms {:>7.1} GFLOP/s", stats.layers[i].name, graph.nodes[i].op_type, layer_ms[i], gf);
        }
    }
    Ok(())
}
