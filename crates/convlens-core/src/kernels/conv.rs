//! Convolution as GEMM: weights packed once at load; input columns gathered straight into
//! packed panels (implicit im2col, never materialised); 1x1 stride-1 convs read the input
//! as the B matrix directly.

use super::gemm::{gemm, DenseB, Epilogue, PackB, PackedA};
use super::simd::NR;
use crate::error::Result;
use crate::graph::Window;
use crate::tensor::Tensor;

/// The input of one group seen as the KxN matrix im2col would build: K = cg*kh*kw, N = oh*ow.
struct Im2colB<'a> {
    x: &'a [f32],
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    win: &'a Window,
    cg: usize,
}

impl PackB for Im2colB<'_> {
    fn k(&self) -> usize {
        self.cg * self.kh * self.kw
    }
    fn n(&self) -> usize {
        self.oh * self.ow
    }
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut [f32]) {
        let n = self.n();
        let (sy, sx) = (self.win.strides[0] as isize, self.win.strides[1] as isize);
        let (dy, dx) = (self.win.dilations[0] as isize, self.win.dilations[1] as isize);
        let (pt, pl) = (self.win.pads[0] as isize, self.win.pads[1] as isize);
        for jp in 0..nc.div_ceil(NR) {
            // Top-left input position of each output pixel in this panel.
            let mut iy0 = [isize::MIN / 2; NR];
            let mut ix0 = [isize::MIN / 2; NR];
            for j in 0..NR {
                let col = n0 + jp * NR + j;
                if col < n && col < n0 + nc {
                    iy0[j] = (col / self.ow) as isize * sy - pt;
                    ix0[j] = (col % self.ow) as isize * sx - pl;
                }
            }
            let panel = &mut out[jp * kc * NR..(jp + 1) * kc * NR];
            // A full panel within one output row: its columns read one input row at a fixed
            // stride, so when that span lies inside the input the gather needs no checks.
            let one_row = iy0[0] == iy0[NR - 1] && ix0[NR - 1] == ix0[0] + (NR as isize - 1) * sx;
            for kk in 0..kc {
                let r = k0 + kk;
                let (ic, ky, kx) = (r / (self.kh * self.kw), (r / self.kw) % self.kh, r % self.kw);
                let plane = &self.x[ic * self.h * self.w..(ic + 1) * self.h * self.w];
                let (oy, ox) = (ky as isize * dy, kx as isize * dx);
                let dst = &mut panel[kk * NR..kk * NR + NR];
                if one_row {
                    let (iy, first) = (iy0[0] + oy, ix0[0] + ox);
                    let last = first + (NR as isize - 1) * sx;
                    if iy < 0 || iy >= self.h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    if first >= 0 && last < self.w as isize {
                        let row = &plane[iy as usize * self.w + first as usize..];
                        if sx == 1 {
                            // Stride 1 (every 3x3 and 5x5 of the classic CNNs): one copy of
                            // NR contiguous floats, not a strided gather.
                            dst.copy_from_slice(&row[..NR]);
                        } else {
                            for (j, d) in dst.iter_mut().enumerate() {
                                *d = row[j * sx as usize];
                            }
                        }
                        continue;
                    }
                }
                for j in 0..NR {
                    let (iy, ix) = (iy0[j] + oy, ix0[j] + ox);
                    dst[j] = if iy >= 0 && iy < self.h as isize && ix >= 0 && ix < self.w as isize {
                        plane[iy as usize * self.w + ix as usize]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// A convolution ready to run: weights packed per group.
pub struct PreparedConv {
    window: Window,
    group: usize,
    kernel: [usize; 2],
    cg: usize,
    mg: usize,
    packed: Vec<PackedA>,
    bias: Option<Vec<f32>>,
    relu: bool,
}

impl PreparedConv {
    pub fn new(w: &Tensor, bias: Option<&Tensor>, window: &Window, group: usize, relu: bool) -> Result<Self> {
        let (m, cg, kh, kw) = w.nchw()?;
        let mg = m / group;
        let k = cg * kh * kw;
        let packed = (0..group)
            .map(|g| PackedA::pack(mg, k, |i| &w.data[(g * mg + i) * k..(g * mg + i + 1) * k]))
            .collect();
        Ok(PreparedConv {
            window: window.clone(),
            group,
            kernel: [kh, kw],
            cg,
            mg,
            packed,
            bias: bias.map(|b| b.data.clone()),
            relu,
        })
    }

    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.window.strides == [1, 1] && self.window.pads == [0; 4]
    }

    pub fn run(&self, x: &Tensor, scratch: &mut Vec<f32>) -> Result<Tensor> {
        let (n, c, h, w) = x.nchw()?;
        let (oh, ow) = (self.window.out_dim(0, h, false)?, self.window.out_dim(1, w, false)?);
        let m = self.mg * self.group;
        let mut out = Tensor::zeros(&[n, m, oh, ow])?;
        for b in 0..n {
            for g in 0..self.group {
                let xs = &x.data[(b * c + g * self.cg) * h * w..(b * c + (g + 1) * self.cg) * h * w];
                let out_off = (b * m + g * self.mg) * oh * ow;
                let dst = &mut out.data[out_off..out_off + self.mg * oh * ow];
                let ep = Epilogue { bias: self.bias.as_ref().map(|v| &v[g * self.mg..(g + 1) * self.mg]), relu: self.relu };
                if self.is_pointwise() {
                    gemm(&self.packed[g], &DenseB { k: self.cg, n: h * w, data: xs }, dst, oh * ow, ep, scratch);
                } else {
                    let src = Im2colB {
                        x: xs,
                        h,
                        w,
                        kh: self.kernel[0],
                        kw: self.kernel[1],
                        oh,
                        ow,
                        win: &self.window,
                        cg: self.cg,
                    };
                    gemm(&self.packed[g], &src, dst, oh * ow, ep, scratch);
                }
            }
        }
        Ok(out)
    }
}
