//! Fully connected layers at batch 1 (`fc.wgsl`), as `convlens_core::prep` lays them out for
//! every engine: weight rows [N, K] bound in chunks that fit one storage binding, so VGG16's
//! 411 MB fc6 runs under a browser's 128 MiB limit as several dispatches.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::Node;
use convlens_core::prep::FcWeights;

use crate::plan::pipelines::Kernel;
use crate::plan::planner::Planner;
use crate::Result;

const FC: Kernel = Kernel { file: "fc.wgsl", entry: "fc" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    k: u32, rows: u32, n0: u32, relu: u32,
    alpha: f32, has_bias: u32, _p0: u32, _p1: u32,
}

pub(crate) fn encode(p: &mut Planner, index: usize, node: &Node, fc: FcWeights) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let (k, n) = (fc.k, fc.n);
    let (bias, has_bias) = match &fc.bias {
        Some(b) => (p.upload(b, "fc bias"), 1),
        None => (p.dummy, 0),
    };
    let rows_per_chunk = ((p.max_binding / p.weight_elem_bytes() as u64) as usize / k.max(1)).clamp(1, n.max(1));
    for n0 in (0..n).step_by(rows_per_chunk) {
        let rows = rows_per_chunk.min(n - n0);
        let chunk = p.upload_weights(&fc.rows.rows_f32(k, n0, rows), &format!("{} rows {n0}..", node.name))?;
        p.fc_chunks.entry(index).or_default().push((chunk, n0, rows));
        let params = Params { k: k as u32, rows: rows as u32, n0: n0 as u32, relu: fc.relu as u32, alpha: fc.alpha, has_bias, _p0: 0, _p1: 0 };
        let groups = (rows.min(65535) as u32, rows.div_ceil(65535) as u32);
        p.step(index, FC, &[x.buffer, chunk, bias, out.buffer], bytemuck::bytes_of(&params), groups);
    }
    Ok(())
}
