//! Fast max pooling and LRN: after the convolutions these were GoogLeNet's slowest layers
//! on the scalar reference (branchy k*k windows; a powf per element).
//!
//! Max pooling is separable: a max over the window's rows, then along the row, with the
//! padding handled once per row instead of per element. LRN keeps a running sum of
//! squares across channels and, for the common beta = 0.75, replaces powf by two square roots.

use super::simd::widest_lanes;
use super::simd::{fmax, sum, Lanes, F4};
use crate::error::Result;
use crate::graph::Window;
use crate::par;
use crate::tensor::Tensor;
use std::mem::MaybeUninit;

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
    let mean = |p: &[f32]| sum(p) / (h * w) as f32;
    // Planes split over the pool (SqueezeNet's 1000 planes of 13x13, 676 KB, ran on the caller
    // alone: 0.038 ms at one thread and at two); each mean as on one thread. One task under
    // PAR_MEANS_MIN: `par::for_each` runs it inline, as it does on one thread.
    let parts = if x.data.len() < PAR_MEANS_MIN { 1 } else { 2 * par::threads() };
    let mut data = vec![0.0f32; n * c];
    let chunks = par::chunks(n * c, parts, 16);
    let outs = par::SharedMut::new(&mut data);
    par::for_each(chunks.len(), &|t| {
        let r = chunks[t].clone();
        // SAFETY: tasks take disjoint planes, so disjoint means.
        let dst = unsafe { outs.slice(r.start, r.len()) };
        for (d, p) in dst.iter_mut().zip(x.data[r.start * h * w..r.end * h * w].chunks_exact(h * w)) {
            *d = mean(p);
        }
    });
    Ok(Some(Tensor { shape: vec![n, c, 1, 1], data }))
}

/// Floats of input under which one thread takes every plane's mean (a fork costs more).
const PAR_MEANS_MIN: usize = 1 << 16;

pub fn max_pool(x: &Tensor, win: &Window, ceil: bool) -> Result<Tensor> {
    let (n, c, h, w) = x.nchw()?;
    let (oh, ow) = (win.out_dim(0, h, ceil)?, win.out_dim(1, w, ceil)?);
    let (sx, dx, pl) = (win.strides[1], win.dilations[1], win.pads[1] as isize);
    // For each output column, the first and last input column its window covers, clipped to
    // the input (a stride-dx range), so the row pass runs over slices without bounds checks.
    let cols: Vec<(usize, usize)> = (0..ow)
        .map(|ox| {
            let first = (0..win.kernel[1]).map(|kx| (ox * sx + kx * dx) as isize - pl).find(|&ix| ix >= 0).unwrap_or(w as isize);
            let last = (0..win.kernel[1]).map(|kx| (ox * sx + kx * dx) as isize - pl).rfind(|&ix| ix < w as isize).unwrap_or(-1);
            (first.max(0) as usize, (last + 1).max(first.max(0)) as usize)
        })
        .collect();
    // Output columns whose whole window lies inside the row.
    let span = (win.kernel[1] - 1) * dx;
    let inner_lo = (pl as usize).div_ceil(sx);
    let inner_hi = if w + (pl as usize) > span { ((w + pl as usize - span - 1) / sx + 1).min(ow) } else { 0 };
    let inner = inner_lo.min(inner_hi)..inner_hi;
    let plan = MaxPoolPlan { x: &x.data, win, h, w, oh, ow, cols, inner };
    let planes = par::chunks(n * c, 2 * par::threads(), 1);
    // Not zeroed first: every output is written once (zeroing SqueezeNet's first pool's 774 KB
    // first was a tenth of its time, 0.090 -> 0.082 ms).
    // SAFETY: tasks take disjoint planes of the output and write each of its elements.
    unsafe {
        Tensor::filled_by(&[n, c, oh, ow], |out, _| {
            let outs = par::SharedMut::from_ptr(out as *mut MaybeUninit<f32>);
            par::for_each(planes.len(), &|t| plan.planes(planes[t].clone(), outs));
            Ok(())
        })
    }
}

/// `s` as slots to write: every f32 is a valid `MaybeUninit<f32>`, so kernels that fill
/// an uninitialised output can fill an initialised buffer too.
fn as_slots(s: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; only initialised values are ever written through the result.
    unsafe { &mut *(s as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// What every plane of one max pool shares: the input, the window, and the output columns
/// whose windows the row edges clip. Each task copies the sizes into locals (`planes`): the
/// same loop in the task's closure, reading them through its captures, ran SqueezeNet's second
/// pool at 0.073 ms against 0.063.
struct MaxPoolPlan<'a> {
    x: &'a [f32],
    win: &'a Window,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    cols: Vec<(usize, usize)>,
    inner: std::ops::Range<usize>,
}

impl MaxPoolPlan<'_> {
    widest_lanes! {
        /// The output planes `ps` into `outs`, every element written once; where AVX-512 or AVX2
        /// runs, the 3x3/2 windows sixteen or eight lanes at a time. Maxima: the same bits either
        /// way.
        ///
        /// # Safety
        /// No other thread writes those planes of `outs` meanwhile.
        unsafe fn planes(&self, ps: std::ops::Range<usize>, outs: par::SharedMut<MaybeUninit<f32>>) for MaxPoolPlan<'_> => planes_by::<V>
    }

    /// # Safety
    /// As `planes`, and the CPU runs `V`'s width.
    #[inline(always)]
    unsafe fn planes_by<V: Lanes>(&self, ps: std::ops::Range<usize>, outs: par::SharedMut<MaybeUninit<f32>>) {
        let MaxPoolPlan { x, win, h, w, oh, ow, ref cols, ref inner } = *self;
        let (sy, sx) = (win.strides[0], win.strides[1]);
        let (dy, dx) = (win.dilations[0], win.dilations[1]);
        let (pt, pl) = (win.pads[0] as isize, win.pads[1] as isize);
        // One float of slack past the row: the 3x3/2 kernel's last vector loads it (and
        // drops it).
        let mut colmax = vec![f32::NEG_INFINITY; w + 1];
        for p in ps {
            let plane = &x[p * h * w..(p + 1) * h * w];
            // SAFETY: the caller's promise.
            let dst = unsafe { outs.slice(p * oh * ow, oh * ow) };
            for oy in 0..oh {
                let mut rows = (0..win.kernel[0])
                    .map(|ky| (oy * sy + ky * dy) as isize - pt)
                    .filter(|&iy| iy >= 0 && iy < h as isize)
                    .map(|iy| &plane[iy as usize * w..(iy as usize + 1) * w]);
                // The classic 3x3/2 pool (AlexNet to SqueezeNet, GoogLeNet's stem) with its
                // three rows inside the map, on sixteen lanes: the column maxima straight from
                // the rows, kept in registers, never stored (SqueezeNet's first pool 0.096 ->
                // 0.086 ms, its second 0.058 -> 0.044). A row of under sixteen outputs (its third
                // pool: 13; GoogLeNet's 14 and 7) is one group whose loads run on into the next
                // rows and whose extra lanes are not stored (0.042 -> 0.033 ms), unless that
                // would read past the input's end. On four lanes this ran slower than the row of
                // column maxima below.
                if V::N > 4 && (win.kernel[1], sx, dx) == (3, 2, 1) && !inner.is_empty() && win.kernel[0] == 3 {
                    let first = inner.start * sx - pl as usize;
                    let n = inner.len();
                    let mut three = rows.clone();
                    if let (Some(r0), Some(r1), Some(r2)) = (three.next(), three.next(), three.next()) {
                        // Where r2 starts in x: a short row's loads end furthest in r2's.
                        let r2_at = (r2.as_ptr() as usize - x.as_ptr() as usize) / std::mem::size_of::<f32>();
                        if n >= V::N || r2_at + first + 2 * V::N < x.len() {
                            let o = &mut dst[oy * ow..(oy + 1) * ow];
                            if n >= V::N {
                                // SAFETY: the CPU runs `V`, the caller's promise.
                                unsafe { max_of_3x3_stride2::<V>(&mut o[inner.clone()], &r0[first..], &r1[first..], &r2[first..]) };
                            } else {
                                // SAFETY: the CPU runs `V`; each row's 2 * V::N + 1 floats from
                                // `first` lie inside x (checked for r2; r0 and r1 precede it);
                                // `o[inner]` holds n.
                                unsafe { max_of_3x3_stride2_under::<V>(o[inner.clone()].as_mut_ptr() as *mut f32, n, [r0, r1, r2].map(|r| r.as_ptr().add(first))) };
                            }
                            clipped_columns_of_three(o, cols, inner, [r0, r1, r2]);
                            continue;
                        }
                    }
                }
                let cm = &mut colmax[..w];
                // The max over the window's rows first: whole contiguous rows, a vector at a
                // time, and the strided max along the row then runs once per output row. Four
                // lanes even where sixteen run: the row is stored and read back at other
                // offsets, and wide overlapping stores stalled those loads (SqueezeNet's third
                // pool, rows of 27, 0.042 -> 0.072 ms on sixteen lanes).
                match (rows.next(), rows.next(), rows.next()) {
                    (Some(r0), Some(r1), Some(r2)) => max_of_three(as_slots(cm), r0, r1, r2),
                    (Some(r0), Some(r1), None) => max_of_two(as_slots(cm), r0, r1),
                    (Some(r0), None, _) => cm.copy_from_slice(r0),
                    (None, ..) => cm.fill(f32::NEG_INFINITY),
                }
                for r in rows {
                    for (a, &b) in cm.iter_mut().zip(r) {
                        *a = fmax(*a, b);
                    }
                }
                let o = &mut dst[oy * ow..(oy + 1) * ow];
                // Edges: clipped windows.
                for ox in (0..inner.start).chain(inner.end..ow) {
                    let (a, b) = cols[ox];
                    o[ox].write(colmax[a.min(b)..b].iter().step_by(dx).fold(f32::NEG_INFINITY, |m, &v| fmax(m, v)));
                }
                if inner.is_empty() {
                    continue;
                }
                // Inside: whole windows.
                let first = inner.start * sx - pl as usize;
                let out = &mut o[inner.clone()];
                match (win.kernel[1], sx, dx) {
                    // The classic 3x3/2 pool (AlexNet to SqueezeNet, GoogLeNet's stem).
                    (3, 2, 1) => max_of_three_stride2(out, &colmax[first..]),
                    // VGG's 2x2/2.
                    (2, 2, 1) => max_of_two_stride2(out, &colmax[first..w]),
                    // The Inception modules' 3x3/1 pool branch: three shifted views.
                    (3, 1, 1) => max_of_three(out, &colmax[first..w], &colmax[first + 1..w], &colmax[first + 2..w]),
                    _ => {
                        for (v, ox) in out.iter_mut().zip(0..) {
                            let at = first + ox * sx;
                            v.write((1..win.kernel[1]).fold(colmax[at], |m, kx| fmax(m, colmax[at + kx * dx])));
                        }
                    }
                }
            }
        }
    }
}

/// A three-row window's outputs outside `inner` (clipped windows: a ceil-mode pool's last
/// column, a padded pool's first), each the max over its columns `cols[ox]` of the rows.
#[inline(always)]
fn clipped_columns_of_three(o: &mut [MaybeUninit<f32>], cols: &[(usize, usize)], inner: &std::ops::Range<usize>, rows: [&[f32]; 3]) {
    for ox in (0..inner.start).chain(inner.end..o.len()) {
        let (a, b) = cols[ox];
        let col = |r: &[f32]| r[a.min(b)..b].iter().fold(f32::NEG_INFINITY, |m, &v| fmax(m, v));
        o[ox].write(fmax(fmax(col(rows[0]), col(rows[1])), col(rows[2])));
    }
}

/// Runs `body` for j = 0, N, 2N... while a whole vector fits in n, then once at n - N when N
/// does not divide n (an overlapping vector: the same maxima written again). A macro, not a
/// closure: the body must compile inside its caller, with its caller's target features.
macro_rules! by_vectors {
    ($n:expr, $lanes:expr, |$j:ident| $body:block) => {{
        let (n, lanes) = ($n, $lanes);
        let mut $j = 0;
        while $j + lanes <= n {
            $body
            $j += lanes;
        }
        if $j < n {
            let $j = n - lanes;
            $body
        }
    }};
}

// `max_of_3x3_stride2` is a plain loop over `Lanes`, not closures: inlined into
// `planes_avx512` it compiles with its AVX-512 (a closure LLVM keeps out of line would not).
// The row-of-column-maxima kernels after it run four lanes everywhere (`planes_by`), a row
// under four outputs scalar code.

/// out[i] = max(a[i], b[i], c[i]) over out's length.
#[inline(always)]
fn max_of_three(out: &mut [MaybeUninit<f32>], a: &[f32], b: &[f32], c: &[f32]) {
    let n = out.len();
    assert!(a.len() >= n && b.len() >= n && c.len() >= n);
    if n < 4 {
        for i in 0..n {
            out[i].write(fmax(fmax(a[i], b[i]), c[i]));
        }
        return;
    }
    by_vectors!(n, 4, |j| {
        // SAFETY: lanes j..j + 4 end at or before n, which a, b and c reach.
        unsafe {
            let m = F4::load(a.as_ptr().add(j)).max(F4::load(b.as_ptr().add(j))).max(F4::load(c.as_ptr().add(j)));
            m.store(out.as_mut_ptr().add(j) as *mut f32);
        }
    });
}

/// out[i] = the max of r[2i], r[2i+1], r[2i+2] over the three rows r0, r1, r2, which hold
/// 2 * out.len() + 1 floats at least, for `V::N` outputs or more. Each group of N outputs
/// takes the column maxima of floats 2j.. (a), 2j + N.. (b) and 2j + 2N (c's first lane), and
/// c is the next group's a: six loads a group, where loading the columns shifted by one too
/// took twelve (most of them split across cache lines). Plain functions, not closures: they
/// must inline into the caller, with its target features.
///
/// # Safety
/// The CPU runs `V`'s width.
#[inline(always)]
unsafe fn max_of_3x3_stride2<V: Lanes>(out: &mut [MaybeUninit<f32>], r0: &[f32], r1: &[f32], r2: &[f32]) {
    let n = out.len();
    let r = [r0, r1, r2];
    assert!(n >= V::N && r.iter().all(|r| r.len() > 2 * n));
    let o = out.as_mut_ptr() as *mut f32;
    // SAFETY (of the calls below): column loads end at 2j + 2N <= 2n, before the rows' ends;
    // `next` loads a vector only where the rows hold it; stores end at j + N <= n.
    unsafe {
        let mut a = column_max::<V>(r, 0);
        let mut j = 0;
        while j + V::N <= n {
            let (b, c) = (column_max::<V>(r, 2 * j + V::N), next_column_max::<V>(r, 2 * j + 2 * V::N));
            max_of_pairs_and_next(a, b, c).store(o.add(j));
            a = c;
            j += V::N;
        }
        if j < n {
            // One group more, overlapping the last: the same maxima written again.
            let j = n - V::N;
            let (a, b, c) = (column_max::<V>(r, 2 * j), column_max::<V>(r, 2 * j + V::N), next_column_max::<V>(r, 2 * j + 2 * V::N));
            max_of_pairs_and_next(a, b, c).store(o.add(j));
        }
    }
}

/// The max of the three rows' floats d..d + N.
///
/// # Safety
/// The CPU runs `V`; each row holds d + N floats.
#[inline(always)]
unsafe fn column_max<V: Lanes>(r: [&[f32]; 3], d: usize) -> V {
    unsafe { V::load(r[0].as_ptr().add(d)).max(V::load(r[1].as_ptr().add(d))).max(V::load(r[2].as_ptr().add(d))) }
}

/// `column_max` at d where the rows hold a whole vector there (it is the next group's first),
/// else the max of the floats at d in every lane: only its first lane is used.
///
/// # Safety
/// The CPU runs `V`; each row holds d + 1 floats.
#[inline(always)]
unsafe fn next_column_max<V: Lanes>(r: [&[f32]; 3], d: usize) -> V {
    if r.iter().all(|r| d + V::N <= r.len()) {
        unsafe { column_max(r, d) }
    } else {
        unsafe { V::splat(fmax(fmax(r[0][d], r[1][d]), r[2][d])) }
    }
}

/// out[k] = max(c[2k], c[2k+1], c[2k+2]) for the column maxima c = a, b, c's first lane:
/// max(c[2k], c[2k+1]) from the pairs (a, a1), then c[2k+2], the odd lanes of the shifted pair.
#[inline(always)]
fn max_of_pairs_and_next<V: Lanes>(a: V, b: V, c: V) -> V {
    let (a1, b1) = (V::shift1(a, b), V::shift1(b, c));
    V::even(a.max(a1), b.max(b1)).max(V::odd(a1, b1))
}

/// As `max_of_3x3_stride2` for n < `V::N` outputs: one group, its first n lanes stored.
///
/// # Safety
/// The CPU runs `V`'s width; each of `r` is valid for reading 2 * `V::N` + 1 floats, `out`
/// for writing n.
#[inline(always)]
unsafe fn max_of_3x3_stride2_under<V: Lanes>(out: *mut f32, n: usize, r: [*const f32; 3]) {
    // SAFETY: the contract above.
    unsafe {
        let r = r.map(|p| std::slice::from_raw_parts(p, 2 * V::N + 1));
        let c = V::splat(fmax(fmax(r[0][2 * V::N], r[1][2 * V::N]), r[2][2 * V::N]));
        max_of_pairs_and_next(column_max::<V>(r, 0), column_max::<V>(r, V::N), c).store_first(out, n);
    }
}

/// out[i] = max(a[i], b[i]) over out's length.
#[inline(always)]
fn max_of_two(out: &mut [MaybeUninit<f32>], a: &[f32], b: &[f32]) {
    let n = out.len();
    assert!(a.len() >= n && b.len() >= n);
    if n < 4 {
        for i in 0..n {
            out[i].write(fmax(a[i], b[i]));
        }
        return;
    }
    by_vectors!(n, 4, |j| {
        // SAFETY: as `max_of_three`.
        unsafe { F4::load(a.as_ptr().add(j)).max(F4::load(b.as_ptr().add(j))).store(out.as_mut_ptr().add(j) as *mut f32) };
    });
}

/// out[i] = max(s[2i], s[2i+1], s[2i+2]): taps split into even and odd lanes by shuffles,
/// not gathered one float at a time. `s` holds 2 * out.len() + 2 floats (one past the last
/// window, loaded and dropped) or, with fewer, only 2 * out.len() + 1 and scalar code runs.
#[inline(always)]
fn max_of_three_stride2(out: &mut [MaybeUninit<f32>], s: &[f32]) {
    let n = out.len();
    assert!(s.len() > 2 * n);
    if n < 4 || s.len() < 2 * n + 2 {
        for i in 0..n {
            out[i].write(fmax(fmax(s[2 * i], s[2 * i + 1]), s[2 * i + 2]));
        }
        return;
    }
    by_vectors!(n, 4, |j| {
        // SAFETY: lanes j..j + 4 load s[2j..2j + 10], and 2j + 10 <= 2n + 2.
        unsafe {
            let p = s.as_ptr().add(2 * j);
            let (a, b) = (F4::load(p), F4::load(p.add(4)));
            let (a2, b2) = (F4::load(p.add(2)), F4::load(p.add(6)));
            F4::even(a, b).max(F4::odd(a, b)).max(F4::even(a2, b2)).store(out.as_mut_ptr().add(j) as *mut f32);
        }
    });
}

/// out[i] = max(s[2i], s[2i+1]), for `s` of 2 * out.len() floats at least.
#[inline(always)]
fn max_of_two_stride2(out: &mut [MaybeUninit<f32>], s: &[f32]) {
    let n = out.len();
    assert!(s.len() >= 2 * n);
    if n < 4 {
        for i in 0..n {
            out[i].write(fmax(s[2 * i], s[2 * i + 1]));
        }
        return;
    }
    by_vectors!(n, 4, |j| {
        // SAFETY: lanes j..j + 4 load s[2j..2j + 8], and 2j + 8 <= 2n.
        unsafe {
            let p = s.as_ptr().add(2 * j);
            let (a, b) = (F4::load(p), F4::load(p.add(4)));
            F4::even(a, b).max(F4::odd(a, b)).store(out.as_mut_ptr().add(j) as *mut f32);
        }
    });
}

pub fn lrn(x: &Tensor, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<Tensor> {
    let (n, c, h, w) = x.nchw()?;
    let plane = h * w;
    let win = LrnWindow { c, plane, before: (size - 1) / 2, after: (size - 1).div_ceil(2), k: alpha / size as f32, beta, bias };
    let mut out = Tensor::zeros(&x.shape)?;
    let outs = par::SharedMut::new(&mut out.data);
    // Pixels in blocks: each task slides the channel window over its own pixels.
    let blocks = par::chunks(plane, 2 * par::threads(), 64);
    for b in 0..n {
        let xb = &x.data[b * c * plane..(b + 1) * c * plane];
        // SAFETY: tasks take disjoint pixels of every channel of image b.
        par::for_each(blocks.len(), &|t| unsafe { win.pixels(xb, outs, b, blocks[t].clone()) });
    }
    Ok(out)
}

/// One LRN's sizes and constants, shared by its tasks.
struct LrnWindow {
    c: usize,
    plane: usize,
    before: usize,
    after: usize,
    k: f32,
    beta: f32,
    bias: f32,
}

impl LrnWindow {
    widest_lanes! {
        /// Pixels `px` of every channel of image `b` (`xb`) into `outs`: compiled for AVX-512 or
        /// AVX2 where the CPU has them, so its square roots and divisions run 16 or 8 lanes wide
        /// (x86-64's baseline is four: GoogLeNet's norm2, 602,112 outputs, took 0.61 ms). The
        /// same operations in the same order whatever the width: the same bits.
        ///
        /// # Safety
        /// No other thread writes those pixels of image b's output meanwhile.
        unsafe fn pixels(&self, xb: &[f32], outs: par::SharedMut<f32>, b: usize, px: std::ops::Range<usize>) for LrnWindow => pixels_by
    }

    /// # Safety
    /// As `pixels`.
    #[inline(always)]
    unsafe fn pixels_by(&self, xb: &[f32], outs: par::SharedMut<f32>, b: usize, px: std::ops::Range<usize>) {
        let LrnWindow { c, plane, before, after, k, beta, bias } = *self;
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
            // SAFETY: the caller's promise: these pixels of this channel are this task's.
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
    }
}
