//! The f32 backward of a convolution on the packed GEMM the forward pass uses: per group,
//! cols[cg*kh*kw, band] = W^T[cg*kh*kw, mg] x dY[mg, band], then cols scattered back onto the
//! input (col2im). Output rows go in bands so the cols buffer stays a few MB. `ops::conv` is
//! the reference it is tested against.

use crate::error::Result;
use crate::graph::Window;
use crate::kernels::gemm::{gemm, DenseB, Epilogue, PackedA};
use crate::tensor::Tensor;

/// Elements of the cols buffer per band (~16 MB).
const BAND_ELEMS: usize = 4 << 20;

pub fn conv_input(dy: &Tensor, w: &Tensor, x_shape: &[usize], win: &Window, group: usize) -> Result<Tensor> {
    let (n, m, oh, ow) = dy.nchw()?;
    let (_, cg, kh, kw) = w.nchw()?;
    let [_, c, h, wd] = x_shape[..] else { return Err(crate::error::Error::Shape(format!("conv input {x_shape:?} is not NCHW"))) };
    let mg = m / group;
    let rows = cg * kh * kw;
    let mut dx = Tensor::zeros(x_shape)?;
    let mut scratch = Vec::new();
    let pointwise = kh == 1 && kw == 1 && win.strides == [1, 1] && win.pads == [0; 4];
    for g in 0..group {
        // W^T for this group: row r = (icg, ky, kx), column = output channel.
        let mut wt = vec![0.0f32; rows * mg];
        for oc in 0..mg {
            let src = &w.data[(g * mg + oc) * rows..(g * mg + oc + 1) * rows];
            for (r, &v) in src.iter().enumerate() {
                wt[r * mg + oc] = v;
            }
        }
        let a = PackedA::from_row_major(rows, mg, &wt);
        for b in 0..n {
            let dys = &dy.data[(b * m + g * mg) * oh * ow..(b * m + (g + 1) * mg) * oh * ow];
            let x_off = (b * c + g * cg) * h * wd;
            if pointwise {
                // cols are the input gradient itself: [cg, H*W].
                let dst = &mut dx.data[x_off..x_off + cg * h * wd];
                gemm(&a, &DenseB { k: mg, n: oh * ow, data: dys }, dst, oh * ow, Epilogue { bias: None, relu: false }, &mut scratch);
                continue;
            }
            let band = (BAND_ELEMS / (rows * ow).max(1)).clamp(1, oh);
            let mut dyb = Vec::new();
            let mut cols = Vec::new();
            for oy0 in (0..oh).step_by(band) {
                let oy1 = (oy0 + band).min(oh);
                let cols_n = (oy1 - oy0) * ow;
                dyb.clear();
                for oc in 0..mg {
                    dyb.extend_from_slice(&dys[oc * oh * ow + oy0 * ow..oc * oh * ow + oy1 * ow]);
                }
                cols.clear();
                cols.resize(rows * cols_n, 0.0);
                gemm(&a, &DenseB { k: mg, n: cols_n, data: &dyb }, &mut cols, cols_n, Epilogue { bias: None, relu: false }, &mut scratch);
                // col2im: each column entry back to the input pixel it read.
                for icg in 0..cg {
                    let plane = &mut dx.data[x_off + icg * h * wd..x_off + (icg + 1) * h * wd];
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let row = &cols[((icg * kh + ky) * kw + kx) * cols_n..((icg * kh + ky) * kw + kx + 1) * cols_n];
                            for oy in oy0..oy1 {
                                let iy = (oy * win.strides[0] + ky * win.dilations[0]) as isize - win.pads[0] as isize;
                                if iy < 0 || iy >= h as isize {
                                    continue;
                                }
                                let src = &row[(oy - oy0) * ow..(oy - oy0 + 1) * ow];
                                let dst = &mut plane[iy as usize * wd..(iy as usize + 1) * wd];
                                for (ox, &v) in src.iter().enumerate() {
                                    let ix = (ox * win.strides[1] + kx * win.dilations[1]) as isize - win.pads[1] as isize;
                                    if ix >= 0 && ix < wd as isize {
                                        dst[ix as usize] += v;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(dx)
}
