//! One file per op family: each owns its kernels (file and entry point), its `Params` (the
//! uniform its WGSL file declares) and its `encode`. `encode_node` is the one exhaustive match
//! over ops: adding an `Op` fails to compile here until the GPU has a way to run it.

mod add;
mod affine;
pub(crate) mod conv;
mod elementwise;
mod fc;
mod matmul;
mod pool;
mod softmax;
pub(crate) mod transpose;

use convlens_core::graph::Op;
use convlens_core::prep;

use super::planner::Planner;
use crate::{GpuError, Result};

pub(crate) fn encode_node(p: &mut Planner, index: usize) -> Result<()> {
    let graph = p.graph;
    let node = &graph.nodes[index];
    let encoded = match &node.op {
        Op::Conv { window, group, relu } => conv::encode(p, index, node, window, *group, *relu),
        Op::MaxPool { .. } | Op::AveragePool { .. } | Op::GlobalAveragePool => pool::encode(p, index, node),
        Op::Relu => elementwise::relu(p, index, node),
        Op::Clip { min, max } => elementwise::clip(p, index, node, *min, *max),
        Op::Lrn { size, alpha, beta, bias } => elementwise::lrn(p, index, node, *size, *alpha, *beta, *bias),
        Op::Concat { axis } => elementwise::concat(p, index, node, *axis),
        Op::Reshape | Op::Identity => elementwise::reshape(p, index, node),
        Op::Transpose { perm } => transpose::encode(p, index, node, perm),
        Op::Softmax { axis, coerce_2d } => softmax::encode(p, index, node, *axis, *coerce_2d),
        Op::Gemm { alpha, beta, trans_a, trans_b, relu } => match prep::fc_weights(graph, node) {
            Some(fc) => fc.map_err(|e| GpuError(e.to_string())).and_then(|fc| fc::encode(p, index, node, fc)),
            None => {
                let g = matmul::Gemm { alpha: *alpha, beta: *beta, trans_a: *trans_a, trans_b: *trans_b, relu: *relu };
                matmul::encode(p, index, node, &g)
            }
        },
        Op::MatMul => matmul::encode_matmul(p, index, node),
        Op::Add => add::add(p, index, node),
        Op::Mul => add::mul(p, index, node),
        Op::BatchNorm { epsilon } => affine::batch_norm(p, index, node, *epsilon),
    };
    encoded.map_err(|e| GpuError(format!("node '{}' ({}): {e}", node.name, node.op_type)))
}
