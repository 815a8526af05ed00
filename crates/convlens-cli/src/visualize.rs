//! `convlens visualize`: an input optimized to excite one channel (core::visualize), its
//! gradients from the CPU backward pass over the chosen engine's activations.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use convlens_core::exec::Keep;
use convlens_core::grad::ReluRule;
use convlens_core::visualize::{Settings, Visualizer};
use convlens_core::Tensor;
use convlens_engine::Engine;
use convlens_gpu::Timing;
use serde_json::json;

use crate::explain::{bad, BadInput};
use crate::{models, npy, BackendArg, ModelArgs};

pub struct Request<'a> {
    pub layer: &'a str,
    pub channel: usize,
    pub steps: usize,
    pub size: Option<usize>,
    pub seed: u64,
    pub out: &'a Path,
    pub json: bool,
}

pub fn visualize(args: &ModelArgs, backend: BackendArg, r: &Request) -> Result<()> {
    // ReLUs as nodes of their own, so the objective can sit before the channel's ReLU.
    let full = models::load(args)?.unfused();
    if r.size.is_some_and(|s| s < 8 || s > 1024) {
        return Err(BadInput(format!("--size {} is outside 8..=1024 px", r.size.unwrap_or(0))).into());
    }
    let graph = &full;
    let asked = convlens_core::grad::explain::layer_value(&graph, r.layer).map_err(bad)?;
    let channels = graph.shape(asked)[1];
    if r.channel >= channels {
        return Err(BadInput(format!("channel {} is out of range ('{}' has {channels} channels)", r.channel, r.layer)).into());
    }
    let (layer, channel) = convlens_core::visualize::pre_relu(graph, asked, r.channel);
    // The forward pass stops at the layer, at the size asked for (the model's own by default).
    let graph = Arc::new(full.up_to(layer, r.size).map_err(|e| BadInput(e.to_string()))?);
    let side = graph.image_side()?;
    let shape = graph.shape(layer).to_vec();
    let plane = shape[2] * shape[3];
    let engine = Engine::new_blocking(graph.clone(), backend.engine_kind(), true)?;
    let mut seed_grad = Tensor::zeros(&shape)?;
    seed_grad.data[channel * plane..(channel + 1) * plane].fill(1.0 / plane as f32);
    // The channel's mean activation on `x`, and its gradient with respect to `x`.
    let mut objective = |x: &Tensor| -> convlens_core::Result<(f32, Tensor)> {
        let fail = |e: anyhow::Error| convlens_core::Error::Input(e.to_string());
        engine.forward_blocking(x, &Keep::All, Timing::Off).map_err(|e| fail(e.into()))?;
        let a = engine.read_blocking(&[layer]).map_err(|e| fail(e.into()))?.remove(&layer).ok_or_else(|| fail(anyhow::anyhow!("the layer was not kept")))?;
        let value = a.data[channel * plane..(channel + 1) * plane].iter().sum::<f32>() / plane as f32;
        let mut g = engine.backward_blocking(x, layer, &seed_grad, None, ReluRule::Plain).map_err(|e| fail(e.into()))?;
        let g = match g.values.remove(&graph.input) {
            Some(g) => g,
            None => Tensor::zeros(graph.shape(graph.input))?,
        };
        Ok((value, g))
    };
    let t0 = Instant::now();
    let mut vis = Visualizer::new(graph.shape(graph.input), graph.preprocess.clone(), Settings { steps: r.steps, seed: r.seed, ..Default::default() }).map_err(bad)?;
    let start = objective(&vis.input()).map_err(bad)?.0;
    for _ in 0..r.steps {
        vis.step(&mut objective).map_err(bad)?;
    }
    let end = objective(&vis.input()).map_err(bad)?.0;
    let ms = t0.elapsed().as_secs_f64() * 1e3;

    std::fs::create_dir_all(r.out).with_context(|| format!("cannot create {}", r.out.display()))?;
    npy::write(&r.out.join("input.npy"), &vis.input())?;
    let img = image::RgbImage::from_raw(side as u32, side as u32, vis.rgb8()).context("image size")?;
    img.save(r.out.join("image.png")).with_context(|| format!("cannot write {}", r.out.join("image.png").display()))?;
    if r.json {
        // The objective is the channel's mean before its ReLU where it has one (`objective_tensor`).
        println!(
            "{}",
            json!({"model": graph.name, "layer": r.layer, "channel": r.channel, "steps": r.steps, "objective_start": start, "objective_end": end, "ms": ms,
                   "objective_tensor": graph.value(layer).name, "objective_channel": channel})
        );
    } else {
        println!(
            "{} channel {} of {}: mean activation (before its ReLU: {} channel {channel}) {start:.4} -> {end:.4} in {} steps, {ms:.0} ms ({:.1} steps/s, {}) -> {}",
            r.layer,
            r.channel,
            graph.name,
            graph.value(layer).name,
            r.steps,
            r.steps as f64 / (ms / 1e3),
            engine.label(),
            r.out.display()
        );
    }
    Ok(())
}
