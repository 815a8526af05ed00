//! Convolution (`conv.wgsl`): on a GPU an implicit GEMM in 16x16 tiles, 64x64 tiles with a 4x4
//! register block for layers with at least 64 outputs and pixels; on a software adapter the
//! barrier-free `conv_direct` (its weights in blocks of 8 channels); one invocation per output for grouped convs. Bias and a fused ReLU are applied in the kernel; the output may be a channel
//! slice of a concatenation.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::{Node, Window};

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::Result;

const TILED: Kernel = Kernel { file: "conv.wgsl", entry: "conv_tiled" };
const TILED_4X4: Kernel = Kernel { file: "conv.wgsl", entry: "conv_tiled_4x4" };
const DIRECT: Kernel = Kernel { file: "conv.wgsl", entry: "conv_direct" };
const GROUPED: Kernel = Kernel { file: "conv.wgsl", entry: "conv_grouped" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub(crate) struct Params {
    pub c_in: u32, pub h: u32, pub w: u32, pub m: u32,
    pub oh: u32, pub ow: u32, pub kh: u32, pub kw: u32,
    pub sh: u32, pub sw: u32, pub pt: u32, pub pl: u32,
    pub dh: u32, pub dw: u32, pub group: u32, pub relu: u32,
    pub out_c_offset: u32, pub has_bias: u32, pub x_base: u32, pub y_base: u32,
}

/// The kernel and workgroups for an ungrouped conv with `m` outputs over `npix` pixels (the
/// backward pass runs its input gradient as one): `direct` (a software adapter, see
/// `ConvKernels`) the barrier-free `conv_direct`; else the workgroup-memory tiles, 64x64 with
/// a 4x4 register block where the layer fills them.
pub(crate) fn dense_kernel(direct: bool, m: usize, npix: usize) -> (Kernel, (u32, u32)) {
    if direct {
        (DIRECT, (npix.div_ceil(64) as u32, m.div_ceil(8) as u32))
    } else if m >= 64 && npix >= 64 {
        (TILED_4X4, (npix.div_ceil(64) as u32, m.div_ceil(64) as u32))
    } else {
        (TILED, (npix.div_ceil(16) as u32, m.div_ceil(16) as u32))
    }
}

/// Whether `kernel` reads its weights in blocks of 8 output channels (`by_blocks_of_8`).
pub(crate) fn reads_blocks_of_8(kernel: Kernel) -> bool {
    kernel == DIRECT
}

/// W[m][k] (k over input channel, ky, kx) as `conv_direct` reads it: [m/8][k][8], the last
/// block's missing channels zero, so that one step's 8 weights are two vec4 loads.
pub(crate) fn by_blocks_of_8(w: &[f32], m: usize, k: usize) -> Vec<f32> {
    assert_eq!(w.len(), m * k, "a {m} x {k} weight matrix");
    let mut out = vec![0.0f32; m.div_ceil(8) * 8 * k];
    for (oc, row) in w.chunks_exact(k.max(1)).enumerate() {
        let (block, lane) = (oc / 8, oc % 8);
        for (kk, &v) in row.iter().enumerate() {
            out[(block * k + kk) * 8 + lane] = v;
        }
    }
    out
}

pub(crate) fn encode(p: &mut Planner, index: usize, node: &Node, window: &Window, group: usize, relu: bool) -> Result<()> {
    let graph = p.graph;
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let s = graph.shape(node.inputs[0]);
    let o = graph.shape(node.output);
    let (bias, has_bias) = match node.inputs.get(2) {
        Some(&b) => (p.constant(b)?, 1),
        None => (p.dummy, 0),
    };
    let params = Params {
        c_in: s[1] as u32, h: s[2] as u32, w: s[3] as u32, m: o[1] as u32,
        oh: o[2] as u32, ow: o[3] as u32, kh: window.kernel[0] as u32, kw: window.kernel[1] as u32,
        sh: window.strides[0] as u32, sw: window.strides[1] as u32, pt: window.pads[0] as u32, pl: window.pads[1] as u32,
        dh: window.dilations[0] as u32, dw: window.dilations[1] as u32, group: group as u32, relu: relu as u32,
        out_c_offset: out.channel_offset as u32, has_bias, x_base: 0, y_base: 0,
    };
    let npix = o[2] * o[3];
    let (kernel, groups) = if group == 1 { dense_kernel(p.direct_conv, o[1], npix) } else { (GROUPED, groups_1d(npix * o[1])) };
    let wb = if reads_blocks_of_8(kernel) { p.weights_by_8(node.inputs[1])? } else { p.weights(node.inputs[1])? };
    // One dispatch per image of a batch (a photo is a batch of one).
    for img in 0..s[0] {
        let params = Params { x_base: (img * s[1] * s[2] * s[3]) as u32, y_base: (img * o[1] * npix) as u32, ..params };
        p.step(index, kernel, &[x.buffer, wb, bias, out.buffer], bytemuck::bytes_of(&params), groups);
    }
    Ok(())
}
