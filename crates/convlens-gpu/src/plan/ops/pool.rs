//! Max, average and global average pooling (`pool.wgsl`), one invocation per output value;
//! the output may be a channel slice of a concatenation.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::{Node, Op, Window};

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::Result;

const MAX: Kernel = Kernel { file: "pool.wgsl", entry: "max_pool" };
const AVERAGE: Kernel = Kernel { file: "pool.wgsl", entry: "avg_pool" };
const GLOBAL_AVERAGE: Kernel = Kernel { file: "pool.wgsl", entry: "global_avg_pool" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    c: u32, h: u32, w: u32, oh: u32,
    ow: u32, kh: u32, kw: u32, sh: u32,
    sw: u32, pt: u32, pl: u32, pb: u32,
    pr: u32, dh: u32, dw: u32, count_include_pad: u32,
    out_c_offset: u32, _p0: u32, _p1: u32, _p2: u32,
}

pub(crate) fn encode(p: &mut Planner, index: usize, node: &Node) -> Result<()> {
    let graph = p.graph;
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let s = graph.shape(node.inputs[0]);
    let o = graph.shape(node.output);
    let global = Window { kernel: [s[2], s[3]], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
    let (kernel, w, count_include_pad, n) = match &node.op {
        Op::MaxPool { window, .. } => (MAX, window, false, o.iter().product::<usize>()),
        Op::AveragePool { window, count_include_pad, .. } => (AVERAGE, window, *count_include_pad, o.iter().product()),
        // Every plane of the batch: planes follow each other whatever image they belong to.
        _ => (GLOBAL_AVERAGE, &global, false, s[0] * s[1]),
    };
    let params = Params {
        // The kernels walk planes, and a batch's planes follow each other: N x C of them.
        c: (s[0] * s[1]) as u32, h: s[2] as u32, w: s[3] as u32, oh: o[2] as u32,
        ow: o[3] as u32, kh: w.kernel[0] as u32, kw: w.kernel[1] as u32, sh: w.strides[0] as u32,
        sw: w.strides[1] as u32, pt: w.pads[0] as u32, pl: w.pads[1] as u32, pb: w.pads[2] as u32,
        pr: w.pads[3] as u32, dh: w.dilations[0] as u32, dw: w.dilations[1] as u32, count_include_pad: count_include_pad as u32,
        out_c_offset: out.channel_offset as u32, _p0: 0, _p1: 0, _p2: 0,
    };
    p.step(index, kernel, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}
