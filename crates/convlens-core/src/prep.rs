//! Op preparation every engine shares, so the CPU and the GPU cannot disagree on which Gemm is
//! a fully connected layer, how its weights are laid out, or what a BatchNorm multiplies by.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op};
use crate::half::HalfTensor;
use crate::tensor::Tensor;

/// An FC layer's weights as [N, K] rows, in the precision the graph holds them.
#[derive(Clone, Debug)]
pub enum FcRows {
    F32(Arc<Tensor>),
    /// The f16 option: half the bytes held and streamed per pass.
    F16(Arc<HalfTensor>),
}

impl FcRows {
    /// Rows `n0..n0 + rows` as f32, widened where held in half (the GPU uploads FC weights in
    /// chunks, so at most one chunk is ever widened at a time).
    pub fn rows_f32(&self, k: usize, n0: usize, rows: usize) -> Cow<'_, [f32]> {
        let range = n0 * k..(n0 + rows) * k;
        match self {
            FcRows::F32(t) => Cow::Borrowed(&t.data[range]),
            FcRows::F16(h) => Cow::Owned(h.bits[range].iter().map(|&b| crate::half::to_f32(b)).collect()),
        }
    }
}

/// A Gemm run as a batch-1 fully connected layer: y = alpha * (W rows . x) + bias.
pub struct FcWeights {
    pub k: usize,
    pub n: usize,
    /// W as [N, K] rows: the file's own tensor when transB=1 (shared), else a transposed copy.
    pub rows: FcRows,
    /// beta * C, one value per output.
    pub bias: Option<Vec<f32>>,
    pub alpha: f32,
    pub relu: bool,
}

/// Whether `node` is a Gemm both engines run as a fully connected layer: batch 1, A not
/// transposed, B a constant, C absent or constant. Any other Gemm is a general matrix product.
pub fn is_fc(graph: &Graph, node: &Node) -> bool {
    matches!(node.op, Op::Gemm { trans_a: false, .. })
        && graph.shape(node.inputs[0]).first() == Some(&1)
        && graph.value(node.inputs[1]).is_const
        && node.inputs.get(2).is_none_or(|&c| graph.value(c).is_const)
}

/// The fully connected layer's weights, `None` when `node` is not one (`is_fc`).
pub fn fc_weights(graph: &Graph, node: &Node) -> Option<Result<FcWeights>> {
    let Op::Gemm { alpha, beta, trans_b, relu, .. } = node.op else { return None };
    if !is_fc(graph, node) {
        return None;
    }
    let wrap = |e: Error| Error::node(&node.name, &node.op_type, e.to_string());
    Some((|| {
        let c = node.inputs.get(2).map(|&c| graph.const_data(c)).transpose()?;
        let w = graph.value(node.inputs[1]);
        match (&w.data, &w.half) {
            (Some(w), _) => fc_weights_from(w, trans_b, c.as_deref(), alpha, beta, relu),
            (None, Some(h)) => {
                let [k, n] = fc_layout(&h.shape, trans_b)?;
                let rows = if trans_b { Arc::clone(h) } else { Arc::new(h.transposed()?) };
                Ok(FcWeights { k, n, rows: FcRows::F16(rows), bias: fc_bias(c.as_deref(), n, beta)?, alpha, relu })
            }
            (None, None) => Err(Error::Input("no weights loaded".into())),
        }
    })()
    .map_err(wrap))
}

/// The fully connected layout of Gemm(x, W, C) with W as given in the file.
pub fn fc_weights_from(w: &Arc<Tensor>, trans_b: bool, c: Option<&Tensor>, alpha: f32, beta: f32, relu: bool) -> Result<FcWeights> {
    let [k, n] = fc_layout(&w.shape, trans_b)?;
    let rows = if trans_b {
        Arc::clone(w)
    } else {
        Arc::new(Tensor::new(vec![n, k], crate::tensor::transpose(&w.data, k, n))?)
    };
    Ok(FcWeights { k, n, rows: FcRows::F32(rows), bias: fc_bias(c, n, beta)?, alpha, relu })
}

/// [K, N] of an FC layer whose weight has `shape` in the file.
fn fc_layout(shape: &[usize], trans_b: bool) -> Result<[usize; 2]> {
    match shape[..] {
        [r, c] if trans_b => Ok([c, r]),
        [r, c] => Ok([r, c]),
        _ => Err(Error::Shape(format!("Gemm weight must be 2-D, got {shape:?}"))),
    }
}

/// beta * C as one value per output.
fn fc_bias(c: Option<&Tensor>, n: usize, beta: f32) -> Result<Option<Vec<f32>>> {
    Ok(match c {
        None => None,
        Some(c) if c.len() == n => Some(c.data.iter().map(|v| v * beta).collect()),
        Some(c) if c.len() == 1 => Some(vec![c.data[0] * beta; n]),
        Some(c) => return Err(Error::Shape(format!("Gemm C {:?} is not one value per output", c.shape))),
    })
}

/// Inference BatchNorm as a per-channel affine y = x * scale + shift.
pub fn batchnorm_affine(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], epsilon: f32) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(var).map(|(g, v)| g / (v + epsilon).sqrt()).collect();
    let shift = beta.iter().zip(mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    (scale, shift)
}
