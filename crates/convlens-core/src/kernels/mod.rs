//! CPU kernels: `reference` is the scalar oracle; `gemm`, `conv` and `winograd` are the fast path.

pub mod concat;
pub mod conv;
pub mod fc;
pub mod gemm;
pub mod pool;
pub mod reference;
pub mod simd;
pub mod winograd;

use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::tensor::TensorOf;

/// The element the reference kernels (and their gradients) are written over: f32 runs, f64 checks.
pub trait Real: num_traits::Float + std::ops::AddAssign + std::iter::Sum + std::fmt::Debug + Send + Sync + 'static {
    /// A conv's input gradient: the scalar reference, or in f32 the packed GEMM.
    fn conv_input(dy: &TensorOf<Self>, w: &TensorOf<Self>, x_shape: &[usize], win: &crate::graph::Window, group: usize) -> Result<TensorOf<Self>> {
        crate::grad::ops::conv(dy, w, x_shape, win, group)
    }
}
impl Real for f32 {
    fn conv_input(dy: &TensorOf<f32>, w: &TensorOf<f32>, x_shape: &[usize], win: &crate::graph::Window, group: usize) -> Result<TensorOf<f32>> {
        crate::grad::fast::conv_input(dy, w, x_shape, win, group)
    }
}
impl Real for f64 {}

/// Runs node `index` with the scalar reference kernels.
pub fn reference_node<T: Real>(graph: &Graph, index: usize, ins: &[&TensorOf<T>]) -> Result<TensorOf<T>> {
    let node = &graph.nodes[index];
    let out_shape = graph.shape(node.output);
    let r = match &node.op {
        Op::Conv { window, group, relu } => reference::conv(ins[0], ins[1], ins.get(2).copied(), window, *group, *relu),
        Op::Relu => Ok(reference::relu(ins[0])),
        Op::Clip { min, max } => Ok(reference::clip(ins[0], *min, *max)),
        Op::MaxPool { window, ceil } => reference::max_pool(ins[0], window, *ceil),
        Op::AveragePool { window, ceil, count_include_pad } => reference::average_pool(ins[0], window, *ceil, *count_include_pad),
        Op::GlobalAveragePool => reference::global_average_pool(ins[0]),
        Op::Lrn { size, alpha, beta, bias } => reference::lrn(ins[0], *size, *alpha, *beta, *bias),
        Op::Concat { axis } => reference::concat(ins, *axis),
        Op::Gemm { alpha, beta, trans_a, trans_b, relu } => {
            reference::gemm(ins[0], ins[1], ins.get(2).copied(), *alpha, *beta, *trans_a, *trans_b, *relu)
        }
        Op::MatMul => reference::matmul(ins[0], ins[1]),
        Op::Add => reference::add(ins[0], ins[1]),
        Op::Mul => reference::mul(ins[0], ins[1]),
        Op::Reshape | Op::Identity => Ok(TensorOf { shape: out_shape.to_vec(), data: ins[0].data.clone() }),
        Op::Transpose { perm } => reference::transpose(ins[0], perm),
        Op::Softmax { axis, coerce_2d } => reference::softmax(ins[0], *axis, *coerce_2d),
        Op::BatchNorm { epsilon } => reference::batch_norm(ins[0], ins[1], ins[2], ins[3], ins[4], *epsilon),
    };
    let out = r.map_err(|e| Error::node(&node.name, &node.op_type, e.to_string()))?;
    if out.shape != out_shape {
        return Err(Error::node(&node.name, &node.op_type, format!("kernel gave {:?}, graph says {:?}", out.shape, out_shape)));
    }
    Ok(out)
}
