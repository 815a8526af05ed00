//! Element-wise Add with numpy broadcasting up to rank 4 (`add.wgsl`): each input is read
//! through strides that are 0 along its broadcast axes.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::Node;

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::{GpuError, Result};

const ADD: Kernel = Kernel { file: "add.wgsl", entry: "add" };
const MUL: Kernel = Kernel { file: "add.wgsl", entry: "mul" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct AddParams {
    n: u32, d: [u32; 3],
    a: [u32; 4],
    b: [u32; 4],
}

pub(crate) fn add(p: &mut Planner, index: usize, node: &Node) -> Result<()> {
    binary(p, index, node, ADD)
}

pub(crate) fn mul(p: &mut Planner, index: usize, node: &Node) -> Result<()> {
    binary(p, index, node, MUL)
}

fn binary(p: &mut Planner, index: usize, node: &Node, kernel: Kernel) -> Result<()> {
    let graph = p.graph;
    let out = p.out_slot(node)?;
    let o = graph.shape(node.output);
    if o.len() > 4 {
        return Err(GpuError(format!("{} of rank {} (the GPU takes up to 4)", node.op_type, o.len())));
    }
    let (a, b) = (graph.shape(node.inputs[0]), graph.shape(node.inputs[1]));
    let ab = p.operand(node.inputs[0])?;
    let bb = p.operand(node.inputs[1])?;
    let n: usize = o.iter().product();
    let dims = pad4(o);
    let params = AddParams { n: n as u32, d: [dims[1] as u32, dims[2] as u32, dims[3] as u32], a: broadcast_strides(a, &dims), b: broadcast_strides(b, &dims) };
    p.step(index, kernel, &[ab, bb, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}

/// `shape` left-padded with 1s to rank 4.
fn pad4(shape: &[usize]) -> [usize; 4] {
    let mut d = [1; 4];
    d[4 - shape.len()..].copy_from_slice(shape);
    d
}

/// Element strides of `shape` read as the rank-4 `out`: 0 along broadcast axes.
fn broadcast_strides(shape: &[usize], out: &[usize; 4]) -> [u32; 4] {
    let s = pad4(shape);
    let mut st = [0u32; 4];
    let mut acc = 1;
    for i in (0..4).rev() {
        st[i] = if s[i] == 1 && out[i] != 1 { 0 } else { acc as u32 };
        acc *= s[i];
    }
    st
}
