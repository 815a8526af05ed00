//! Transpose up to rank 6 (`transpose.wgsl`), forward and, with the inverse permutation and
//! `acc`, as its own backward.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::Node;

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::{GpuError, Result};

pub(crate) const TRANSPOSE: Kernel = Kernel { file: "transpose.wgsl", entry: "transpose" };
const MAX_RANK: usize = 6;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub(crate) struct TransposeParams {
    pub(crate) n: u32,
    acc: u32,
    d: [u32; 5],
    s: [u32; 6],
    _pad: [u32; 3],
}

/// The kernel's parameters for permuting an input of `shape` by `perm`.
pub(crate) fn params(shape: &[usize], perm: &[usize], accumulate: bool) -> Result<TransposeParams> {
    let r = shape.len();
    if r > MAX_RANK || perm.len() != r {
        return Err(GpuError(format!("Transpose of rank {r} (the GPU takes up to {MAX_RANK})")));
    }
    let mut in_strides = vec![1usize; r];
    for a in (0..r.saturating_sub(1)).rev() {
        in_strides[a] = in_strides[a + 1] * shape[a + 1];
    }
    // Output dims and steps, left-padded to rank 6 (a padded axis has one index, step 0).
    let (mut d, mut s) = ([1u32; MAX_RANK], [0u32; MAX_RANK]);
    for (k, &a) in perm.iter().enumerate() {
        d[MAX_RANK - r + k] = shape[a] as u32;
        s[MAX_RANK - r + k] = in_strides[a] as u32;
    }
    let n: usize = shape.iter().product();
    Ok(TransposeParams { n: n as u32, acc: accumulate as u32, d: [d[1], d[2], d[3], d[4], d[5]], s, _pad: [0; 3] })
}

pub(crate) fn encode(p: &mut Planner, index: usize, node: &Node, perm: &[usize]) -> Result<()> {
    let graph = p.graph;
    let out = p.out_slot(node)?;
    let x = p.operand(node.inputs[0])?;
    let params = params(graph.shape(node.inputs[0]), perm, false)?;
    p.step(index, TRANSPOSE, &[x, out.buffer], bytemuck::bytes_of(&params), groups_1d(params.n as usize));
    Ok(())
}
