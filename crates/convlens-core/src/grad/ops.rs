//! Each op's backward pass: given d score / d output (`dy`) and what the forward pass saw,
//! d score / d each activation input. Straight loops beside the forward reference they undo,
//! generic over the element so `tests/gradients.rs` checks each against central differences
//! in f64. Weights get no gradient: explanations only ask about activations and the input.

use crate::error::{Error, Result};
use crate::graph::Window;
use crate::half::HalfTensor;
use crate::kernels::reference::{broadcast_offsets, pool_span, softmax_rows};
use crate::kernels::Real;
use crate::tensor::TensorOf;

fn lit<T: Real>(v: f32) -> T {
    T::from(v).unwrap()
}

fn zeros<T: Real>(shape: &[usize]) -> Result<TensorOf<T>> {
    TensorOf::filled(shape, T::zero())
}

/// ReLU: the gradient passes where the input was positive (`y > 0` says the same for a ReLU
/// fused into its conv). Guided backprop also drops negative gradients.
pub fn relu<T: Real>(dy: &TensorOf<T>, y: &TensorOf<T>, guided: bool) -> TensorOf<T> {
    let data = dy.data.iter().zip(&y.data).map(|(&g, &v)| if v > T::zero() && (!guided || g > T::zero()) { g } else { T::zero() }).collect();
    TensorOf { shape: dy.shape.clone(), data }
}

/// Clip passes the gradient where the input was strictly inside [min, max] (as ReLU at 0);
/// `guided` also drops negative gradients, as for a ReLU (ReLU6 is one, capped).
pub fn clip<T: Real>(dy: &TensorOf<T>, x: &TensorOf<T>, min: f32, max: f32, guided: bool) -> TensorOf<T> {
    let (lo, hi) = (T::from(min).unwrap(), T::from(max).unwrap());
    let data = dy.data.iter().zip(&x.data).map(|(&g, &v)| if v > lo && v < hi && (!guided || g > T::zero()) { g } else { T::zero() }).collect();
    TensorOf { shape: dy.shape.clone(), data }
}

/// Conv with respect to its input: each output's gradient flows back along the weights that
/// made it (a transposed convolution), respecting groups, strides, dilation and pads.
pub fn conv<T: Real>(dy: &TensorOf<T>, w: &TensorOf<T>, x_shape: &[usize], win: &Window, group: usize) -> Result<TensorOf<T>> {
    let (n, m, oh, ow) = dy.dims4()?;
    let (_, cg, kh, kw) = w.dims4()?;
    let [_, c, h, wd] = x_shape[..] else { return Err(Error::Shape(format!("conv input {x_shape:?} is not NCHW"))) };
    let mg = m / group;
    let mut dx = zeros(x_shape)?;
    for b in 0..n {
        for oc in 0..m {
            let g = oc / mg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let go = dy.data[((b * m + oc) * oh + oy) * ow + ox];
                    if go == T::zero() {
                        continue;
                    }
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
                                dx.data[((b * c + ic) * h + iy as usize) * wd + ix as usize] += go * w.data[((oc * cg + icg) * kh + ky) * kw + kx];
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(dx)
}

/// MaxPool: each output's gradient goes to the input that was its maximum (the first one in
/// scan order on a tie, as the forward's comparison keeps it).
pub fn max_pool<T: Real>(dy: &TensorOf<T>, x: &TensorOf<T>, win: &Window) -> Result<TensorOf<T>> {
    let (n, c, h, w) = x.dims4()?;
    let (_, _, oh, ow) = dy.dims4()?;
    let mut dx = zeros(&x.shape)?;
    for p in 0..n * c {
        let plane = &x.data[p * h * w..(p + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<(T, usize)> = None;
                for ky in 0..win.kernel[0] {
                    let iy = (oy * win.strides[0] + ky * win.dilations[0]) as isize - win.pads[0] as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..win.kernel[1] {
                        let ix = (ox * win.strides[1] + kx * win.dilations[1]) as isize - win.pads[1] as isize;
                        if ix >= 0 && ix < w as isize {
                            let i = iy as usize * w + ix as usize;
                            if best.is_none_or(|(v, _)| plane[i] > v) {
                                best = Some((plane[i], i));
                            }
                        }
                    }
                }
                if let Some((_, i)) = best {
                    dx.data[p * h * w + i] += dy.data[(p * oh + oy) * ow + ox];
                }
            }
        }
    }
    Ok(dx)
}

/// AveragePool: each output's gradient spread evenly over the inputs it averaged (divided by
/// the padded window where count_include_pad says so).
pub fn average_pool<T: Real>(dy: &TensorOf<T>, x_shape: &[usize], win: &Window, count_include_pad: bool) -> Result<TensorOf<T>> {
    let (_, _, oh, ow) = dy.dims4()?;
    let [n, c, h, w] = x_shape[..] else { return Err(Error::Shape(format!("pool input {x_shape:?} is not NCHW"))) };
    let mut dx = zeros(x_shape)?;
    for p in 0..n * c {
        for oy in 0..oh {
            let (y0, y1, ylen) = pool_span(oy, 0, win, h);
            for ox in 0..ow {
                let (x0, x1, xlen) = pool_span(ox, 1, win, w);
                let count = if count_include_pad { ylen * xlen } else { (y1 - y0) * (x1 - x0) };
                if count == 0 {
                    continue;
                }
                let share = dy.data[(p * oh + oy) * ow + ox] / T::from(count).unwrap();
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        dx.data[p * h * w + iy * w + ix] += share;
                    }
                }
            }
        }
    }
    Ok(dx)
}

pub fn global_average_pool<T: Real>(dy: &TensorOf<T>, x_shape: &[usize]) -> Result<TensorOf<T>> {
    let plane: usize = x_shape[2..].iter().product();
    let data = dy.data.iter().flat_map(|&g| std::iter::repeat_n(g / T::from(plane).unwrap(), plane)).collect();
    Ok(TensorOf { shape: x_shape.to_vec(), data })
}

/// LRN, y_i = x_i s_i^-beta with s_i = bias + alpha/size * sum of x_j^2 over i's window:
/// dx_j = dy_j s_j^-beta - 2 alpha beta / size * x_j * sum over windows holding j of dy_i x_i s_i^(-beta-1).
pub fn lrn<T: Real>(dy: &TensorOf<T>, x: &TensorOf<T>, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<TensorOf<T>> {
    let (n, c, h, w) = x.dims4()?;
    let (before, after) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let (alpha_n, beta, bias) = (lit::<T>(alpha) / T::from(size).unwrap(), lit::<T>(beta), lit::<T>(bias));
    let plane = h * w;
    let mut dx = zeros(&x.shape)?;
    // Channel planes in order, so every inner loop walks memory contiguously.
    let (mut p, mut q) = (vec![T::zero(); c * plane], vec![T::zero(); c * plane]);
    for b in 0..n {
        let xs = &x.data[b * c * plane..(b + 1) * c * plane];
        let dys = &dy.data[b * c * plane..(b + 1) * c * plane];
        for ch in 0..c {
            let (lo, hi) = (ch.saturating_sub(before), (ch + after).min(c - 1));
            for i in 0..plane {
                let mut sq = T::zero();
                for k in lo..=hi {
                    sq += xs[k * plane + i] * xs[k * plane + i];
                }
                let s = bias + alpha_n * sq;
                let at = ch * plane + i;
                p[at] = s.powf(-beta); // s^-beta
                q[at] = dys[at] * xs[at] * p[at] / s; // dy x s^(-beta-1)
            }
        }
        let k2 = lit::<T>(2.0) * alpha_n * beta;
        let out = &mut dx.data[b * c * plane..(b + 1) * c * plane];
        for j in 0..c {
            // The channels whose window holds j.
            let (lo, hi) = (j.saturating_sub(after), (j + before).min(c - 1));
            for i in 0..plane {
                let mut sum = T::zero();
                for ch in lo..=hi {
                    sum += q[ch * plane + i];
                }
                let at = j * plane + i;
                out[at] = dys[at] * p[at] - k2 * xs[at] * sum;
            }
        }
    }
    Ok(dx)
}

/// Concat: each input gets back its own slice of the gradient.
pub fn concat<T: Real>(dy: &TensorOf<T>, shapes: &[&[usize]], axis: usize) -> Vec<TensorOf<T>> {
    let outer: usize = dy.shape[..axis].iter().product();
    let mut outs: Vec<TensorOf<T>> = shapes.iter().map(|s| TensorOf { shape: s.to_vec(), data: Vec::with_capacity(s.iter().product()) }).collect();
    let mut pos = 0;
    for _ in 0..outer {
        for (t, s) in outs.iter_mut().zip(shapes) {
            let chunk: usize = s[axis..].iter().product();
            t.data.extend_from_slice(&dy.data[pos..pos + chunk]);
            pos += chunk;
        }
    }
    outs
}

/// Gemm, Y = alpha A' B' + beta C, with respect to A: dA' = alpha dY B'^T (then transposed back
/// where A was).
pub fn gemm_a<T: Real>(dy: &TensorOf<T>, a_shape: &[usize], b: &TensorOf<T>, alpha: f32, trans_a: bool, trans_b: bool) -> Result<TensorOf<T>> {
    gemm_a_with(dy, a_shape, |i| b.data[i], alpha, trans_a, trans_b)
}

/// `gemm_a` for an FC layer's weights held in half precision: each read widened, so the
/// weights are never widened whole (VGG16's fc6 would be 411 MB again).
pub fn gemm_a_half<T: Real>(dy: &TensorOf<T>, a_shape: &[usize], b: &HalfTensor, alpha: f32, trans_a: bool, trans_b: bool) -> Result<TensorOf<T>> {
    gemm_a_with(dy, a_shape, |i| T::from(crate::half::to_f32(b.bits[i])).unwrap(), alpha, trans_a, trans_b)
}

/// `b(i)`: element i of B as the file lays it out.
fn gemm_a_with<T: Real>(dy: &TensorOf<T>, a_shape: &[usize], b: impl Fn(usize) -> T, alpha: f32, trans_a: bool, trans_b: bool) -> Result<TensorOf<T>> {
    let (m, n) = (dy.shape[0], dy.shape[1]);
    let k = if trans_a { a_shape[0] } else { a_shape[1] };
    let alpha = lit::<T>(alpha);
    // Row by row of B' (an FC layer's weights), so the inner loop walks memory in order.
    let mut acc = vec![T::zero(); m * k];
    for i in 0..m {
        let row = &mut acc[i * k..(i + 1) * k];
        for j in 0..n {
            let g = dy.data[i * n + j];
            if g == T::zero() {
                continue;
            }
            for (p, r) in row.iter_mut().enumerate() {
                *r += g * b(if trans_b { j * k + p } else { p * n + j });
            }
        }
    }
    let mut da = zeros(a_shape)?;
    for i in 0..m {
        for p in 0..k {
            let at = if trans_a { p * m + i } else { i * k + p };
            da.data[at] = alpha * acc[i * k + p];
        }
    }
    Ok(da)
}

/// Gemm with respect to B where B is an activation (MatMul of two activations): dB' = alpha A'^T dY.
pub fn gemm_b<T: Real>(dy: &TensorOf<T>, a: &TensorOf<T>, b_shape: &[usize], alpha: f32, trans_a: bool, trans_b: bool) -> Result<TensorOf<T>> {
    let (m, n) = (dy.shape[0], dy.shape[1]);
    let k = if trans_a { a.shape[0] } else { a.shape[1] };
    let at = |i: usize, p: usize| if trans_a { a.data[p * m + i] } else { a.data[i * k + p] };
    let alpha = lit::<T>(alpha);
    let mut db = zeros(b_shape)?;
    for p in 0..k {
        for j in 0..n {
            let mut acc = T::zero();
            for i in 0..m {
                acc += at(i, p) * dy.data[i * n + j];
            }
            let idx = if trans_b { j * k + p } else { p * n + j };
            db.data[idx] = alpha * acc;
        }
    }
    Ok(db)
}

/// Broadcast ops: the gradient of each operand is dY summed over the axes it was broadcast along.
pub fn unbroadcast<T: Real>(dy: &TensorOf<T>, operand: &[usize], other: &[usize], scale: T) -> Result<TensorOf<T>> {
    let (offsets, _) = broadcast_offsets(&dy.shape, operand, other);
    let mut d = zeros(operand)?;
    for (&o, &g) in offsets.iter().zip(&dy.data) {
        d.data[o] += scale * g;
    }
    Ok(d)
}

/// Gradient of a * b for the operand of shape `operand`: dy times the other operand, summed
/// over the axes the operand was broadcast along.
pub fn mul<T: Real>(dy: &TensorOf<T>, other: &TensorOf<T>, operand: &[usize]) -> Result<TensorOf<T>> {
    let (mine, theirs) = broadcast_offsets(&dy.shape, operand, &other.shape);
    let mut d = zeros(operand)?;
    for ((&o, &t), &g) in mine.iter().zip(&theirs).zip(&dy.data) {
        d.data[o] += g * other.data[t];
    }
    Ok(d)
}

/// Softmax along its rows: dx = y * (dy - sum(dy * y)).
pub fn softmax<T: Real>(dy: &TensorOf<T>, y: &TensorOf<T>, axis: usize, coerce_2d: bool) -> TensorOf<T> {
    let mut dx = dy.clone();
    for row in softmax_rows(&y.shape, axis, coerce_2d) {
        let dot: T = row.iter().map(|&i| dy.data[i] * y.data[i]).sum();
        for &i in &row {
            dx.data[i] = y.data[i] * (dy.data[i] - dot);
        }
    }
    dx
}

/// BatchNorm at inference is per-channel affine: dx = dy * scale / sqrt(var + eps).
pub fn batch_norm<T: Real>(dy: &TensorOf<T>, scale: &TensorOf<T>, var: &TensorOf<T>, eps: f32) -> TensorOf<T> {
    let c = dy.shape[1];
    let inner: usize = dy.shape[2..].iter().product();
    let eps = lit::<T>(eps);
    let mut dx = dy.clone();
    for (i, g) in dx.data.iter_mut().enumerate() {
        let ch = (i / inner) % c;
        *g = *g * scale.data[ch] / (var.data[ch] + eps).sqrt();
    }
    dx
}
