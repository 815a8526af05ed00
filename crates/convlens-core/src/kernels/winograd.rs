//! Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (nearly all of VGG16's work): each
//! 2x2 output tile costs 16 multiplies per channel pair instead of 36, as 16 independent
//! GEMMs (one per point of the 4x4 transformed tile) through the packed GEMM.
//!
//! F(2x2,3x3) rather than F(4x4,3x3): its transforms use only 0, +-1 and 1/2, so it loses
//! almost nothing to rounding (measured against the reference: see WINOGRAD_TOL in tests),
//! while F(4x4) amplifies fp32 error by ~10x for another 1.8x fewer multiplies.

use super::gemm::{gemm, DenseB, Epilogue, PackedA};
use super::simd::fmax;
use crate::error::Result;
use crate::graph::Window;
use crate::tensor::Tensor;

/// Output tiles transformed and multiplied per pass: bounds the transformed input
/// (16 x C x TILES floats) to stay in cache-sized pieces.
const TILES: usize = 196;

pub struct WinogradConv {
    /// U_xi = (G g G^T)[xi] as an MxC matrix, one per point xi of the 4x4 tile.
    u: Vec<PackedA>,
    m: usize,
    c: usize,
    pads: [usize; 4],
    bias: Option<Vec<f32>>,
    relu: bool,
}

/// Whether a conv can take this path, and is big enough to gain from it.
pub fn applies(window: &Window, group: usize, c: usize, m: usize) -> bool {
    window.kernel == [3, 3] && window.strides == [1, 1] && window.dilations == [1, 1] && group == 1 && c >= 16 && m >= 16
}

impl WinogradConv {
    pub fn new(w: &Tensor, bias: Option<&Tensor>, window: &Window, relu: bool) -> Result<Self> {
        let (m, c, _, _) = w.nchw()?;
        // U = G g G^T with G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]].
        let mut u_all = vec![[0.0f32; 16]; m * c];
        for (idx, u) in u_all.iter_mut().enumerate() {
            let g = &w.data[idx * 9..idx * 9 + 9];
            let mut gg = [[0.0f32; 3]; 4]; // G g: 4x3
            for j in 0..3 {
                let (a, b, d) = (g[j], g[3 + j], g[6 + j]);
                gg[0][j] = a;
                gg[1][j] = 0.5 * (a + b + d);
                gg[2][j] = 0.5 * (a - b + d);
                gg[3][j] = d;
            }
            for i in 0..4 {
                let (a, b, d) = (gg[i][0], gg[i][1], gg[i][2]);
                u[i * 4] = a;
                u[i * 4 + 1] = 0.5 * (a + b + d);
                u[i * 4 + 2] = 0.5 * (a - b + d);
                u[i * 4 + 3] = d;
            }
        }
        let u = (0..16)
            .map(|xi| {
                let rows: Vec<f32> = (0..m * c).map(|idx| u_all[idx][xi]).collect();
                PackedA::from_row_major(m, c, &rows)
            })
            .collect();
        Ok(WinogradConv { u, m, c, pads: window.pads, bias: bias.map(|b| b.data.clone()), relu })
    }

    pub fn run(&self, x: &Tensor, scratch: &mut Vec<f32>) -> Result<Tensor> {
        let (n, c, h, w) = x.nchw()?;
        debug_assert_eq!(c, self.c);
        let oh = h + self.pads[0] + self.pads[2] - 2;
        let ow = w + self.pads[1] + self.pads[3] - 2;
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        let tiles = th * tw;
        let m = self.m;
        let mut out = Tensor::zeros(&[n, m, oh, ow])?;
        let mut v = vec![0.0f32; 16 * c * TILES];
        let mut mm = vec![0.0f32; 16 * m * TILES];
        let no_epilogue = Epilogue { bias: None, relu: false };
        for b in 0..n {
            let xb = &x.data[b * c * h * w..(b + 1) * c * h * w];
            let ob = &mut out.data[b * m * oh * ow..(b + 1) * m * oh * ow];
            for t0 in (0..tiles).step_by(TILES) {
                let nt = TILES.min(tiles - t0);
                self.transform_input(xb, h, w, tw, t0, nt, &mut v);
                for xi in 0..16 {
                    let src = DenseB { k: c, n: nt, data: &v[xi * c * nt..(xi + 1) * c * nt] };
                    gemm(&self.u[xi], &src, &mut mm[xi * m * nt..(xi + 1) * m * nt], nt, no_epilogue, scratch);
                }
                self.transform_output(&mm, ob, oh, ow, tw, t0, nt);
            }
        }
        Ok(out)
    }

    /// V = B^T d B for each channel and tile, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]];
    /// written as v[xi][c][tile].
    #[allow(clippy::too_many_arguments)]
    fn transform_input(&self, x: &[f32], h: usize, w: usize, tw: usize, t0: usize, nt: usize, v: &mut [f32]) {
        let c = self.c;
        let (pt, pl) = (self.pads[0] as isize, self.pads[1] as isize);
        for ch in 0..c {
            let plane = &x[ch * h * w..(ch + 1) * h * w];
            for t in 0..nt {
                let (ty, tx) = ((t0 + t) / tw, (t0 + t) % tw);
                let (y0, x0) = (ty as isize * 2 - pt, tx as isize * 2 - pl);
                let mut d = [[0.0f32; 4]; 4];
                let inside = y0 >= 0 && x0 >= 0 && y0 + 4 <= h as isize && x0 + 4 <= w as isize;
                for (i, row) in d.iter_mut().enumerate() {
                    let y = y0 + i as isize;
                    if !inside && (y < 0 || y >= h as isize) {
                        continue;
                    }
                    for (j, cell) in row.iter_mut().enumerate() {
                        let xx = x0 + j as isize;
                        if inside || (xx >= 0 && xx < w as isize) {
                            *cell = plane[y as usize * w + xx as usize];
                        }
                    }
                }
                // Rows: B^T d
                let mut bd = [[0.0f32; 4]; 4];
                for j in 0..4 {
                    bd[0][j] = d[0][j] - d[2][j];
                    bd[1][j] = d[1][j] + d[2][j];
                    bd[2][j] = d[2][j] - d[1][j];
                    bd[3][j] = d[1][j] - d[3][j];
                }
                // Columns: (B^T d) B
                for i in 0..4 {
                    let r = bd[i];
                    let vals = [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]];
                    for (j, val) in vals.into_iter().enumerate() {
                        v[((i * 4 + j) * c + ch) * nt + t] = val;
                    }
                }
            }
        }
    }

    /// Y = A^T M A with A^T = [[1,1,1,0],[0,1,-1,-1]], then bias and ReLU, cropped at the edges.
    #[allow(clippy::too_many_arguments)]
    fn transform_output(&self, mm: &[f32], out: &mut [f32], oh: usize, ow: usize, tw: usize, t0: usize, nt: usize) {
        let m = self.m;
        for oc in 0..m {
            let bias = self.bias.as_ref().map_or(0.0, |b| b[oc]);
            let plane = &mut out[oc * oh * ow..(oc + 1) * oh * ow];
            for t in 0..nt {
                let at = |xi: usize| mm[(xi * m + oc) * nt + t];
                let mut s = [[0.0f32; 4]; 2];
                for j in 0..4 {
                    s[0][j] = at(j) + at(4 + j) + at(8 + j);
                    s[1][j] = at(4 + j) - at(8 + j) - at(12 + j);
                }
                let (ty, tx) = ((t0 + t) / tw, (t0 + t) % tw);
                for (i, row) in s.iter().enumerate() {
                    let y = ty * 2 + i;
                    if y >= oh {
                        continue;
                    }
                    let pair = [row[0] + row[1] + row[2], row[1] - row[2] - row[3]];
                    for (j, &val) in pair.iter().enumerate() {
                        let xx = tx * 2 + j;
                        if xx < ow {
                            let v = val + bias;
                            plane[y * ow + xx] = if self.relu { fmax(v, 0.0) } else { v };
                        }
                    }
                }
            }
        }
    }
}
