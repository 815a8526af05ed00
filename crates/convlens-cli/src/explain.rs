//! `convlens explain`: a heatmap of why the model said a class, written as .npy and an overlay
//! PNG, with the deletion curve's area. The forward pass runs on the chosen engine; the
//! backward pass runs on the CPU over its activations (on WebGPU they are read back first).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use clap::ValueEnum;
use convlens_core::exec::Keep;
use convlens_core::grad::explain::{self as ex, Explanation, Method};
use convlens_core::graph::Graph;
use convlens_core::preprocess::{to_rgb, Fit};
use convlens_core::viz::colormap;
use convlens_core::{imagenet_labels, Tensor};
use convlens_engine::explain::gradient_explanation_blocking;
use convlens_engine::Engine;
use convlens_gpu::Timing;
use serde_json::json;

use crate::{images, models, npy, BackendArg, ModelArgs};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    /// Class activation map: the classifier's weights on the pooled map (GoogLeNet, SqueezeNet)
    Cam,
    /// Gradient-weighted CAM at any conv layer
    Gradcam,
    /// d score / d input
    Saliency,
    /// Guided backprop: ReLUs pass only positive gradients
    Guided,
    /// Slide a grey square, watch the class probability drop (forward passes only)
    Occlusion,
}

impl MethodArg {
    fn method(self) -> Method {
        match self {
            MethodArg::Cam => Method::Cam,
            MethodArg::Gradcam => Method::GradCam,
            MethodArg::Saliency => Method::Saliency,
            MethodArg::Guided => Method::Guided,
            MethodArg::Occlusion => Method::Occlusion,
        }
    }
}

/// Input the user can correct (unknown layer, class out of range, a model with no class
/// score): exit code 2 instead of 1.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

pub(crate) fn bad(e: convlens_core::Error) -> anyhow::Error {
    match e {
        convlens_core::Error::Input(m) => BadInput(m).into(),
        other => other.into(),
    }
}

/// An engine's error as the CLI reports it: the core's input errors (unknown layer, class out
/// of range) are bad input, exit code 2.
fn bad_engine(e: convlens_engine::Error) -> anyhow::Error {
    match e {
        convlens_engine::Error::Core(c) => bad(c),
        other => other.into(),
    }
}

pub struct Request {
    pub image: Option<PathBuf>,
    pub input: Option<PathBuf>,
    pub method: MethodArg,
    pub layer: Option<String>,
    pub class: Option<usize>,
    pub out: PathBuf,
    pub patch: usize,
    pub stride: usize,
    pub deletion_steps: usize,
    pub json: bool,
}

/// The class probabilities for `x` on `engine`: the model's softmax output where it ends in
/// one, else the softmax of its scores (`logits`: the output is the score, found once by the caller).
fn probabilities(engine: &Engine, graph: &Graph, x: &Tensor, logits: bool) -> Result<Vec<f32>> {
    let pass = engine.forward_blocking(x, &Keep::Outputs, Timing::Off)?;
    let scores = &pass.outputs.get(&graph.outputs[0]).ok_or_else(|| anyhow!("the model gave no output"))?.data;
    Ok(if logits { ex::probabilities(scores) } else { scores.clone() })
}

pub fn explain(args: &ModelArgs, backend: BackendArg, r: &Request) -> Result<()> {
    let graph = Arc::new(models::load(args)?);
    let side = graph.image_side()?;
    let score = ex::score_value(&graph).map_err(bad)?;
    let logits = score == graph.outputs[0];
    let (x, shown) = match (&r.image, &r.input) {
        (Some(path), None) => {
            let img = images::load_rgb(path)?;
            let (x, crop) = images::to_input(&img, side, Fit::ResizeAndCenterCrop, &graph.preprocess)?;
            (x, crop.into_raw())
        }
        (None, Some(path)) => {
            let x = npy::read(path)?;
            if x.shape != graph.shape(graph.input) {
                return Err(BadInput(format!("{} has shape {:?}; the model's input is {:?}", path.display(), x.shape, graph.shape(graph.input))).into());
            }
            let rgb = to_rgb(&x, &graph.preprocess).map_err(bad)?;
            (x, rgb)
        }
        _ => return Err(BadInput("give a photo or --input X.npy".into()).into()),
    };
    let method = r.method.method();
    let layer = match (&r.layer, method) {
        (Some(name), Method::GradCam) => Some(ex::layer_value(&graph, name).map_err(bad)?),
        (Some(_), _) => return Err(BadInput(format!("--layer is for gradcam; {} picks its own", method.key())).into()),
        (None, Method::GradCam) => Some(ex::default_layer(&graph).map_err(bad)?),
        (None, _) => None,
    };
    let engine = Engine::new_blocking(graph.clone(), backend.engine_kind(), true)?;

    let t0 = Instant::now();
    let pass = engine.forward_blocking(&x, &Keep::All, Timing::Off)?;
    let out = graph.outputs[0];
    let final_scores = &pass.outputs.get(&out).ok_or_else(|| anyhow!("the model gave no output"))?.data;
    let class = match r.class {
        Some(k) if k >= final_scores.len() => return Err(BadInput(format!("class {k} is out of range (the model has {} classes)", final_scores.len())).into()),
        Some(k) => k,
        None => final_scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0),
    };
    // The class's score from this pass (occlusion's passes come after and replace it).
    let score_value = match engine.read_blocking(&[score]).ok().and_then(|mut m| m.remove(&score)) {
        Some(t) => t.data[class],
        None => final_scores[class],
    };
    let mut ran = None;
    let e: Explanation = match method {
        Method::Occlusion => {
            let mut prob = |xo: &Tensor| -> convlens_core::Result<f32> {
                probabilities(&engine, &graph, xo, logits).map(|p| p[class]).map_err(|e| convlens_core::Error::Input(e.to_string()))
            };
            ex::occlusion(&x, r.patch, r.stride, &mut prob).map_err(bad)?
        }
        _ => {
            let (e, where_) = gradient_explanation_blocking(&engine, &x, method, score, class, layer).map_err(bad_engine)?;
            ran = where_;
            e
        }
    };
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let deletion = if r.deletion_steps > 0 {
        let mut prob = |xo: &Tensor| -> convlens_core::Result<f32> {
            probabilities(&engine, &graph, xo, logits).map(|p| p[class]).map_err(|e| convlens_core::Error::Input(e.to_string()))
        };
        Some(ex::deletion_curve(&x, &e.heatmap, r.deletion_steps, &mut prob).map_err(bad)?)
    } else {
        None
    };

    std::fs::create_dir_all(&r.out).with_context(|| format!("cannot create {}", r.out.display()))?;
    npy::write(&r.out.join("heatmap.npy"), &e.heatmap)?;
    if let Some(w) = &e.weights {
        npy::write(&r.out.join("weights.npy"), &Tensor::new(vec![w.len()], w.clone())?)?;
    }
    if let Some(g) = &e.grad {
        npy::write(&r.out.join("grad.npy"), g)?;
    }
    write_overlay(&r.out.join("overlay.png"), &shown, side, &e.heatmap)?;

    let label = imagenet_labels().get(class).copied().unwrap_or("?");
    let layer_name = e.layer.map(|v| graph.value(v).name.clone());
    if r.json {
        println!(
            "{}",
            json!({"model": graph.name, "method": method.key(), "class": class, "label": label, "layer": layer_name,
                   "score": score_value, "deletion_auc": deletion.as_ref().map(|d| d.1), "ms": ms})
        );
    } else {
        println!(
            "{} on {}: class {class} ({label}), score {score_value:.4}{}{} in {ms:.0} ms ({}{}) -> {}",
            method.key(),
            graph.name,
            layer_name.map(|l| format!(", layer {l}")).unwrap_or_default(),
            deletion.as_ref().map(|d| format!(", deletion AUC {:.3} (lower: more faithful)", d.1)).unwrap_or_default(),
            engine.label(),
            ran.map(|r| format!("; {r}")).unwrap_or_default(),
            r.out.display()
        );
    }
    Ok(())
}

/// The photo as the network saw it, half covered by the heatmap (normalised to its own range,
/// upsampled to the input's size).
fn write_overlay(path: &Path, rgb: &[u8], side: usize, heatmap: &Tensor) -> Result<()> {
    let up = ex::upsample(heatmap, side);
    let (lo, hi) = up.data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut img = image::RgbImage::new(side as u32, side as u32);
    for (i, px) in img.pixels_mut().enumerate() {
        let c = colormap((up.data[i] - lo) / span);
        for k in 0..3 {
            px.0[k] = ((rgb[i * 3 + k] as u16 + c[k] as u16) / 2) as u8;
        }
    }
    img.save(path).with_context(|| format!("cannot write {}", path.display()))
}

/// `bench --explain METHOD`: the forward pass the explorer runs (every layer kept) and the
/// explanation on top of it (reading the activations, the backward pass), medians of `runs`
/// after one warm-up, and their ratio. Occlusion is its forward passes; no deletion curve.
pub fn bench(args: &ModelArgs, backend: BackendArg, method: MethodArg, runs: usize) -> Result<()> {
    let graph = Arc::new(models::load(args)?);
    let side = graph.image_side()?;
    let engine = Engine::new_blocking(graph.clone(), backend.engine_kind(), true)?;
    let x = Tensor::new(vec![1, 3, side, side], (0..3 * side * side).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect())?;
    let score = ex::score_value(&graph).map_err(bad)?;
    let logits = score == graph.outputs[0];
    let method = method.method();
    let layer = ex::default_layer(&graph).map_err(bad)?;
    let (mut fwd, mut back) = (Vec::new(), Vec::new());
    for i in 0..=runs.max(1) {
        let t0 = Instant::now();
        engine.forward_blocking(&x, &Keep::All, Timing::Off)?;
        let t1 = Instant::now();
        if method == Method::Occlusion {
            let mut prob = |xo: &Tensor| -> convlens_core::Result<f32> {
                probabilities(&engine, &graph, xo, logits).map(|p| p[0]).map_err(|e| convlens_core::Error::Input(e.to_string()))
            };
            ex::occlusion(&x, 32, 16, &mut prob).map_err(bad)?;
        } else {
            gradient_explanation_blocking(&engine, &x, method, score, 0, Some(layer)).map_err(bad_engine)?;
        }
        let t2 = Instant::now();
        if i > 0 {
            fwd.push((t1 - t0).as_secs_f64() * 1e3);
            back.push((t2 - t1).as_secs_f64() * 1e3);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (f, b) = (median(&mut fwd), median(&mut back));
    println!(
        "{}: {} | forward (every layer kept) {f:.1} ms, {} on top {b:.1} ms ({:.0}% of the forward pass) over {} runs",
        graph.name,
        engine.label(),
        method.key(),
        100.0 * b / f,
        fwd.len()
    );
    Ok(())
}
