//! The gradient-based explanations on whatever engine ran the pass: CAM from the one map it
//! weighs, Grad-CAM from the layer's activation and its gradient, saliency and guided
//! backprop from the input's gradient. Only those tensors cross from a GPU; the backward pass
//! runs where `Engine::backward` puts it. The CLI and the browser worker both call this.

use convlens_core::grad::explain::{self as ex, Explanation, Method};
use convlens_core::grad::ReluRule;
use convlens_core::graph::ValueId;
use convlens_core::Tensor;

use crate::{BackwardRan, Engine, Error, Result};

/// `method` (not occlusion, which is forward passes) for `class` of the score `score`, on the
/// last pass on `x`. `layer`: Grad-CAM's (None: its default). Also says where the backward
/// pass ran (None for CAM, which has none).
pub async fn gradient_explanation(engine: &Engine, x: &Tensor, method: Method, score: ValueId, class: usize, layer: Option<ValueId>) -> Result<(Explanation, Option<BackwardRan>)> {
    let graph = engine.graph().clone();
    let seed = ex::seed(&graph, score, class)?;
    match method {
        Method::Cam => {
            let (pooled, _) = ex::cam_parts(&graph, score)?;
            let kept = engine.read(&[pooled]).await?;
            let lookup = |v: ValueId| kept.get(&v);
            let get = ex::f32_source(&graph, x, &lookup);
            Ok((ex::cam(&graph, &get, score, class)?, None))
        }
        Method::GradCam => {
            let layer = match layer {
                Some(l) => l,
                None => ex::default_layer(&graph)?,
            };
            let g = engine.backward(x, score, &seed, Some(layer), ReluRule::Plain).await?;
            let a = engine.read(&[layer]).await?;
            let a = a.get(&layer).ok_or_else(|| Error::Read("the layer was not read back".into()))?;
            Ok((ex::grad_cam_from(&graph, a, g.values.get(&layer), layer)?, Some(g.ran)))
        }
        Method::Saliency | Method::Guided => {
            let rule = if method == Method::Guided { ReluRule::Guided } else { ReluRule::Plain };
            let mut g = engine.backward(x, score, &seed, None, rule).await?;
            Ok((ex::input_gradient_from(&graph, g.values.remove(&graph.input))?, Some(g.ran)))
        }
        Method::Occlusion => Err(Error::Read("occlusion is forward passes, not a gradient".into())),
    }
}

/// `gradient_explanation`, blocking (native callers).
#[cfg(not(target_arch = "wasm32"))]
pub fn gradient_explanation_blocking(engine: &Engine, x: &Tensor, method: Method, score: ValueId, class: usize, layer: Option<ValueId>) -> Result<(Explanation, Option<BackwardRan>)> {
    pollster::block_on(gradient_explanation(engine, x, method, score, class, layer))
}
