//! The scalar reference for every op: straight loops that read like the ONNX spec. It is the
//! oracle the fast kernels (and the GPU ones) are tested against, so clarity beats speed here.
//! Generic over the element: f32 is what runs; f64 is what the gradient checks difference.

use super::Real;
use crate::error::{Error, Result};
use crate::graph::{shapes, Window};
use crate::tensor::{softmax_in_place, TensorOf};

fn lit<T: Real>(v: f32) -> T {
    T::from(v).unwrap()
}

fn count<T: Real>(n: usize) -> T {
    T::from(n).unwrap()
}

pub fn relu<T: Real>(x: &TensorOf<T>) -> TensorOf<T> {
    x.map(|v| v.max(T::zero()))
}

pub fn clip<T: Real>(x: &TensorOf<T>, min: f32, max: f32) -> TensorOf<T> {
    let (lo, hi) = (lit::<T>(min), lit::<T>(max));
    x.map(|v| v.max(lo).min(hi))
}

pub fn conv<T: Real>(x: &TensorOf<T>, w: &TensorOf<T>, bias: Option<&TensorOf<T>>, win: &Window, group: usize, relu: bool) -> Result<TensorOf<T>> {
    let (n, c, h, wd) = x.dims4()?;
    let (m, cg, kh, kw) = w.dims4()?;
    let (oh, ow) = (win.out_dim(0, h, false)?, win.out_dim(1, wd, false)?);
    let mg = m / group;
    let mut out = TensorOf::filled(&[n, m, oh, ow], T::zero())?;
    for b in 0..n {
        for oc in 0..m {
            let g = oc / mg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(T::zero(), |t| t.data[oc]);
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
                    out.data[((b * m + oc) * oh + oy) * ow + ox] = if relu { acc.max(T::zero()) } else { acc };
                }
            }
        }
    }
    Ok(out)
}

/// The input rows/cols a pooling window covers, clipped to the input, and the window's
/// extent clipped only to the padded input (what count_include_pad divides by).
pub(crate) fn pool_span(o: usize, axis: usize, win: &Window, input: usize) -> (usize, usize, usize) {
    let start = (o * win.strides[axis]) as isize - win.pads[axis] as isize;
    let k = win.effective_kernel()[axis] as isize;
    let end_padded = (start + k).min((input + win.pads[axis + 2]) as isize);
    let padded_len = (end_padded - start) as usize;
    (start.max(0) as usize, end_padded.min(input as isize).max(0) as usize, padded_len)
}

pub fn max_pool<T: Real>(x: &TensorOf<T>, win: &Window, ceil: bool) -> Result<TensorOf<T>> {
    let (n, c, h, w) = x.dims4()?;
    let (oh, ow) = (win.out_dim(0, h, ceil)?, win.out_dim(1, w, ceil)?);
    let mut out = TensorOf::filled(&[n, c, oh, ow], T::zero())?;
    for p in 0..n * c {
        let plane = &x.data[p * h * w..(p + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = T::neg_infinity();
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

pub fn average_pool<T: Real>(x: &TensorOf<T>, win: &Window, ceil: bool, count_include_pad: bool) -> Result<TensorOf<T>> {
    let (n, c, h, w) = x.dims4()?;
    let (oh, ow) = (win.out_dim(0, h, ceil)?, win.out_dim(1, w, ceil)?);
    let mut out = TensorOf::filled(&[n, c, oh, ow], T::zero())?;
    for p in 0..n * c {
        let plane = &x.data[p * h * w..(p + 1) * h * w];
        for oy in 0..oh {
            let (y0, y1, ylen) = pool_span(oy, 0, win, h);
            for ox in 0..ow {
                let (x0, x1, xlen) = pool_span(ox, 1, win, w);
                let mut sum = T::zero();
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        sum += plane[iy * w + ix];
                    }
                }
                let count = if count_include_pad { ylen * xlen } else { (y1 - y0) * (x1 - x0) };
                out.data[(p * oh + oy) * ow + ox] = if count == 0 { T::zero() } else { sum / self::count::<T>(count) };
            }
        }
    }
    Ok(out)
}

pub fn global_average_pool<T: Real>(x: &TensorOf<T>) -> Result<TensorOf<T>> {
    let (n, c, h, w) = x.dims4()?;
    let data = x.data.chunks(h * w).map(|p| p.iter().copied().sum::<T>() / count::<T>(h * w)).collect();
    Ok(TensorOf { shape: vec![n, c, 1, 1], data })
}

/// ONNX LRN: across channels, window [c - floor((size-1)/2), c + ceil((size-1)/2)].
pub fn lrn<T: Real>(x: &TensorOf<T>, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<TensorOf<T>> {
    let (n, c, h, w) = x.dims4()?;
    let (before, after) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let (alpha_n, beta, bias) = (lit::<T>(alpha) / count::<T>(size), lit::<T>(beta), lit::<T>(bias));
    let mut out = TensorOf::filled(&x.shape, T::zero())?;
    for b in 0..n {
        for ch in 0..c {
            let lo = ch.saturating_sub(before);
            let hi = (ch + after).min(c - 1);
            for i in 0..h * w {
                let mut sq = T::zero();
                for k in lo..=hi {
                    let v = x.data[(b * c + k) * h * w + i];
                    sq += v * v;
                }
                let idx = (b * c + ch) * h * w + i;
                out.data[idx] = x.data[idx] / (bias + alpha_n * sq).powf(beta);
            }
        }
    }
    Ok(out)
}

/// Axes permuted: output axis i is input axis perm[i].
pub fn transpose<T: Real>(x: &TensorOf<T>, perm: &[usize]) -> Result<TensorOf<T>> {
    let shape = shapes::infer(&crate::graph::Op::Transpose { perm: perm.to_vec() }, &[&x.shape])?;
    let r = shape.len();
    let mut in_strides = vec![1usize; r];
    for a in (0..r.saturating_sub(1)).rev() {
        in_strides[a] = in_strides[a + 1] * x.shape[a + 1];
    }
    // How far one step along output axis i moves in the input.
    let step: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let n = x.data.len();
    let mut data = Vec::with_capacity(n);
    let mut idx = vec![0usize; r];
    for _ in 0..n {
        data.push(x.data[idx.iter().zip(&step).map(|(i, s)| i * s).sum::<usize>()]);
        for a in (0..r).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    Ok(TensorOf { shape, data })
}

/// The permutation that undoes `perm`.
pub fn inverse_perm(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

pub fn concat<T: Real>(inputs: &[&TensorOf<T>], axis: usize) -> Result<TensorOf<T>> {
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
    Ok(TensorOf { shape, data })
}

#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(a: &TensorOf<T>, b: &TensorOf<T>, c: Option<&TensorOf<T>>, alpha: f32, beta: f32, trans_a: bool, trans_b: bool, relu: bool) -> Result<TensorOf<T>> {
    let (alpha, beta) = (lit::<T>(alpha), lit::<T>(beta));
    let (m, k) = if trans_a { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
    let n = if trans_b { b.shape[0] } else { b.shape[1] };
    let at = |i: usize, p: usize| if trans_a { a.data[p * m + i] } else { a.data[i * k + p] };
    let bt = |p: usize, j: usize| if trans_b { b.data[j * k + p] } else { b.data[p * n + j] };
    let c_at = |i: usize, j: usize| -> T {
        c.map_or(T::zero(), |c| {
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
    let mut out = TensorOf::filled(&[m, n], T::zero())?;
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::zero();
            for p in 0..k {
                acc += at(i, p) * bt(p, j);
            }
            let v = alpha * acc + beta * c_at(i, j);
            out.data[i * n + j] = if relu { v.max(T::zero()) } else { v };
        }
    }
    Ok(out)
}

/// numpy's matmul: any rank, batch axes broadcast (`shapes::MatMulPlan`); each product of the
/// batch is a plain `gemm`.
pub fn matmul<T: Real>(a: &TensorOf<T>, b: &TensorOf<T>) -> Result<TensorOf<T>> {
    let plan = shapes::MatMulPlan::new(&a.shape, &b.shape)?;
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let mut data = Vec::with_capacity(plan.batch.len() * m * n);
    for &(ao, bo) in &plan.batch {
        let a2 = TensorOf { shape: vec![m, k], data: a.data[ao..ao + m * k].to_vec() };
        let b2 = TensorOf { shape: vec![k, n], data: b.data[bo..bo + k * n].to_vec() };
        data.extend(gemm(&a2, &b2, None, 1.0, 0.0, false, false, false)?.data);
    }
    Ok(TensorOf { shape: plan.out_shape, data })
}

/// Element-wise add with numpy broadcasting.
pub fn add<T: Real>(a: &TensorOf<T>, b: &TensorOf<T>) -> Result<TensorOf<T>> {
    let shape = shapes::broadcast(&a.shape, &b.shape)?;
    let (oa, ob) = broadcast_offsets(&shape, &a.shape, &b.shape);
    let data = oa.iter().zip(&ob).map(|(&i, &j)| a.data[i] + b.data[j]).collect();
    Ok(TensorOf { shape, data })
}

pub fn mul<T: Real>(a: &TensorOf<T>, b: &TensorOf<T>) -> Result<TensorOf<T>> {
    let shape = shapes::broadcast(&a.shape, &b.shape)?;
    let (oa, ob) = broadcast_offsets(&shape, &a.shape, &b.shape);
    let data = oa.iter().zip(&ob).map(|(&i, &j)| a.data[i] * b.data[j]).collect();
    Ok(TensorOf { shape, data })
}

/// For each element of the broadcast `shape`, the offset it reads in `a` and in `b` (numpy
/// rules): the forward add reads them, its gradient sums back into them.
pub(crate) fn broadcast_offsets(shape: &[usize], a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>) {
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
    let (sa, sb) = (strides(a), strides(b));
    let total: usize = shape.iter().product();
    let (mut oa, mut ob) = (Vec::with_capacity(total), Vec::with_capacity(total));
    let mut idx = vec![0usize; rank];
    for _ in 0..total {
        oa.push(idx.iter().zip(&sa).map(|(i, s)| i * s).sum());
        ob.push(idx.iter().zip(&sb).map(|(i, s)| i * s).sum());
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    (oa, ob)
}

/// The rows softmax normalises over: `coerce_2d` (opset < 13) flattens from `axis` on.
pub(crate) fn softmax_rows(shape: &[usize], axis: usize, coerce_2d: bool) -> Vec<Vec<usize>> {
    if coerce_2d {
        let inner: usize = shape[axis..].iter().product::<usize>().max(1);
        let total: usize = shape.iter().product();
        (0..total / inner).map(|r| (r * inner..(r + 1) * inner).collect()).collect()
    } else {
        let dim = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let outer: usize = shape[..axis].iter().product();
        (0..outer).flat_map(|o| (0..inner).map(move |i| (0..dim).map(|d| (o * dim + d) * inner + i).collect())).collect()
    }
}

pub fn softmax<T: Real>(x: &TensorOf<T>, axis: usize, coerce_2d: bool) -> Result<TensorOf<T>> {
    let mut out = x.clone();
    if coerce_2d {
        let inner: usize = x.shape[axis..].iter().product();
        for row in out.data.chunks_mut(inner.max(1)) {
            softmax_in_place(row);
        }
    } else {
        let dim = x.shape[axis];
        let inner: usize = x.shape[axis + 1..].iter().product();
        let outer: usize = x.shape[..axis].iter().product();
        let mut row = vec![T::zero(); dim];
        for o in 0..outer {
            for i in 0..inner {
                for d in 0..dim {
                    row[d] = x.data[(o * dim + d) * inner + i];
                }
                softmax_in_place(&mut row);
                for d in 0..dim {
                    out.data[(o * dim + d) * inner + i] = row[d];
                }
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub fn batch_norm<T: Real>(x: &TensorOf<T>, scale: &TensorOf<T>, bias: &TensorOf<T>, mean: &TensorOf<T>, var: &TensorOf<T>, eps: f32) -> Result<TensorOf<T>> {
    let c = *x.shape.get(1).ok_or_else(|| Error::Shape("BatchNormalization needs a channel axis".into()))?;
    let inner: usize = x.shape[2..].iter().product();
    let eps = lit::<T>(eps);
    let mut out = x.clone();
    for (i, v) in out.data.iter_mut().enumerate() {
        let ch = (i / inner) % c;
        *v = (*v - mean.data[ch]) / (var.data[ch] + eps).sqrt() * scale.data[ch] + bias.data[ch];
    }
    Ok(out)
}
