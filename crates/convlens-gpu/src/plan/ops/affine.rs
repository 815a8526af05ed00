//! BatchNorm left unfolded (no Conv before it to fold into) as a per-channel affine map
//! (`affine.wgsl`), with the scale and shift every engine computes alike
//! (`convlens_core::prep::batchnorm_affine`).

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::Node;
use convlens_core::prep::batchnorm_affine;

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::{GpuError, Result};

const AFFINE: Kernel = Kernel { file: "affine.wgsl", entry: "affine_channels" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct AffineParams {
    n: u32, c: u32, plane: u32, _p: u32,
}

pub(crate) fn batch_norm(p: &mut Planner, index: usize, node: &Node, epsilon: f32) -> Result<()> {
    let graph = p.graph;
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let get = |i: usize| graph.const_data(node.inputs[i]).map_err(|e| GpuError(e.to_string()));
    let (gamma, beta, mean, var) = (get(1)?, get(2)?, get(3)?, get(4)?);
    let (scale, shift) = batchnorm_affine(&gamma.data, &beta.data, &mean.data, &var.data, epsilon);
    let (sb, tb) = (p.upload(&scale, "bn scale"), p.upload(&shift, "bn shift"));
    let o = graph.shape(node.output);
    let n: usize = o.iter().product();
    let c = o.get(1).copied().unwrap_or(1);
    let params = AffineParams { n: n as u32, c: c as u32, plane: (n / o[0].max(1) / c.max(1)) as u32, _p: 0 };
    p.step(index, AFFINE, &[x.buffer, sb, tb, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}
