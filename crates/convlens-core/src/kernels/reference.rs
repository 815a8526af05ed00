//! The scalar reference for every op: straight loops that read like the ONNX spec. It is the
//! oracle the fast kernels (and the GPU ones) are tested against, so clarity beats speed here.

use crate::error::{Error, Result};
use crate::graph::{shapes, Window};
use crate::tensor::Tensor;

pub fn relu(x: &Tensor) -> Tensor {
    Tensor { shape: x.shape.clone(), data: x.data.iter().map(|v| v.max(0.0)).collect() }
}

pub fn conv(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, win: &Window, group: usize, relu: bool) -> Result<Tensor> {
    let (n, c, h, wd) = x.nchw()?;
    let (m, cg, kh, kw) = w.nchw()?;
    let (oh, ow) = (win.out_dim(0, h, false)?, win.out_dim(1, wd, false)?);
    let mg = m / group;
    let mut out = Tensor::zeros(&[n, m, oh, ow])?;
    for b in 0..n {
        for oc in 0..m {
            let g = oc / mg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |t| t.data[oc]);
                    for icg in 0..cg {
                        let ic = g * cg + icg;
                        for ky in 0..kh {
                            let iy = (oy * win.strides[0] + ky * win.dilations[0]) as isize - win.pads[0] as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox * win.strides[1] + kx * win.dilations[1]) as isize - win.pads[1] as isize;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x.data[((b * c + ic) * h + iy as usize) * wd + ix as usize];
                                let wv = w.data[((oc * cg + icg) * kh + ky) * kw + kx];
                                acc += xv * wv;
                            }
                        }
                    }
                    out.data[((b * m + oc) * oh + oy) * ow + ox] = if relu { acc.max(0.0) } else { acc };
                }
            }
        }
    }
    Ok(out)
}

/// The input rows/cols a pooling window covers, clipped to the input, and the window's
/// extent clipped only to the padded input (what count_include_pad divides by).
fn pool_span(o: usize, axis: usize, win: &Window, input: usize) -> (usize, usize, usize) {
    let start = (o * win.strides[axis]) as isize - win.pads[axis] as isize;
    let k = win.effective_kernel()[axis] as isize;
    let end_padded = (start + k).min((input + win.pads[axis + 2]) as isize);
    let padded_len = (end_padded - start) as usize;
    (start.max(0) as usize, end_padded.min(input as isize).max(0) as usize, padded_len)
}

pub fn max_pool(x: &Tensor, win: &Window, ceil: bool) -> Result<Tensor> {
    let (n, c, h, w) = x.nchw()?;
    let (oh, ow) = (win.out_dim(0, h, ceil)?, win.out_dim(1, w, ceil)?);
    let mut out = Tensor::zeros(&[n, c, oh, ow])?;
    for p in 0..n * c {
        let plane = &x.data[p * h * w..(p + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = f32::NEG_INFINITY;
                for ky in 0..win.kernel[0] {
                    let iy = (oy * win.strides[0] + ky * win.dilations[0]) as isize - win.pads[0] as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..win.kernel[1] {
                        let ix = (ox * win.strides[1] + kx * win.dilations[1]) as isize - win.pads[1] as isize;
                        if ix >= 0 && ix < w as isize {
                            best = best.max(plane[iy as usize * w + ix as usize]);
                        }
                    }
                }
                out.data[(p * oh + oy) * ow + ox] = best;
            }
        }
    }
    Ok(out)
}

pub fn average_pool(x: &Tensor, win: &Window, ceil: bool, count_include_pad: bool) -> Result<Tensor> {
    let (n, c, h, w) = x.nchw()?;
    let (oh, ow) = (win.out_dim(0, h, ceil)?, win.out_dim(1, w, ceil)?);
    let mut out = Tensor::zeros(&[n, c, oh, ow])?;
    for p in 0..n * c {
        let plane = &x.data[p * h * w..(p + 1) * h * w];
        for oy in 0..oh {
            let (y0, y1, ylen) = pool_span(oy, 0, win, h);
            for ox in 0..ow {
                let (x0, x1, xlen) = pool_span(ox, 1, win, w);
                let mut sum = 0.0;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        sum += plane[iy * w + ix];
                    }
                }
                let count = if count_include_pad { ylen * xlen } else { (y1 - y0) * (x1 - x0) };
                out.data[(p * oh + oy) * ow + ox] = if count == 0 { 0.0 } else { sum / count as f32 };
            }
        }
    }
    Ok(out)
}

pub fn global_average_pool(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.nchw()?;
    let data = x.data.chunks(h * w).map(|p| p.iter().sum::<f32>() / (h * w) as f32).collect();
    Tensor::new(vec![n, c, 1, 1], data)
}

/// ONNX LRN: across channels, window [c - floor((size-1)/2), c + ceil((size-1)/2)].
pub fn lrn(x: &Tensor, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<Tensor> {
    let (n, c, h, w) = x.nchw()?;
    let (before, after) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let mut out = Tensor::zeros(&x.shape)?;
    for b in 0..n {
        for ch in 0..c {
            let lo = ch.saturating_sub(before);
            let hi = (ch + after).min(c - 1);
            for i in 0..h * w {
                let mut sq = 0.0;
                for k in lo..=hi {
                    let v = x.data[(b * c + k) * h * w + i];
                    sq += v * v;
                }
                let idx = (b * c + ch) * h * w + i;
                out.data[idx] = x.data[idx] / (bias + alpha / size as f32 * sq).powf(beta);
            }
        }
    }
    Ok(out)
}

pub fn concat(inputs: &[&Tensor], axis: usize) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let shape = shapes::infer(&crate::graph::Op::Concat { axis }, &shapes)?;
    let outer: usize = shape[..axis].iter().product();
    let mut data = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for t in inputs {
            let chunk: usize = t.shape[axis..].iter().product();
            data.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Tensor::new(shape, data)
}

#[allow(clippy::too_many_arguments)]
pub fn gemm(a: &Tensor, b: &Tensor, c: Option<&Tensor>, alpha: f32, beta: f32, trans_a: bool, trans_b: bool, relu: bool) -> Result<Tensor> {
    let (m, k) = if trans_a { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
    let n = if trans_b { b.shape[0] } else { b.shape[1] };
    let at = |i: usize, p: usize| if trans_a { a.data[p * m + i] } else { a.data[i * k + p] };
    let bt = |p: usize, j: usize| if trans_b { b.data[j * k + p] } else { b.data[p * n + j] };
    let c_at = |i: usize, j: usize| -> f32 {
        c.map_or(0.0, |c| {
            let (r, cols) = match c.shape[..] {
                [] => (0, 0),
                [cols] => (0, if cols == 1 { 0 } else { j }),
                [rows, cols] => (if rows == 1 { 0 } else { i }, if cols == 1 { 0 } else { j }),
                _ => (0, 0),
            };
            let width = c.shape.last().copied().unwrap_or(1);
            c.data[r * width + cols]
        })
    };
    let mut out = Tensor::zeros(&[m, n])?;
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0;
            for p in 0..k {
                acc += at(i, p) * bt(p, j);
            }
            let v = alpha * acc + beta * c_at(i, j);
            out.data[i * n + j] = if relu { v.max(0.0) } else { v };
        }
    }
    Ok(out)
}

pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    gemm(a, b, None, 1.0, 0.0, false, false, false)
}

/// Element-wise add with numpy broadcasting.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = shapes::broadcast(&a.shape, &b.shape)?;
    let rank = shape.len();
    let strides = |s: &[usize]| -> Vec<usize> {
        let mut st = vec![0; rank];
        let mut acc = 1;
        for i in (0..s.len()).rev() {
            st[rank - s.len() + i] = if s[i] == 1 { 0 } else { acc };
            acc *= s[i];
        }
        st
    };
    let (sa, sb) = (strides(&a.shape), strides(&b.shape));
    let total: usize = shape.iter().product();
    let mut data = Vec::with_capacity(total);
    let mut idx = vec![0usize; rank];
    for _ in 0..total {
        let oa: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
        let ob: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
        data.push(a.data[oa] + b.data[ob]);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Tensor::new(shape, data)
}

pub fn softmax(x: &Tensor, axis: usize, coerce_2d: bool) -> Result<Tensor> {
    let mut out = x.clone();
    if coerce_2d {
        let inner: usize = x.shape[axis..].iter().product();
        for row in out.data.chunks_mut(inner.max(1)) {
            crate::tensor::softmax_in_place(row);
        }
    } else {
        let dim = x.shape[axis];
        let inner: usize = x.shape[axis + 1..].iter().product();
        let outer: usize = x.shape[..axis].iter().product();
        let mut row = vec![0.0; dim];
        for o in 0..outer {
            for i in 0..inner {
                for d in 0..dim {
                    row[d] = x.data[(o * dim + d) * inner + i];
                }
                crate::tensor::softmax_in_place(&mut row);
                for d in 0..dim {
                    out.data[(o * dim + d) * inner + i] = row[d];
                }
            }
        }
    }
    Ok(out)
}

pub fn batch_norm(x: &Tensor, scale: &Tensor, bias: &Tensor, mean: &Tensor, var: &Tensor, eps: f32) -> Result<Tensor> {
    let c = *x.shape.get(1).ok_or_else(|| Error::Shape("BatchNormalization needs a channel axis".into()))?;
    let inner: usize = x.shape[2..].iter().product();
    let mut out = x.clone();
    for (i, v) in out.data.iter_mut().enumerate() {
        let ch = (i / inner) % c;
        *v = (*v - mean.data[ch]) / (var.data[ch] + eps).sqrt() * scale.data[ch] + bias.data[ch];
    }
    Ok(out)
}
