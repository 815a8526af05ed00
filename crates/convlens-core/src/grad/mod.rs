//! Reverse-mode gradients through a whole graph: d (one scalar, a class score) / d any
//! activation or the input, from the activations a forward pass kept. `ops` holds each op's
//! backward; `explain` builds CAM, Grad-CAM, saliency, guided backprop and occlusion on it.
//!
//! Generic over the element: the app and the CLI run it in f32 on the activations of any CPU
//! engine; the tests run it in f64 on `reference_forward` and compare with central differences.

pub mod explain;
pub mod fast;
pub mod ops;

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::{Graph, Op, ValueId};
use crate::kernels::{reference_node, Real};
use crate::tensor::TensorOf;

/// How ReLUs pass gradients back: plainly, or guided (only positive gradients at positive
/// inputs, Springenberg et al. 2015).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReluRule {
    Plain,
    Guided,
}

/// Where the forward pass's values come from: borrowed activations and weights (f32), or
/// owned copies (the f64 checks).
pub type ValueSource<'a, T> = dyn Fn(ValueId) -> Option<Cow<'a, TensorOf<T>>> + 'a;

/// Every value of `graph` on `input` with the scalar reference kernels in `T` (weights
/// converted from f32): the forward pass the f64 gradient checks difference.
pub fn reference_forward<T: Real>(graph: &Graph, input: &TensorOf<T>) -> Result<Vec<Option<TensorOf<T>>>> {
    let mut values: Vec<Option<TensorOf<T>>> = graph
        .values
        .iter()
        .enumerate()
        .map(|(id, v)| v.is_const.then(|| graph.const_data(id).ok()).flatten().map(|t| TensorOf { shape: t.shape.clone(), data: t.data.iter().map(|&x| T::from(x).unwrap()).collect() }))
        .collect();
    values[graph.input] = Some(input.clone());
    for (i, node) in graph.nodes.iter().enumerate() {
        let ins: Vec<&TensorOf<T>> =
            node.inputs.iter().map(|&v| values[v].as_ref().ok_or_else(|| Error::Input(format!("value {v} was not computed")))).collect::<Result<_>>()?;
        let out = reference_node(graph, i, &ins)?;
        values[node.output] = Some(out);
    }
    Ok(values)
}

/// d `seed`·(value `of`) / d the values in `keep` (and `until`, and the input if the walk gets
/// there), walking the nodes back from the last to the producer of `until` (or to the input).
/// Other gradients are dropped as soon as they are spent. Values that get no gradient are absent.
pub fn backward<T: Real>(
    graph: &Graph,
    get: &ValueSource<'_, T>,
    of: ValueId,
    seed: TensorOf<T>,
    until: Option<ValueId>,
    keep: &[ValueId],
    rule: ReluRule,
) -> Result<HashMap<ValueId, TensorOf<T>>> {
    if seed.shape != graph.shape(of) {
        return Err(Error::Shape(format!("gradient seed {:?} for a value of shape {:?}", seed.shape, graph.shape(of))));
    }
    let producers = graph.producers();
    let stop = until.and_then(|v| producers[v]);
    let mut grads: HashMap<ValueId, TensorOf<T>> = HashMap::from([(of, seed)]);
    for i in (0..graph.nodes.len()).rev() {
        if stop.is_some_and(|s| i <= s) {
            break;
        }
        let node = &graph.nodes[i];
        let Some(dy) = grads.get(&node.output) else { continue };
        let t = web_time::Instant::now();
        let back = node_backward(graph, i, dy, get, rule)?;
        if std::env::var_os("CONVLENS_PROFILE_BACKWARD").is_some() {
            eprintln!("{:>8.2} ms {} {}", t.elapsed().as_secs_f64() * 1e3, node.op_type, node.name);
        }
        for (v, g) in back {
            match grads.get_mut(&v) {
                Some(acc) => acc.data.iter_mut().zip(&g.data).for_each(|(a, b)| *a += *b),
                None => {
                    grads.insert(v, g);
                }
            }
        }
        // This node's output gradient is spent: only the values asked for stay.
        if Some(node.output) != until && !keep.contains(&node.output) {
            grads.remove(&node.output);
        }
    }
    Ok(grads)
}

/// What a backward pass from `of` down to `until` (None: the input) holds at most at once, in
/// bytes of f32 gradients, walking the shapes as `backward` walks the values: the memory the
/// explanations add on top of the kept activations.
pub fn peak_gradient_bytes(graph: &Graph, of: ValueId, until: Option<ValueId>) -> u64 {
    let producers = graph.producers();
    let stop = until.and_then(|v| producers[v]);
    let size = |v: ValueId| graph.shape(v).iter().product::<usize>() as u64 * 4;
    let mut live: std::collections::HashSet<ValueId> = [of].into();
    let mut now = size(of);
    let mut peak = now;
    for i in (0..graph.nodes.len()).rev() {
        if stop.is_some_and(|s| i <= s) {
            break;
        }
        let node = &graph.nodes[i];
        if !live.contains(&node.output) {
            continue;
        }
        for &v in node.inputs.iter().filter(|&&v| !graph.value(v).is_const) {
            if live.insert(v) {
                now += size(v);
            }
        }
        peak = peak.max(now);
        if Some(node.output) != until {
            live.remove(&node.output);
            now -= size(node.output);
        }
    }
    peak
}

fn value<'a, T: Real>(get: &ValueSource<'a, T>, graph: &Graph, v: ValueId) -> Result<Cow<'a, TensorOf<T>>> {
    get(v).ok_or_else(|| Error::Input(format!("the backward pass needs '{}', which the forward pass did not keep", graph.value(v).name)))
}

/// One node's backward: (input, d score / d input) for each of its activation inputs.
fn node_backward<T: Real>(graph: &Graph, index: usize, dy: &TensorOf<T>, get: &ValueSource<'_, T>, rule: ReluRule) -> Result<Vec<(ValueId, TensorOf<T>)>> {
    let node = &graph.nodes[index];
    let is_act = |i: usize| node.inputs.get(i).is_some_and(|&v| !graph.value(v).is_const);
    let shape = |i: usize| graph.shape(node.inputs[i]).to_vec();
    let guided = rule == ReluRule::Guided;
    // A ReLU fused into this node: its mask first, from the node's own (post-ReLU) output.
    let through_relu = |fused: bool| -> Result<Cow<'_, TensorOf<T>>> {
        if fused {
            Ok(Cow::Owned(ops::relu(dy, &*value(get, graph, node.output)?, guided)))
        } else {
            Ok(Cow::Borrowed(dy))
        }
    };
    let err = |e: Error| Error::node(&node.name, &node.op_type, e.to_string());
    let mut out = Vec::new();
    match &node.op {
        Op::Conv { window, group, relu } => {
            let dy = through_relu(*relu)?;
            if is_act(0) {
                out.push((node.inputs[0], T::conv_input(&dy, &*value(get, graph, node.inputs[1])?, &shape(0), window, *group).map_err(err)?));
            }
        }
        Op::Relu => out.push((node.inputs[0], ops::relu(dy, &*value(get, graph, node.inputs[0])?, guided))),
        Op::Clip { min, max } => out.push((node.inputs[0], ops::clip(dy, &*value(get, graph, node.inputs[0])?, *min, *max, guided))),
        Op::MaxPool { window, .. } => out.push((node.inputs[0], ops::max_pool(dy, &*value(get, graph, node.inputs[0])?, window).map_err(err)?)),
        Op::AveragePool { window, count_include_pad, .. } => {
            out.push((node.inputs[0], ops::average_pool(dy, &shape(0), window, *count_include_pad).map_err(err)?))
        }
        Op::GlobalAveragePool => out.push((node.inputs[0], ops::global_average_pool(dy, &shape(0)).map_err(err)?)),
        Op::Lrn { size, alpha, beta, bias } => {
            out.push((node.inputs[0], ops::lrn(dy, &*value(get, graph, node.inputs[0])?, *size, *alpha, *beta, *bias).map_err(err)?))
        }
        Op::Concat { axis } => {
            let shapes: Vec<Vec<usize>> = (0..node.inputs.len()).map(shape).collect();
            let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
            for (k, g) in ops::concat(dy, &refs, *axis).into_iter().enumerate() {
                if is_act(k) {
                    out.push((node.inputs[k], g));
                }
            }
        }
        Op::Gemm { alpha, beta, trans_a, trans_b, relu } => {
            let dy = through_relu(*relu)?;
            if is_act(0) {
                let da = match graph.value(node.inputs[1]).half.as_deref() {
                    Some(h) => ops::gemm_a_half(&dy, &shape(0), h, *alpha, *trans_a, *trans_b),
                    None => ops::gemm_a(&dy, &shape(0), &*value(get, graph, node.inputs[1])?, *alpha, *trans_a, *trans_b),
                };
                out.push((node.inputs[0], da.map_err(err)?));
            }
            if is_act(1) {
                out.push((node.inputs[1], ops::gemm_b(&dy, &*value(get, graph, node.inputs[0])?, &shape(1), *alpha, *trans_a, *trans_b).map_err(err)?));
            }
            if is_act(2) {
                out.push((node.inputs[2], ops::unbroadcast(&dy, &shape(2), &dy.shape, T::from(*beta).unwrap()).map_err(err)?));
            }
        }
        Op::MatMul => {
            if shape(0).len() != 2 || shape(1).len() != 2 {
                return Err(err(Error::Unsupported(format!("the gradient of a MatMul of {:?} by {:?} (only 2-D products have one)", shape(0), shape(1)))));
            }
            if is_act(0) {
                out.push((node.inputs[0], ops::gemm_a(dy, &shape(0), &*value(get, graph, node.inputs[1])?, 1.0, false, false).map_err(err)?));
            }
            if is_act(1) {
                out.push((node.inputs[1], ops::gemm_b(dy, &*value(get, graph, node.inputs[0])?, &shape(1), 1.0, false, false).map_err(err)?));
            }
        }
        Op::Add => {
            for (k, other) in [(0, 1), (1, 0)] {
                if is_act(k) {
                    out.push((node.inputs[k], ops::unbroadcast(dy, &shape(k), &shape(other), T::one()).map_err(err)?));
                }
            }
        }
        Op::Mul => {
            for (k, other) in [(0, 1), (1, 0)] {
                if is_act(k) {
                    out.push((node.inputs[k], ops::mul(dy, &*value(get, graph, node.inputs[other])?, &shape(k)).map_err(err)?));
                }
            }
        }
        Op::Reshape | Op::Identity => out.push((node.inputs[0], TensorOf { shape: shape(0), data: dy.data.clone() })),
        Op::Transpose { perm } => {
            let inv = crate::kernels::reference::inverse_perm(perm);
            out.push((node.inputs[0], crate::kernels::reference::transpose(dy, &inv).map_err(err)?))
        }
        Op::Softmax { axis, coerce_2d } => out.push((node.inputs[0], ops::softmax(dy, &*value(get, graph, node.output)?, *axis, *coerce_2d))),
        Op::BatchNorm { epsilon } => {
            out.push((node.inputs[0], ops::batch_norm(dy, &*value(get, graph, node.inputs[1])?, &*value(get, graph, node.inputs[4])?, *epsilon)))
        }
    }
    Ok(out)
}
