//! Fast max pooling and LRN: after the convolutions these were GoogLeNet's slowest layers
//! on the scalar reference (branchy k*k windows; a powf per element).
//!
//! Max pooling is separable: a max over the window's rows, then along the row, with the
//! padding handled once per row instead of per element. LRN keeps a running sum of
//! squares across channels and, for the common beta = 0.75, replaces powf by two square roots.

use super::simd::{fmax, sum};
use crate::error::Result;
use crate::graph::Window;
use crate::par;
use crate::tensor::Tensor;

/// The mean of each plane: GlobalAveragePool, and an AveragePool whose one window is the whole
/// map (SqueezeNet's 13x13, GoogLeNet's 7x7), or None for any other window. The reference
/// sums each plane left to right, a chain of dependent adds (SqueezeNet's 1000 planes took
/// 0.12-0.18 ms); eight partial sums vectorize. Equal within float rounding, not bit for bit.
pub fn plane_means(x: &Tensor, win: Option<&Window>) -> Result<Option<Tensor>> {
    let (n, c, h, w) = x.nchw()?;
    if h * w == 0 {
        return Err(crate::error::Error::Shape(format!("average pool over empty {h}x{w} planes")));
    }
    if let Some(win) = win {
        let whole = win.kernel == [h, w] && win.pads == [0; 4] && win.dilations == [1, 1];
        if !whole {
            return Ok(None);
        }
    }
    let data = x.data.chunks_exact(h * w).map(|p| sum(p) / (h * w) as f32).collect();
    Ok(Some(Tensor { shape: vec![n, c, 1, 1], data }))
}

pub fn max_pool(x: &Tensor, win: &Window, ceil: bool) -> Result<Tensor> {
    let (n, c, h, w) = x.nchw()?;
    let (oh, ow) = (win.out_dim(0, h, ceil)?, win.out_dim(1, w, ceil)?);
    let mut out = Tensor::zeros(&[n, c, oh, ow])?;
    let (sy, sx) = (win.strides[0], win.strides[1]);
    let (dy, dx) = (win.dilations[0], win.dilations[1]);
    let (pt, pl) = (win.pads[0] as isize, win.pads[1] as isize);
    // For each output column, the first and last input column its window covers, clipped to
    // the input (a stride-dx range), so the row pass runs over slices without bounds checks.
    let cols: Vec<(usize, usize)> = (0..ow)
        .map(|ox| {
            let first = (0..win.kernel[1]).map(|kx| (ox * sx + kx * dx) as isize - pl).find(|&ix| ix >= 0).unwrap_or(w as isize);
            let last = (0..win.kernel[1]).map(|kx| (ox * sx + kx * dx) as isize - pl).filter(|&ix| ix < w as isize).last().unwrap_or(-1);
            (first.max(0) as usize, (last + 1).max(first.max(0)) as usize)
        })
        .collect();
    // Output columns whose whole window lies inside the row.
    let span = (win.kernel[1] - 1) * dx;
    let inner_lo = (pl as usize).div_ceil(sx);
    let inner_hi = if w + (pl as usize) > span { ((w + pl as usize - span - 1) / sx + 1).min(ow) } else { 0 };
    let inner = inner_lo.min(inner_hi)..inner_hi;
    let planes = par::chunks(n * c, 2 * par::threads(), 1);
    let outs = par::SharedMut::new(&mut out.data);
    par::for_each(planes.len(), &|t| {
        // The max over the window's rows first: whole contiguous rows, so it vectorizes, and
        // the strided max along a row then runs once per output row, not once per input row.
        let mut colmax = vec![f32::NEG_INFINITY; w];
        for p in planes[t].clone() {
            let plane = &x.data[p * h * w..(p + 1) * h * w];
            // SAFETY: tasks take disjoint planes.
            let dst = unsafe { outs.slice(p * oh * ow, oh * ow) };
            for oy in 0..oh {
                let mut rows = (0..win.kernel[0])
                    .map(|ky| (oy * sy + ky * dy) as isize - pt)
                    .filter(|&iy| iy >= 0 && iy < h as isize)
                    .map(|iy| &plane[iy as usize * w..(iy as usize + 1) * w]);
                match (rows.next(), rows.next(), rows.next()) {
                    // Three rows (every 3x3 window inside the map): one pass over them, not a
                    // copy and two read-modify-write passes.
                    (Some(r0), Some(r1), Some(r2)) => max_of_three(&mut colmax, r0, r1, r2),
                    (Some(r0), r1, _) => {
                        colmax.copy_from_slice(r0);
                        if let Some(r1) = r1 {
                            for (a, &b) in colmax.iter_mut().zip(r1) {
                                *a = fmax(*a, b);
                            }
                        }
                    }
                    (None, ..) => colmax.fill(f32::NEG_INFINITY),
                }
                for r in rows {
                    for (a, &b) in colmax.iter_mut().zip(r) {
                        *a = fmax(*a, b);
                    }
                }
                let o = &mut dst[oy * ow..(oy + 1) * ow];
                // Edges: clipped windows.
                for ox in (0..inner.start).chain(inner.end..ow) {
                    let (a, b) = cols[ox];
                    o[ox] = colmax[a.min(b)..b].iter().step_by(dx).fold(f32::NEG_INFINITY, |m, &v| fmax(m, v));
                }
                // Inside: whole windows, one tap at a time over every column (branch-free).
                if !inner.is_empty() && sx == 2 && dx == 1 && win.kernel[1] == 3 {
                    // The classic 3x3/2 pool (AlexNet to SqueezeNet): one loop LLVM vectorizes
                    // as interleaved loads.
                    let first = inner.start * 2 - pl as usize;
                    let src = &colmax[first..first + 2 * inner.len() + 1];
                    for (v, t) in o[inner.clone()].iter_mut().zip(src.windows(3).step_by(2)) {
                        *v = fmax(fmax(t[0], t[1]), t[2]);
                    }
                } else if !inner.is_empty() && sx == 1 && dx == 1 && win.kernel[1] == 3 {
                    // The Inception modules' 3x3/1 pool branch: three shifted views, one pass.
                    let first = inner.start - pl as usize;
                    max_of_three(&mut o[inner.clone()], &colmax[first..], &colmax[first + 1..], &colmax[first + 2..]);
                } else if !inner.is_empty() {
                    let first = inner.start * sx - pl as usize;
                    let out = &mut o[inner.clone()];
                    for (v, ox) in out.iter_mut().zip(0..) {
                        *v = colmax[first + ox * sx];
                    }
                    for kx in 1..win.kernel[1] {
                        let off = first + kx * dx;
                        for (v, ox) in out.iter_mut().zip(0..) {
                            *v = fmax(*v, colmax[off + ox * sx]);
                        }
                    }
                }
            }
        }
    });
    Ok(out)
}

/// out[i] = max(a[i], b[i], c[i]) over out's length: one pass LLVM vectorizes.
#[inline(always)]
fn max_of_three(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    for (((v, &x), &y), &z) in out.iter_mut().zip(a).zip(b).zip(c) {
        *v = fmax(fmax(x, y), z);
    }
}

pub fn lrn(x: &Tensor, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<Tensor> {
    let (n, c, h, w) = x.nchw()?;
    let plane = h * w;
    let (before, after) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let mut out = Tensor::zeros(&x.shape)?;
    let k = alpha / size as f32;
    let outs = par::SharedMut::new(&mut out.data);
    // Pixels in blocks: each task slides the channel window over its own pixels.
    let blocks = par::chunks(plane, 2 * par::threads(), 64);
    for b in 0..n {
        let xb = &x.data[b * c * plane..(b + 1) * c * plane];
        par::for_each(blocks.len(), &|t| {
            let px = blocks[t].clone();
            let at = |ch: usize| &xb[ch * plane + px.start..ch * plane + px.end];
            let mut sum = vec![0.0f32; px.len()];
            // Window of channel 0: channels 0..=after.
            for ch in 0..=after.min(c - 1) {
                for (s, v) in sum.iter_mut().zip(at(ch)) {
                    *s += v * v;
                }
            }
            for ch in 0..c {
                let src = at(ch);
                // SAFETY: tasks take disjoint pixels of every channel.
                let dst = unsafe { outs.slice((b * c + ch) * plane + px.start, px.len()) };
                if beta == 0.75 {
                    for ((d, &v), &s) in dst.iter_mut().zip(src).zip(&sum) {
                        let base = bias + k * s;
                        let r = base.sqrt();
                        *d = v / (r * r.sqrt()); // base^0.75
                    }
                } else {
                    for ((d, &v), &s) in dst.iter_mut().zip(src).zip(&sum) {
                        *d = v / (bias + k * s).powf(beta);
                    }
                }
                // Slide the window to channel ch+1: add ch+1+after, drop ch-before.
                if ch + 1 + after < c {
                    for (s, v) in sum.iter_mut().zip(at(ch + 1 + after)) {
                        *s += v * v;
                    }
                }
                if ch >= before {
                    for (s, v) in sum.iter_mut().zip(at(ch - before)) {
                        *s -= v * v;
                    }
                }
            }
        });
    }
    Ok(out)
}
