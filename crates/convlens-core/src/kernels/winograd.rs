//! Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (nearly all of VGG16's work): each
//! 2x2 output tile costs 16 multiplies per channel pair instead of 36, as 16 independent
//! GEMMs (one per point of the 4x4 transformed tile) through the packed GEMM.
//!
//! F(2x2,3x3) rather than F(4x4,3x3): its transforms use only 0, +-1 and 1/2, so it loses
//! almost nothing to rounding (measured against the reference: see WINOGRAD_TOL in tests),
//! while F(4x4) amplifies fp32 error by ~10x for another 1.8x fewer multiplies.

use super::conv::pad_planes_to;
use super::gemm::{gemm, DenseB, Epilogue, PackedA};
use super::simd::widest_lanes;
use super::simd::{Lanes, F4};
use crate::error::Result;
use crate::graph::Window;
use crate::par;
use crate::tensor::Tensor;

/// Output tiles transformed and multiplied per pass: bounds the transformed input
/// (16 x C x TILES floats) to stay in cache-sized pieces.
const TILES: usize = 196;

/// A map's sizes, the pads the input is read with, and its tile grid's width.
struct Geometry {
    h: usize,
    w: usize,
    pt: usize,
    pl: usize,
    oh: usize,
    ow: usize,
    tw: usize,
}

/// Tile grids at most this wide read a zero-padded copy of their input, so that every tile's
/// patch lies inside it and takes the vector path; wider ones handle the patches the border
/// cuts one by one. On SqueezeNet's 13x13 maps (7 tiles a row) half the tiles were such edge
/// tiles; on VGG16's first maps (112) 4%, where copying 13 MB would cost more than it saves.
const PADDED_COPY_MAX_TW: usize = 32;

thread_local! {
    /// Each pool thread's transformed input, products and GEMM packing buffer.
    static BUFFERS: std::cell::RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
    /// The caller's transformed input and products when one batch's work is split.
    static SPLIT_BUFFERS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    /// The caller's zero-padded copy of an image's input (`PADDED_COPY_MAX_TW`), kept from call
    /// to call.
    static PADDED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

pub struct WinogradConv {
    /// U_xi = (G g G^T)[xi] as an MxC matrix, one per point xi of the 4x4 tile.
    u: Vec<PackedA>,
    m: usize,
    c: usize,
    pads: [usize; 4],
    bias: Option<Vec<f32>>,
    relu: bool,
}

/// Whether a conv can take this path, and is big enough to gain from it: from 16 input channels
/// (`MIN_CHANNELS`) on every build. Measured on SqueezeNet's 16-channel 3x3 expands
/// (docs/BENCHMARKS.md): natively with AVX2 on a Zen 3 they ran 0.89x and 0.84x their GEMM time
/// (the pass 0.96x), with AVX-512 0.28 -> 0.23 ms each; as wasm simd128 in Chromium the pass took
/// 0.95x its time on one thread (19.7-19.8 against 20.8-20.9 ms, three interleaved runs). Early
/// on, before the transforms ran whole vectors, the GEMM had won on 16 channels (as wasm 1.87
/// against 2.3 ms), so the threshold was 32.
pub fn applies(window: &Window, group: usize, c: usize, m: usize) -> bool {
    window.kernel == [3, 3] && window.strides == [1, 1] && window.dilations == [1, 1] && group == 1 && c >= MIN_CHANNELS && m >= 16
}

/// The fewest input channels a 3x3 conv takes Winograd with (`applies`).
pub const MIN_CHANNELS: usize = 16;

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

    /// The output's shape for input `x`.
    pub fn out_shape(&self, x: &Tensor) -> Result<[usize; 4]> {
        let (n, _, h, w) = x.nchw()?;
        Ok([n, self.m, h + self.pads[0] + self.pads[2] - 2, w + self.pads[1] + self.pads[3] - 2])
    }

    pub fn run(&self, x: &Tensor, scratch: &mut Vec<f32>) -> Result<Tensor> {
        let shape = self.out_shape(x)?;
        // SAFETY: `run_into` writes every output element through the pointer.
        unsafe { Tensor::filled_by(&shape, |out, len| self.run_into(x, scratch, out, len)) }
    }

    /// The output written to `out` (which may be uninitialised), e.g. a concat's slice.
    ///
    /// # Safety
    /// As `PreparedConv::run_into`: `out` valid for `len` floats (the output's size, checked),
    /// each written through the pointer before anything reads it.
    pub unsafe fn run_into(&self, x: &Tensor, scratch: &mut Vec<f32>, out: *mut f32, len: usize) -> Result<()> {
        let (n, c, h, w) = x.nchw()?;
        debug_assert_eq!(c, self.c);
        let [_, m, oh, ow] = self.out_shape(x)?;
        if len != n * m * oh * ow {
            return Err(crate::error::Error::Shape(format!("a conv output of {} floats written into {len}", n * m * oh * ow)));
        }
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        let tiles = th * tw;
        let batches: Vec<usize> = (0..tiles).step_by(TILES).collect();
        let threads = par::threads();
        let mut padded = PADDED.with(|p| std::mem::take(&mut *p.borrow_mut()));
        for b in 0..n {
            let xb = &x.data[b * c * h * w..(b + 1) * c * h * w];
            // The tiles' patches span 2 * th + 2 rows and 2 * tw + 2 columns from the top-left pad.
            let (hp, wp) = (2 * th + 2, 2 * tw + 2);
            let (xb, geo) = if tw <= PADDED_COPY_MAX_TW {
                pad_planes_to(xb, c, h, w, self.pads[0], self.pads[1], hp, wp, &mut padded);
                (&padded[..c * hp * wp], Geometry { h: hp, w: wp, pt: 0, pl: 0, oh, ow, tw })
            } else {
                (xb, Geometry { h, w, pt: self.pads[0], pl: self.pads[1], oh, ow, tw })
            };
            // SAFETY: this image's block of the output.
            let ob = unsafe { par::SharedMut::from_ptr(out.add(b * m * oh * ow)) };
            if threads > 1 && batches.len() >= 2 * threads {
                // Many tiles: each task takes whole batches, transforms and GEMMs alike.
                par::for_each(batches.len(), &|i| {
                    BUFFERS.with(|bufs| {
                        let (v, mm, pack) = &mut *bufs.borrow_mut();
                        let nt = TILES.min(tiles - batches[i]);
                        // SAFETY: batches cover disjoint tiles, so disjoint output pixels.
                        unsafe { self.batch(xb, &geo, batches[i], nt, v, mm, pack, ob, false) };
                    })
                });
            } else {
                // Few tiles (a late, small map): the batch's 16 GEMMs and its transforms are split.
                // Buffers kept from pass to pass (fresh ones were zeroed each call: a serial
                // memset at two threads); not `BUFFERS`, which the split's tasks borrow.
                SPLIT_BUFFERS.with(|bufs| {
                    let (v, mm) = &mut *bufs.borrow_mut();
                    for &t0 in &batches {
                        let nt = TILES.min(tiles - t0);
                        // SAFETY: this thread alone writes the output.
                        unsafe { self.batch(xb, &geo, t0, nt, v, mm, scratch, ob, threads > 1) };
                    }
                });
            }
        }
        PADDED.with(|p| *p.borrow_mut() = padded);
        // The output transform wrote every pixel of every output channel (tiles cover the map,
        // the last row and column of tiles cropped), through pointers only.
        Ok(())
    }

    /// Tiles t0..t0+nt: transform, 16 GEMMs, transform back into `out`.
    ///
    /// # Safety
    /// No other thread may write those tiles' output pixels meanwhile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn batch(
        &self,
        x: &[f32],
        geo: &Geometry,
        t0: usize,
        nt: usize,
        v: &mut Vec<f32>,
        mm: &mut Vec<f32>,
        pack: &mut Vec<f32>,
        out: par::SharedMut<f32>,
        split: bool,
    ) {
        let (c, m) = (self.c, self.m);
        // Grown, never shrunk: a batch of fewer tiles (a map's last) and then a larger layer
        // zero-filled the regrown part each time, a memset of ~1% of a SqueezeNet pass. Every
        // element used is written before it is read.
        for (buf, len) in [(&mut *v, 16 * c * nt), (&mut *mm, 16 * m * nt)] {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
        }
        let (v, mm) = (&mut v[..16 * c * nt], &mut mm[..16 * m * nt]);
        let no_epilogue = Epilogue { bias: None, relu: false };
        if !split {
            self.transform_input(x, geo, t0, nt, 0..c, par::SharedMut::new(v));
            for xi in 0..16 {
                let src = DenseB { k: c, n: nt, data: &v[xi * c * nt..(xi + 1) * c * nt] };
                gemm(&self.u[xi], &src, &mut mm[xi * m * nt..(xi + 1) * m * nt], nt, no_epilogue, pack);
            }
            self.transform_output(mm, out, geo, t0, nt, 0..m);
            return;
        }
        let threads = par::threads();
        let vs = par::SharedMut::new(v);
        let chans = par::chunks(c, 2 * threads, 1);
        par::for_each(chans.len(), &|i| self.transform_input(x, geo, t0, nt, chans[i].clone(), vs));
        let ms = par::SharedMut::new(mm);
        let v: &[f32] = v;
        par::for_each(16, &|xi| {
            let src = DenseB { k: c, n: nt, data: &v[xi * c * nt..(xi + 1) * c * nt] };
            // SAFETY: each task writes its own point's block of M.
            let dst = ms.slice(xi * m * nt, m * nt);
            BUFFERS.with(|bufs| gemm(&self.u[xi], &src, dst, nt, no_epilogue, &mut bufs.borrow_mut().2));
        });
        let mm: &[f32] = mm;
        let outs = par::chunks(m, 2 * threads, 1);
        par::for_each(outs.len(), &|i| self.transform_output(mm, out, geo, t0, nt, outs[i].clone()));
    }

    widest_lanes! {
        /// V = B^T d B for each channel and tile, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]];
        /// written as v[xi][c][tile].
        /// Channels `chans` only; tasks given disjoint channels write disjoint parts of `v`.
        /// Sixteen tiles at a time where AVX-512 runs, eight with AVX2, four elsewhere: the same
        /// bits (`Lanes`).
        fn transform_input(&self, x: &[f32], geo: &Geometry, t0: usize, nt: usize, chans: std::ops::Range<usize>, v: par::SharedMut<f32>) for WinogradConv => transform_input_by::<V>
    }

    /// # Safety
    /// The CPU runs V's width.
    #[inline(always)]
    unsafe fn transform_input_by<V: Lanes>(&self, x: &[f32], geo: &Geometry, t0: usize, nt: usize, chans: std::ops::Range<usize>, v: par::SharedMut<f32>) {
        let (c, h, w) = (self.c, geo.h, geo.w);
        let (pt, pl) = (geo.pt as isize, geo.pl as isize);
        for ch in chans {
            let plane = &x[ch * h * w..(ch + 1) * h * w];
            // SAFETY: these 16 rows of v (one per point, this channel's) are this task's alone.
            let mut vrows: [&mut [f32]; 16] = std::array::from_fn(|xi| unsafe { v.slice((xi * c + ch) * nt, nt) });
            for (ty, tx0, run) in tile_rows(t0, nt, geo.tw) {
                let (y0, x0) = (ty as isize * 2 - pt, tx0 as isize * 2 - pl);
                // Tiles whose 4x4 patch lies inside the map: read without checks, in one loop
                // over the run the compiler vectorizes (a patch's columns at stride 2).
                let rows_inside = y0 >= 0 && y0 + 4 <= h as isize;
                let lo = if x0 >= 0 { 0 } else { ((-x0) as usize).div_ceil(2) };
                let hi = if w as isize >= x0 + 4 { (((w as isize - x0 - 4) / 2 + 1) as usize).min(run.len()) } else { 0 };
                let inner = if rows_inside && lo < hi { lo..hi } else { 0..0 };
                if !inner.is_empty() {
                    let base = (y0 as usize) * w + (x0 + 2 * inner.start as isize) as usize;
                    let r: [&[f32]; 4] = std::array::from_fn(|i| &plane[base + i * w..base + i * w + 2 * inner.len() + 2]);
                    // n tiles at a time in vector registers, then four, then one by one.
                    let t_base = run.start + inner.start;
                    // SAFETY: the row slices hold 2 * inner.len() + 2 floats; tiles t_base.. up to
                    // t_base + inner.len() <= nt lie inside each row of v.
                    let vectored = unsafe { input_tiles::<V>(&r, &mut vrows, 0, inner.len(), t_base) };
                    // SAFETY: as above.
                    let vectored = unsafe { input_tiles::<F4>(&r, &mut vrows, vectored, inner.len(), t_base) };
                    for (q, t) in inner.clone().zip(run.clone().skip(inner.start)).skip(vectored) {
                        let col = |j: usize| [r[0][2 * q - 2 * inner.start + j], r[1][2 * q - 2 * inner.start + j], r[2][2 * q - 2 * inner.start + j], r[3][2 * q - 2 * inner.start + j]];
                        let vals = input_tile([col(0), col(1), col(2), col(3)]);
                        for (row, val) in vrows.iter_mut().zip(vals) {
                            row[t] = val;
                        }
                    }
                }
                for (q, t) in run.clone().enumerate() {
                    if inner.contains(&q) {
                        continue;
                    }
                    let xq = x0 + 2 * q as isize;
                    // cols[j][i]: the patch's column j, row i, zero outside the map.
                    let mut cols = [[0.0f32; 4]; 4];
                    for (j, col) in cols.iter_mut().enumerate() {
                        let xx = xq + j as isize;
                        if xx < 0 || xx >= w as isize {
                            continue;
                        }
                        for (i, cell) in col.iter_mut().enumerate() {
                            let y = y0 + i as isize;
                            if y >= 0 && y < h as isize {
                                *cell = plane[y as usize * w + xx as usize];
                            }
                        }
                    }
                    for (row, val) in vrows.iter_mut().zip(input_tile(cols)) {
                        row[t] = val;
                    }
                }
            }
        }
    }

    widest_lanes! {
        /// Y = A^T M A with A^T = [[1,1,1,0],[0,1,-1,-1]], then bias and ReLU, cropped at the edges.
        /// Output channels `chans` of tiles t0..t0+nt only. Sixteen tiles at a time where AVX-512
        /// runs, eight with AVX2, four elsewhere: the same bits (`Lanes`).
        fn transform_output(&self, mm: &[f32], out: par::SharedMut<f32>, geo: &Geometry, t0: usize, nt: usize, chans: std::ops::Range<usize>) for WinogradConv => transform_output_by::<V>
    }

    /// # Safety
    /// The CPU runs V's width.
    #[inline(always)]
    unsafe fn transform_output_by<V: Lanes>(&self, mm: &[f32], out: par::SharedMut<f32>, geo: &Geometry, t0: usize, nt: usize, chans: std::ops::Range<usize>) {
        let (m, oh, ow) = (self.m, geo.oh, geo.ow);
        // Point xi's products of output channel oc: mm[(xi * m + oc) * nt..][..nt]. Addressed
        // from one pointer per channel: sixteen slices built per channel and per tile row took
        // more than the arithmetic on SqueezeNet's 13x13 maps (seven tiles a row).
        assert!(mm.len() >= 16 * m * nt && chans.end <= m);
        let stride = m * nt;
        // Whether `len` products from tile t of every point of channel oc lie inside mm (the
        // last point's end furthest): lanes past a run may then be loaded and dropped.
        let readable = |oc: usize, t: usize, len: usize| oc * nt + 15 * stride + t + len <= mm.len();
        for oc in chans {
            let bias = self.bias.as_ref().map_or(0.0, |b| b[oc]);
            let plane = oc * oh * ow;
            // SAFETY: oc < m, so the channel's first product is inside mm (asserted above).
            let at = unsafe { mm.as_ptr().add(oc * nt) };
            for (ty, tx0, run) in tile_rows(t0, nt, geo.tw) {
                let y = ty * 2;
                // Tiles with both columns inside the map, and whether their second row is: a
                // map of odd height crops its last tile row to one, which still goes through
                // the vectors (its second row not written).
                let whole = run.len().min((ow - 2 * tx0) / 2);
                let two_rows = y + 1 < oh;
                // Whole tiles n at a time, then four at a time, each width ending with one
                // overlapping group where it does not divide the run (the same tiles computed
                // and written again, the same bits).
                let done = if whole > 0 {
                    // Through pointers: the output is not initialised before this writes it.
                    // SAFETY: one or two row segments of this channel's plane (the second only
                    // where y + 1 < oh), inside it; callers split tiles or channels, so no other
                    // task writes them.
                    let rows = unsafe {
                        let first = out.ptr(plane + y * ow + 2 * tx0);
                        [first, if two_rows { out.ptr(plane + (y + 1) * ow + 2 * tx0) } else { first }]
                    };
                    // SAFETY: `rows` hold 2 * whole floats each (whole <= (ow - 2 * tx0) / 2);
                    // tiles run.start.. run.start + whole lie in each point's nt products.
                    let done = unsafe { whole_tiles::<V>(at.add(run.start), stride, rows, two_rows, 0, whole, bias, self.relu) };
                    // Under V::N whole tiles (a 27x27 map's 13, a 13x13 map's 6): one group of
                    // V::N lanes with masked stores where V is wider than four, if the lanes
                    // past the run can be read (they lie inside `mm`; their results are
                    // dropped), instead of four-lane groups.
                    if done < whole && V::N > 4 && readable(oc, run.start, V::N) {
                        // SAFETY: as above; every lane's loads lie inside mm (checked).
                        unsafe { partial_tiles::<V>(at.add(run.start), stride, rows, two_rows, whole, bias, self.relu) };
                        whole
                    } else {
                        // SAFETY: as above.
                        unsafe { whole_tiles::<F4>(at.add(run.start), stride, rows, two_rows, done, whole, bias, self.relu) }
                    }
                } else {
                    0
                };
                // The rest of the run (under four whole tiles, and tiles cropped by the map's
                // edge), four at a time through the same arithmetic, written element by element.
                let rest = run.start + done..run.end;
                for t in rest.clone().step_by(4) {
                    let lanes = 4.min(rest.end - t);
                    // Lanes past the run read whatever follows in `mm` (the next tiles', or the
                    // next channel's, products: unused); only the very last point of the last
                    // channel, at the end of `mm`, goes through a copy. (A copy for the batch's
                    // last tiles called memcpy, then stalled reading it back.)
                    let p: [F4; 16] = if readable(oc, t, 4) {
                        // SAFETY: every point's four floats from t lie inside mm (the last
                        // point's, checked, end furthest).
                        std::array::from_fn(|xi| unsafe { F4::load(at.add(xi * stride + t)) })
                    } else {
                        std::array::from_fn(|xi| {
                            let off = oc * nt + xi * stride + t;
                            let mut v = [0.0f32; 4];
                            v[..lanes].copy_from_slice(&mm[off..off + lanes]);
                            F4::from_array(v)
                        })
                    };
                    let outs = output_tiles(p, F4::splat(bias), self.relu).map(F4::to_array);
                    for l in 0..lanes {
                        let q = t + l - run.start;
                        for (k, o) in outs.iter().enumerate() {
                            // outs: row 0 columns 0 and 1, then row 1 columns 0 and 1.
                            let (yy, xx) = (y + k / 2, 2 * (tx0 + q) + k % 2);
                            if yy < oh && xx < ow {
                                // SAFETY: inside this channel's plane; callers split tiles or
                                // channels, so no other task writes it.
                                unsafe { out.write(plane + yy * ow + xx, o[l]) };
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Tiles `from..len` of a run's inner part (patches inside the map), `V::N` at a time, the last
/// group overlapping the one before where `V::N` does not divide what is left; returns where
/// it stopped: `len`, or `from` when there is nothing left or the part is under `V::N`. `r`
/// are the patches' four input rows from the part's first column; tile g goes to column
/// `t_base + g` of `vrows`. The same operations in the same order as `input_tile`, one tile
/// per lane (columns split into even and odd ones).
/// A loop, not closures: a closure LLVM does not inline would be compiled without AVX-512.
///
/// # Safety
/// Each of `r` holds 2 * `len` + 2 floats, each of `vrows` `t_base` + `len`; the CPU runs V's
/// width.
#[inline(always)]
unsafe fn input_tiles<V: Lanes>(r: &[&[f32]; 4], vrows: &mut [&mut [f32]; 16], from: usize, len: usize, t_base: usize) -> usize {
    let n = V::N;
    if from >= len || len < n {
        return from;
    }
    let mut next = from;
    while next < len {
        // The last group overlaps the one before where n does not divide the rest (tiles
        // transformed and written again, the same bits).
        let g = next.min(len - n);
        // d[i][j]: row i, column j of the n patches, one per lane.
        // SAFETY: the CPU runs this width (the contract above).
        let mut d = [[unsafe { V::splat(0.0) }; 4]; 4];
        for (i, di) in d.iter_mut().enumerate() {
            // SAFETY: loads end at 2g + 2n + 2 <= 2 * len + 2.
            let (a, b, a2, b2) = unsafe {
                let p = r[i].as_ptr().add(2 * g);
                (V::load(p), V::load(p.add(n)), V::load(p.add(2)), V::load(p.add(n + 2)))
            };
            *di = [V::even(a, b), V::odd(a, b), V::even(a2, b2), V::odd(a2, b2)];
        }
        // B^T d per column, then (B^T d) B per row.
        // SAFETY: as above.
        let mut bd = [[unsafe { V::splat(0.0) }; 4]; 4];
        for (j, bj) in bd.iter_mut().enumerate() {
            let c = [d[0][j], d[1][j], d[2][j], d[3][j]];
            *bj = [c[0].sub(c[2]), c[1].add(c[2]), c[2].sub(c[1]), c[1].sub(c[3])];
        }
        for i in 0..4 {
            let r = [bd[0][i], bd[1][i], bd[2][i], bd[3][i]];
            let v = [r[0].sub(r[2]), r[1].add(r[2]), r[2].sub(r[1]), r[1].sub(r[3])];
            for (k, val) in v.into_iter().enumerate() {
                // SAFETY: t_base + g + n <= t_base + len, inside each row of v.
                unsafe { val.store(vrows[i * 4 + k].as_mut_ptr().add(t_base + g)) };
            }
        }
        next = g + n;
    }
    len
}

/// Whole tiles `from..whole` of a run, `V::N` at a time, into its two output row segments,
/// the last group overlapping the one before where `V::N` does not divide what is left (tiles
/// written twice, with the same bits, a group possibly reaching back before `from`); returns
/// where it stopped: `whole`, or `from` when there is nothing left or the run is under
/// `V::N`. Point xi's product of the run's tile q is at `at + xi * stride + q`.
///
/// # Safety
/// `rows` (the second only where `two_rows`) are valid for writing 2 * `whole` floats each,
/// which nothing else touches meanwhile, `at + xi * stride` for reading `whole` floats
/// (xi < 16), and the CPU runs V's width.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn whole_tiles<V: Lanes>(at: *const f32, stride: usize, rows: [*mut f32; 2], two_rows: bool, from: usize, whole: usize, bias: f32, relu: bool) -> usize {
    // SAFETY: the CPU runs this width (the contract above).
    let (n, bias) = (V::N, unsafe { V::splat(bias) });
    if from >= whole || whole < n {
        return from;
    }
    let mut q = from;
    loop {
        // The last group overlaps the one before when n does not divide the rest.
        let g = q.min(whole - n);
        // SAFETY: g + n <= whole, inside each point's products.
        let [a0, a1, b0, b1] = output_tiles(std::array::from_fn(|xi| unsafe { V::load(at.add(xi * stride + g)) }), bias, relu);
        let ((a_lo, a_hi), (b_lo, b_hi)) = (V::zip(a0, a1), V::zip(b0, b1));
        // SAFETY: the 2n floats from 2g lie inside the segments (2g + 2n <= 2 * whole).
        unsafe {
            a_lo.store(rows[0].add(2 * g));
            a_hi.store(rows[0].add(2 * g + n));
            if two_rows {
                b_lo.store(rows[1].add(2 * g));
                b_hi.store(rows[1].add(2 * g + n));
            }
        }
        q = g + n;
        if q >= whole {
            return whole;
        }
    }
}

/// Whole tiles 0..whole (under `V::N`) of a run as one group of `V::N` lanes, only the first
/// 2 * `whole` floats of each output row written; the same arithmetic per lane as
/// `whole_tiles`, so the same bits.
///
/// # Safety
/// As `whole_tiles`, and `at + xi * stride` is valid for reading `V::N` floats (xi < 16).
#[inline(always)]
unsafe fn partial_tiles<V: Lanes>(at: *const f32, stride: usize, rows: [*mut f32; 2], two_rows: bool, whole: usize, bias: f32, relu: bool) {
    let n = V::N;
    debug_assert!(whole < n);
    // SAFETY: the CPU runs this width; every load lies inside the products (the contract).
    let [a0, a1, b0, b1] = output_tiles(std::array::from_fn(|xi| unsafe { V::load(at.add(xi * stride)) }), unsafe { V::splat(bias) }, relu);
    let ((a_lo, a_hi), (b_lo, b_hi)) = (V::zip(a0, a1), V::zip(b0, b1));
    let (lo, hi) = ((2 * whole).min(n), (2 * whole).saturating_sub(n));
    // SAFETY: 2 * whole floats from each row's start lie inside the segments.
    unsafe {
        a_lo.store_first(rows[0], lo);
        if hi > 0 {
            a_hi.store_first(rows[0].add(n), hi);
        }
        if two_rows {
            b_lo.store_first(rows[1], lo);
            if hi > 0 {
                b_hi.store_first(rows[1].add(n), hi);
            }
        }
    }
}

/// A^T M A for one lane's tile per lane, then bias and ReLU: row 0's two columns, then row
/// 1's. One tile at a time, gathered from 16 rows, was 7-8% of a SqueezeNet pass.
#[inline(always)]
fn output_tiles<V: Lanes>(p: [V; 16], bias: V, relu: bool) -> [V; 4] {
    let fin = |v: V| if relu { v.add(bias).relu() } else { v.add(bias) };
    let s0: [V; 4] = std::array::from_fn(|j| p[j].add(p[4 + j]).add(p[8 + j]));
    let s1: [V; 4] = std::array::from_fn(|j| p[4 + j].sub(p[8 + j]).sub(p[12 + j]));
    [
        fin(s0[0].add(s0[1]).add(s0[2])),
        fin(s0[1].sub(s0[2]).sub(s0[3])),
        fin(s1[0].add(s1[1]).add(s1[2])),
        fin(s1[1].sub(s1[2]).sub(s1[3])),
    ]
}

/// Tiles t0..t0+nt of a grid `tw` tiles wide, as runs within one tile row: (tile row, first
/// tile column, the run's tile indices relative to t0).
fn tile_rows(t0: usize, nt: usize, tw: usize) -> impl Iterator<Item = (usize, usize, std::ops::Range<usize>)> {
    let mut t = 0;
    std::iter::from_fn(move || {
        if t >= nt {
            return None;
        }
        let (ty, tx) = ((t0 + t) / tw, (t0 + t) % tw);
        let len = (tw - tx).min(nt - t);
        let run = t..t + len;
        t += len;
        Some((ty, tx, run))
    })
}

/// B^T d B for one 4x4 patch given by columns (`cols[j][i]` = d[i][j]), as v[xi], xi = i*4 + j.
#[inline(always)]
fn input_tile(cols: [[f32; 4]; 4]) -> [f32; 16] {
    // Rows: B^T d, per column.
    let bd: [[f32; 4]; 4] = std::array::from_fn(|j| {
        let d = cols[j];
        [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
    });
    // Columns: (B^T d) B.
    let mut v = [0.0f32; 16];
    for i in 0..4 {
        let r = [bd[0][i], bd[1][i], bd[2][i], bd[3][i]];
        v[i * 4] = r[0] - r[2];
        v[i * 4 + 1] = r[1] + r[2];
        v[i * 4 + 2] = r[2] - r[1];
        v[i * 4 + 3] = r[1] - r[3];
    }
    v
}

