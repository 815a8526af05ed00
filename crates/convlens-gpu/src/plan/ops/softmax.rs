//! Softmax (`softmax.wgsl`): one workgroup per row when the axis is innermost (or the input is
//! coerced to 2-D, opset < 13), one invocation per (outer, inner) pair along a middle axis.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::Node;

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::Result;

const ROWS: Kernel = Kernel { file: "softmax.wgsl", entry: "softmax" };
const MIDDLE_AXIS: Kernel = Kernel { file: "softmax.wgsl", entry: "softmax_inner" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    rows: u32, row_len: u32, plane: u32, _p: u32,
}

pub(crate) fn encode(p: &mut Planner, index: usize, node: &Node, axis: usize, coerce_2d: bool) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let s = p.graph.shape(node.inputs[0]);
    let inner: usize = s[axis + 1..].iter().product();
    if !coerce_2d && inner != 1 {
        let outer: usize = s[..axis].iter().product();
        let params = Params { rows: outer as u32, row_len: s[axis] as u32, plane: inner as u32, _p: 0 };
        p.step(index, MIDDLE_AXIS, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(outer * inner));
        return Ok(());
    }
    let row_len: usize = s[axis..].iter().product();
    let rows = s.iter().product::<usize>() / row_len.max(1);
    let params = Params { rows: rows as u32, row_len: row_len as u32, plane: 0, _p: 0 };
    p.step(index, ROWS, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), (rows as u32, 1));
    Ok(())
}
