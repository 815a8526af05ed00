//! Gemm and MatMul that are not a batch-1 fully connected layer (`matmul.wgsl`): a constant or
//! transposed A, a dynamic B or C, M > 1. Transposes and C's broadcast are strides.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::shapes::MatMulPlan;
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
    c_rs: u32, c_cs: u32, has_c: u32, a_base: u32,
    alpha: f32, beta: f32, b_base: u32, y_base: u32,
}

/// The Gemm attributes that shape the product.
pub(crate) struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
    pub relu: bool,
}

/// MatMul of any rank (numpy's rules): one dispatch per product of the batch.
pub(crate) fn encode_matmul(p: &mut Planner, index: usize, node: &Node) -> Result<()> {
    let graph = p.graph;
    let out = p.out_slot(node)?;
    let plan = MatMulPlan::new(graph.shape(node.inputs[0]), graph.shape(node.inputs[1])).map_err(|e| GpuError(e.to_string()))?;
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let ab = p.operand(node.inputs[0])?;
    let bb = p.operand(node.inputs[1])?;
    for (t, &(a_base, b_base)) in plan.batch.iter().enumerate() {
        let params = Params {
            m: m as u32, n: n as u32, k: k as u32, a_rs: k as u32, a_cs: 1, b_rs: n as u32, b_cs: 1,
            a_base: a_base as u32, b_base: b_base as u32, y_base: (t * m * n) as u32, alpha: 1.0, ..Default::default()
        };
        p.step(index, MATMUL, &[ab, bb, p.dummy, out.buffer], bytemuck::bytes_of(&params), groups_1d(m * n));
    }
    Ok(())
}

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
        c_rs: c_rs as u32, c_cs: c_cs as u32, has_c, a_base: 0, alpha: g.alpha, beta: g.beta, b_base: 0, y_base: 0,
    };
    p.step(index, MATMUL, &[ab, bb, cb, out.buffer], bytemuck::bytes_of(&params), groups_1d(m * n));
    Ok(())
}
