//! Why the network said a class: CAM, Grad-CAM, saliency, guided backprop and occlusion, and
//! the deletion curve that scores how faithful a heatmap is. The gradients come from
//! `grad::backward` on the activations of any CPU engine's forward pass; occlusion and the
//! deletion curve only run forward passes, through a closure the caller supplies.

use std::borrow::Cow;

use super::{backward, ReluRule, ValueSource};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, ValueId};
use crate::tensor::{Tensor, TensorOf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Cam,
    GradCam,
    Saliency,
    Guided,
    Occlusion,
}

impl Method {
    pub fn key(self) -> &'static str {
        match self {
            Method::Cam => "cam",
            Method::GradCam => "gradcam",
            Method::Saliency => "saliency",
            Method::Guided => "guided",
            Method::Occlusion => "occlusion",
        }
    }

    pub fn from_key(k: &str) -> Option<Method> {
        [Method::Cam, Method::GradCam, Method::Saliency, Method::Guided, Method::Occlusion].into_iter().find(|m| m.key() == k)
    }
}

/// A heatmap and what it was computed from.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// [H, W]: the layer's size for CAM and Grad-CAM, the input's for the others.
    pub heatmap: Tensor,
    /// CAM and Grad-CAM: w_k per channel, unnormalized.
    pub weights: Option<Vec<f32>>,
    /// Saliency and guided backprop: d score / d input, the input's shape.
    pub grad: Option<Tensor>,
    /// The activation the map is made from (CAM, Grad-CAM).
    pub layer: Option<ValueId>,
}

/// The class score: the logits, i.e. the input of the model's final Softmax where it ends in
/// one, else its output. Must be [1, classes].
pub fn score_value(graph: &Graph) -> Result<ValueId> {
    head_score(graph, 0)
}

/// The class score of output `head` (0: the main classifier; GoogLeNet's aux heads follow).
pub fn head_score(graph: &Graph, head: usize) -> Result<ValueId> {
    let out = *graph.outputs.get(head).ok_or_else(|| Error::Input(format!("the model has no output {head}")))?;
    let producers = graph.producers();
    let v = match producers[out].map(|p| &graph.nodes[p]) {
        Some(n) if matches!(n.op, Op::Softmax { .. }) => n.inputs[0],
        _ => out,
    };
    // [1, classes], or [1, classes, 1, 1] where the classifier is a conv and a pool.
    let s = graph.shape(v);
    if s.iter().filter(|&&d| d > 1).count() != 1 {
        return Err(Error::Input(format!("the model's output {:?} is not one score per class", s)));
    }
    Ok(v)
}

fn spatial(graph: &Graph, v: ValueId) -> usize {
    let s = graph.shape(v);
    if s.len() == 4 {
        s[2] * s[3]
    } else {
        0
    }
}

/// Grad-CAM's default layer: the last conv block's output (a conv, its ReLU or a module's
/// concat) that still has a spatial map: GoogLeNet's inception_5b/output, VGG16's conv5_3.
pub fn default_layer(graph: &Graph) -> Result<ValueId> {
    // Only layers the main class score depends on (not an auxiliary head's convs).
    let producers = graph.producers();
    let mut feeds = vec![false; graph.values.len()];
    let mut stack = vec![score_value(graph)?];
    while let Some(v) = stack.pop() {
        if std::mem::replace(&mut feeds[v], true) {
            continue;
        }
        if let Some(p) = producers[v] {
            stack.extend(graph.nodes[p].inputs.iter().copied());
        }
    }
    graph
        .nodes
        .iter()
        .rev()
        .find(|n| feeds[n.output] && matches!(n.op, Op::Conv { .. } | Op::Relu | Op::Concat { .. }) && spatial(graph, n.output) > 1)
        .map(|n| n.output)
        .ok_or_else(|| Error::Input("the model has no convolutional layer with a spatial map".into()))
}

/// A layer by its tensor name (as `run --dump` names it), checked to be a spatial map.
pub fn layer_value(graph: &Graph, name: &str) -> Result<ValueId> {
    let v = graph.values.iter().position(|v| v.name == name).ok_or_else(|| Error::Input(format!("no tensor named '{name}' (see `convlens inspect --json`)")))?;
    if graph.value(v).is_const {
        return Err(Error::Input(format!("'{name}' is a weight, not a layer's output")));
    }
    if spatial(graph, v) <= 1 {
        return Err(Error::Input(format!("'{name}' has shape {:?}: no spatial map to explain (pick a layer before the global pooling)", graph.shape(v))));
    }
    Ok(v)
}

/// The backward pass's seed for `class`: one at the class's score, zero elsewhere.
pub fn seed(graph: &Graph, score: ValueId, class: usize) -> Result<Tensor> {
    let shape = graph.shape(score).to_vec();
    let classes: usize = shape.iter().product();
    if class >= classes {
        return Err(Error::Input(format!("class {class} is out of range (the model has {classes} classes)")));
    }
    let mut t = Tensor::zeros(&shape)?;
    t.data[class] = 1.0;
    Ok(t)
}

fn plane(t: &Tensor) -> (usize, usize, usize) {
    match t.shape[..] {
        [_, c, h, w] => (c, h, w),
        _ => (0, 0, 0),
    }
}

/// sum_k w_k A_k through a ReLU, as [H, W].
fn weighted_sum(a: &Tensor, w: &[f32]) -> Tensor {
    let (c, h, wd) = plane(a);
    let mut map = vec![0.0f32; h * wd];
    for (k, &wk) in w.iter().enumerate().take(c) {
        for (m, &v) in map.iter_mut().zip(&a.data[k * h * wd..(k + 1) * h * wd]) {
            *m += wk * v;
        }
    }
    Tensor { shape: vec![h, wd], data: map.into_iter().map(|v| v.max(0.0)).collect() }
}

/// Grad-CAM (Selvaraju et al. 2017): w_k = spatial mean of d score / d A_k; map = ReLU(sum w_k A_k).
pub fn grad_cam(graph: &Graph, get: &ValueSource<'_, f32>, score: ValueId, class: usize, layer: ValueId) -> Result<Explanation> {
    let grads = backward(graph, get, score, seed(graph, score, class)?, Some(layer), &[], ReluRule::Plain)?;
    let name = &graph.value(layer).name;
    let a = get(layer).ok_or_else(|| Error::Input(format!("the forward pass did not keep '{name}'")))?;
    grad_cam_from(graph, &a, grads.get(&layer), layer)
}

/// Grad-CAM from the layer's activation `a` and its gradient `g` (None: the layer does not
/// lead to the score), wherever the backward pass ran.
pub fn grad_cam_from(graph: &Graph, a: &Tensor, g: Option<&Tensor>, layer: ValueId) -> Result<Explanation> {
    let name = &graph.value(layer).name;
    let g = g.ok_or_else(|| Error::Input(format!("'{name}' does not lead to the class score")))?;
    let (c, h, w) = plane(g);
    let weights: Vec<f32> = (0..c).map(|k| g.data[k * h * w..(k + 1) * h * w].iter().sum::<f32>() / (h * w) as f32).collect();
    Ok(Explanation { heatmap: weighted_sum(a, &weights), weights: Some(weights), grad: None, layer: Some(layer) })
}

/// The map CAM weighs (the global pool's input) and the classifier node after the pool, if any:
/// all CAM reads of a pass, so an engine on the GPU reads back this one map.
pub fn cam_parts(graph: &Graph, score: ValueId) -> Result<(ValueId, Option<usize>)> {
    let producers = graph.producers();
    let mut v = score;
    let mut fc = None;
    let no_cam = || Error::Input("CAM needs global average pooling right before the classifier; this model has none (use Grad-CAM)".into());
    loop {
        let at = producers[v].ok_or_else(no_cam)?;
        let node = &graph.nodes[at];
        match &node.op {
            Op::Reshape | Op::Identity | Op::Softmax { .. } => {}
            Op::Gemm { .. } | Op::MatMul if fc.is_none() => fc = Some(at),
            Op::GlobalAveragePool => return Ok((node.inputs[0], fc)),
            Op::AveragePool { .. } if spatial(graph, node.output) == 1 => return Ok((node.inputs[0], fc)),
            _ => return Err(no_cam()),
        }
        v = graph.data_input(node);
    }
}

/// CAM (Zhou et al. 2016), for heads that average-pool a map into the classifier: the
/// classifier's row for the class weighs the map's channels (GoogLeNet); where the last conv
/// already makes one map per class (SqueezeNet), that map.
pub fn cam(graph: &Graph, get: &ValueSource<'_, f32>, score: ValueId, class: usize) -> Result<Explanation> {
    seed(graph, score, class)?;
    let (pooled, fc) = cam_parts(graph, score)?;
    let no_cam = || Error::Input("CAM needs global average pooling right before the classifier; this model has none (use Grad-CAM)".into());
    let a = get(pooled).ok_or_else(|| Error::Input("the forward pass did not keep the pooled map".into()))?;
    let (c, h, w) = plane(&a);
    let weights: Vec<f32> = match fc.map(|i| &graph.nodes[i]) {
        Some(node) => {
            let wt = get(node.inputs[1]).ok_or_else(no_cam)?;
            let trans_b = matches!(node.op, Op::Gemm { trans_b: true, .. });
            let (k_dim, n_dim) = if trans_b { (wt.shape[1], wt.shape[0]) } else { (wt.shape[0], wt.shape[1]) };
            if k_dim != c || class >= n_dim {
                return Err(no_cam());
            }
            (0..c).map(|k| if trans_b { wt.data[class * c + k] } else { wt.data[k * n_dim + class] }).collect()
        }
        None if class < c => (0..c).map(|k| if k == class { 1.0 } else { 0.0 }).collect(),
        None => return Err(no_cam()),
    };
    let _ = (h, w);
    Ok(Explanation { heatmap: weighted_sum(&a, &weights), weights: Some(weights), grad: None, layer: Some(pooled) })
}

/// Saliency (Simonyan et al. 2014) or guided backprop: d score / d input, and as a heatmap its
/// largest magnitude over the colour channels.
pub fn input_gradient(graph: &Graph, get: &ValueSource<'_, f32>, score: ValueId, class: usize, rule: ReluRule) -> Result<Explanation> {
    let mut grads = backward(graph, get, score, seed(graph, score, class)?, None, &[], rule)?;
    input_gradient_from(graph, grads.remove(&graph.input))
}

/// Saliency or guided backprop from d score / d input (None: the input does not reach the
/// score, so all zero), wherever the backward pass ran.
pub fn input_gradient_from(graph: &Graph, g: Option<Tensor>) -> Result<Explanation> {
    let g = match g {
        Some(g) => g,
        None => Tensor::zeros(graph.shape(graph.input))?,
    };
    let (c, h, w) = plane(&g);
    let heat = (0..h * w).map(|i| (0..c).map(|k| g.data[k * h * w + i].abs()).fold(0.0, f32::max)).collect();
    Ok(Explanation { heatmap: Tensor { shape: vec![h, w], data: heat }, weights: None, grad: Some(g), layer: None })
}

/// The class's probability (softmax of the scores) for an input: what occlusion and the
/// deletion curve watch.
pub type ProbOf<'a> = dyn FnMut(&Tensor) -> Result<f32> + 'a;

/// Occlusion sensitivity (Zeiler & Fergus 2014): the input with a `patch`-px square set to 0
/// (the mean pixel, after normalisation) every `stride` px; each pixel's heat is the mean drop
/// in the class probability over the patches that covered it. In pieces, so a caller whose
/// forward pass is asynchronous (the browser worker) can drive it.
pub struct Occlusion {
    pub patch: usize,
    /// Top-left corners, one forward pass each.
    pub positions: Vec<(usize, usize)>,
    shape: Vec<usize>,
}

impl Occlusion {
    pub fn new(x_shape: &[usize], patch: usize, stride: usize) -> Result<Self> {
        let [_, _, h, w] = x_shape[..] else { return Err(Error::Shape("occlusion needs an NCHW input".into())) };
        if patch == 0 || stride == 0 || patch > h.min(w) {
            return Err(Error::Input(format!("occlusion patch {patch} and stride {stride} do not fit a {h}x{w} input")));
        }
        let starts = |side: usize| (0..=side - patch).step_by(stride).chain((!(side - patch).is_multiple_of(stride)).then_some(side - patch)).collect::<Vec<_>>();
        let positions = starts(h).into_iter().flat_map(|y| starts(w).into_iter().map(move |x| (y, x))).collect();
        Ok(Occlusion { patch, positions, shape: x_shape.to_vec() })
    }

    /// `x` with the patch at `pos` set to 0.
    pub fn occluded(&self, x: &Tensor, (y0, x0): (usize, usize)) -> Tensor {
        let (c, h, w) = (self.shape[1], self.shape[2], self.shape[3]);
        let mut xo = x.clone();
        for ch in 0..c {
            for y in y0..y0 + self.patch {
                xo.data[(ch * h + y) * w + x0..(ch * h + y) * w + x0 + self.patch].fill(0.0);
            }
        }
        xo
    }

    /// The heatmap from the unoccluded probability and one probability per position.
    pub fn map(&self, base: f32, probs: &[f32]) -> Explanation {
        let (h, w) = (self.shape[2], self.shape[3]);
        let mut heat = vec![0.0f32; h * w];
        let mut covered = vec![0u32; h * w];
        for (&(y0, x0), &p) in self.positions.iter().zip(probs) {
            for y in y0..y0 + self.patch {
                for xx in x0..x0 + self.patch {
                    heat[y * w + xx] += base - p;
                    covered[y * w + xx] += 1;
                }
            }
        }
        let data = heat.iter().zip(&covered).map(|(&s, &n)| if n > 0 { s / n as f32 } else { 0.0 }).collect();
        Explanation { heatmap: Tensor { shape: vec![h, w], data }, weights: None, grad: None, layer: None }
    }
}

/// Occlusion with a synchronous forward pass (the CLI).
pub fn occlusion(x: &Tensor, patch: usize, stride: usize, prob: &mut ProbOf<'_>) -> Result<Explanation> {
    let o = Occlusion::new(&x.shape, patch, stride)?;
    let base = prob(x)?;
    let probs = o.positions.iter().map(|&p| prob(&o.occluded(x, p))).collect::<Result<Vec<_>>>()?;
    Ok(o.map(base, &probs))
}

/// `map` ([h, w]) resized to `side` x `side` bilinearly (align corners off, as image resizers do).
pub fn upsample(map: &Tensor, side: usize) -> Tensor {
    let [h, w] = map.shape[..] else { return map.clone() };
    if h == side && w == side {
        return map.clone();
    }
    let at = |y: usize, x: usize| map.data[y.min(h - 1) * w + x.min(w - 1)];
    let mut out = vec![0.0; side * side];
    for oy in 0..side {
        let fy = ((oy as f32 + 0.5) * h as f32 / side as f32 - 0.5).max(0.0);
        let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
        for ox in 0..side {
            let fx = ((ox as f32 + 0.5) * w as f32 / side as f32 - 0.5).max(0.0);
            let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
            let top = at(y0, x0) * (1.0 - tx) + at(y0, x0 + 1) * tx;
            let bottom = at(y0 + 1, x0) * (1.0 - tx) + at(y0 + 1, x0 + 1) * tx;
            out[oy * side + ox] = top * (1.0 - ty) + bottom * ty;
        }
    }
    Tensor { shape: vec![side, side], data: out }
}

/// The deletion curve (Petsiuk et al. 2018): the input's pixels removed (set to 0, the mean
/// pixel) most important first in `steps` equal parts, the class probability after each; its
/// area (the mean of the trapezoids, 0..1) is lower when the map found what mattered. The
/// inputs come first (`deletion_inputs`: the unchanged input, then one per step), so a caller
/// with an asynchronous forward pass can drive it; `area` closes it.
pub fn deletion_inputs(x: &Tensor, heatmap: &Tensor, steps: usize) -> Result<Vec<Tensor>> {
    let [_, c, h, w] = x.shape[..] else { return Err(Error::Shape("the deletion curve needs an NCHW input".into())) };
    let heat = if heatmap.shape == [h, w] { Cow::Borrowed(heatmap) } else { Cow::Owned(upsample(heatmap, h.max(w))) };
    let mut order: Vec<usize> = (0..h * w).collect();
    order.sort_by(|&a, &b| heat.data[b].total_cmp(&heat.data[a]));
    let mut xd = x.clone();
    let mut inputs = vec![xd.clone()];
    for chunk in order.chunks((h * w).div_ceil(steps.max(1))) {
        for &p in chunk {
            for ch in 0..c {
                xd.data[ch * h * w + p] = 0.0;
            }
        }
        inputs.push(xd.clone());
    }
    Ok(inputs)
}

pub fn area(curve: &[f32]) -> f32 {
    curve.windows(2).map(|p| (p[0] + p[1]) / 2.0).sum::<f32>() / (curve.len().saturating_sub(1)).max(1) as f32
}

/// The deletion curve with a synchronous forward pass (the CLI): (curve, area).
pub fn deletion_curve(x: &Tensor, heatmap: &Tensor, steps: usize, prob: &mut ProbOf<'_>) -> Result<(Vec<f32>, f32)> {
    let curve = deletion_inputs(x, heatmap, steps)?.iter().map(prob).collect::<Result<Vec<f32>>>()?;
    let auc = area(&curve);
    Ok((curve, auc))
}

/// The class probabilities from the scores (softmax, in f64 for stability).
pub fn probabilities(scores: &[f32]) -> Vec<f32> {
    let mut p: Vec<f64> = scores.iter().map(|&v| v as f64).collect();
    crate::tensor::softmax_in_place(&mut p);
    p.into_iter().map(|v| v as f32).collect()
}

pub type ValueSourceF32<'a> = ValueSource<'a, f32>;

/// What `grad::backward` reads in f32: the kept activations of a forward pass, the input, and
/// the graph's weights, all borrowed.
pub fn f32_source<'a>(graph: &'a Graph, input: &'a Tensor, kept: &'a dyn Fn(ValueId) -> Option<&'a Tensor>) -> impl Fn(ValueId) -> Option<Cow<'a, TensorOf<f32>>> + 'a {
    move |v| {
        if v == graph.input {
            return Some(Cow::Borrowed(input));
        }
        if graph.value(v).is_const {
            return graph.const_data(v).ok();
        }
        kept(v).map(Cow::Borrowed)
    }
}
