//! Ops that map each value on its own or across channels at one position: ReLU (`relu.wgsl`),
//! LRN (`lrn.wgsl`), and copies into a channel slice (`copy.wgsl`) for Concat inputs that could
//! not be written in place and reshapes that could not alias their input.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::Node;

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::Result;

const RELU: Kernel = Kernel { file: "relu.wgsl", entry: "relu" };
const CLIP: Kernel = Kernel { file: "relu.wgsl", entry: "clip" };
const LRN: Kernel = Kernel { file: "lrn.wgsl", entry: "lrn" };
const COPY: Kernel = Kernel { file: "copy.wgsl", entry: "copy_rows" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct ReluParams {
    n: u32, _p0: u32, lo: f32, hi: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct LrnParams {
    n: u32, c: u32, plane: u32, size: u32,
    alpha: f32, beta: f32, bias: f32, _p: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct CopyParams {
    n: u32, in_row: u32, out_row: u32, offset: u32,
}

pub(crate) fn relu(p: &mut Planner, index: usize, node: &Node) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let n: usize = p.graph.shape(node.inputs[0]).iter().product();
    let params = ReluParams { n: n as u32, ..Default::default() };
    p.step(index, RELU, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}

pub(crate) fn clip(p: &mut Planner, index: usize, node: &Node, lo: f32, hi: f32) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let n: usize = p.graph.shape(node.inputs[0]).iter().product();
    let params = ReluParams { n: n as u32, lo, hi, ..Default::default() };
    p.step(index, CLIP, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}

pub(crate) fn lrn(p: &mut Planner, index: usize, node: &Node, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let s = p.graph.shape(node.inputs[0]);
    let n: usize = s.iter().product();
    let params = LrnParams { n: n as u32, c: s[1] as u32, plane: (s[2] * s[3]) as u32, size: size as u32, alpha, beta, bias, _p: 0 };
    p.step(index, LRN, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}

/// Concatenation along any axis: each input is `outer` rows of `in_row` values that go at
/// `offset` within the output's rows of `out_row` (a channel concatenation of one image: one
/// row). Inputs already written in place cost nothing.
pub(crate) fn concat(p: &mut Planner, index: usize, node: &Node, axis: usize) -> Result<()> {
    let graph = p.graph;
    let out = p.out_slot(node)?;
    let o = graph.shape(node.output);
    let outer: usize = o[..axis].iter().product();
    let inner: usize = o[axis + 1..].iter().product();
    let out_row = o[axis] * inner;
    let mut offset = 0;
    for &inp in &node.inputs {
        let a = graph.shape(inp)[axis];
        let in_place = p.slots[inp].is_some_and(|src| src.buffer == out.buffer && src.channel_offset == offset && outer == 1);
        if !in_place {
            let src = p.operand(inp)?;
            let n = outer * a * inner;
            let params = CopyParams { n: n as u32, in_row: (a * inner) as u32, out_row: out_row as u32, offset: (offset * inner) as u32 };
            p.step(index, COPY, &[src, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
        }
        offset += a;
    }
    Ok(())
}

/// Reshape/Identity: nothing to do when the output aliases the input, else one copy.
pub(crate) fn reshape(p: &mut Planner, index: usize, node: &Node) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    if x.buffer != out.buffer {
        let n: usize = p.graph.shape(node.output).iter().product();
        let params = CopyParams { n: n as u32, in_row: n as u32, out_row: n as u32, offset: 0 };
        p.step(index, COPY, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    }
    Ok(())
}
