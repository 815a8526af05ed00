//! Gemm and MatMul that are not a batch-1 fully connected layer (`matmul.wgsl`): a constant or
//! transposed A, a dynamic B or C, M > 1. Transposes and C's broadcast are strides.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::Node;

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::{GpuError, Result};

const MATMUL: Kernel = Kernel { file: "matmul.wgsl", entry: "matmul" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    m: u32, n: u32, k: u32, relu: u32,
    a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
    c_rs: u32, c_cs: u32, has_c: u32, _p0: u32,
    alpha: f32, beta: f32, _p1: u32, _p2: u32,
}

/// The Gemm attributes that shape the product.
pub(crate) struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
    pub relu: bool,
}

/// MatMul is Gemm with alpha 1 and no C.
pub(crate) const MATMUL_AS_GEMM: Gemm = Gemm { alpha: 1.0, beta: 0.0, trans_a: false, trans_b: false, relu: false };

pub(crate) fn encode(p: &mut Planner, index: usize, node: &Node, g: &Gemm) -> Result<()> {
    let graph = p.graph;
    let out = p.out_slot(node)?;
    let (a, b) = (graph.shape(node.inputs[0]), graph.shape(node.inputs[1]));
    let (m, k) = if g.trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
    let n = if g.trans_b { b[0] } else { b[1] };
    let ab = p.operand(node.inputs[0])?;
    let bb = p.operand(node.inputs[1])?;
    let (cb, c_rs, c_cs, has_c) = match node.inputs.get(2) {
        Some(&c) => {
            let (c0, c1) = match graph.shape(c)[..] {
                [] => (1, 1),
                [c1] => (1, c1),
                [c0, c1] => (c0, c1),
                ref cs => return Err(GpuError(format!("Gemm C of shape {cs:?}"))),
            };
            (p.operand(c)?, if c0 == 1 { 0 } else { c1 }, if c1 == 1 { 0 } else { 1 }, 1)
        }
        None => (p.dummy, 0, 0, 0),
    };
    let params = Params {
        m: m as u32, n: n as u32, k: k as u32, relu: g.relu as u32,
        a_rs: if g.trans_a { 1 } else { k as u32 }, a_cs: if g.trans_a { m as u32 } else { 1 },
        b_rs: if g.trans_b { 1 } else { n as u32 }, b_cs: if g.trans_b { k as u32 } else { 1 },
        c_rs: c_rs as u32, c_cs: c_cs as u32, has_c, _p0: 0, alpha: g.alpha, beta: g.beta, _p1: 0, _p2: 0,
    };
    p.step(index, MATMUL, &[ab, bb, cb, out.buffer], bytemuck::bytes_of(&params), groups_1d(m * n));
    Ok(())
}
