//! Packed, cache-blocked GEMM (GotoBLAS loop order) with bias and ReLU fused into the store.
//! A (the weights) is packed once when a model loads; B is packed per call from any
//! `PackB` source, which is how convolution streams im2col columns without building them.

use super::simd::{micro_kernel_store, micro_kernel_store_cols, micro_kernel_store_rows, micro_kernel_store_rows_wide, wide_tiles, Store, MR, NR};
use crate::par;

/// Depth of one packed block: a KCxNR panel of B (16 KiB) stays in L1.
pub const KC: usize = 256;
/// Most row panels a block reads B in place for (`PackB::rows`); more, and packing pays.
const IN_PLACE_MAX_PANELS: usize = 12;
/// Width of one packed block: a KCxNC block of B (256 KiB) stays in L2.
pub const NC: usize = 256;

/// An MxK row-major matrix packed into MR-row panels, each laid out k-major ([k][MR]),
/// the last panel zero-padded.
#[derive(Clone, Debug)]
pub struct PackedA {
    pub m: usize,
    pub k: usize,
    data: Vec<f32>,
}

impl PackedA {
    /// Packs rows `row(i)` for i < m, each of length k.
    pub fn pack<'a>(m: usize, k: usize, row: impl Fn(usize) -> &'a [f32]) -> Self {
        let panels = m.div_ceil(MR);
        let mut data = vec![0.0; panels * k * MR];
        for i in 0..m {
            let (p, r) = (i / MR, i % MR);
            let src = row(i);
            let dst = &mut data[p * k * MR..(p + 1) * k * MR];
            for (kk, &v) in src.iter().enumerate().take(k) {
                dst[kk * MR + r] = v;
            }
        }
        PackedA { m, k, data }
    }

    pub fn from_row_major(m: usize, k: usize, a: &[f32]) -> Self {
        Self::pack(m, k, |i| &a[i * k..(i + 1) * k])
    }

    fn panel(&self, p: usize, k0: usize, kc: usize) -> &[f32] {
        let base = p * self.k * MR + k0 * MR;
        &self.data[base..base + kc * MR]
    }
}

/// Fills `out` with B[k0..k0+kc, n0..n0+nc] as NR-column panels ([panel][k][NR]), zero past n.
pub trait PackB: Sync {
    fn k(&self) -> usize;
    fn n(&self) -> usize;
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut [f32]);
    /// B as a row-major matrix in memory with its row length, when it is one: full panels are
    /// then read where they lie instead of copied (a 1x1 convolution's input, SqueezeNet's and
    /// the Inception branches' commonest layer).
    fn rows(&self) -> Option<(&[f32], usize)> {
        None
    }
}

/// A plain KxN row-major matrix (also a 1x1 convolution's input: [C, H*W]).
pub struct DenseB<'a> {
    pub k: usize,
    pub n: usize,
    pub data: &'a [f32],
}

impl PackB for DenseB<'_> {
    fn k(&self) -> usize {
        self.k
    }
    fn n(&self) -> usize {
        self.n
    }
    fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut [f32]) {
        for jp in 0..nc.div_ceil(NR) {
            let c0 = n0 + jp * NR;
            let w = NR.min(n0 + nc - c0);
            let panel = &mut out[jp * kc * NR..(jp + 1) * kc * NR];
            for (kk, dst) in panel.chunks_exact_mut(NR).take(kc).enumerate() {
                let src = &self.data[(k0 + kk) * self.n + c0..];
                if w == NR {
                    copy_panel_row(dst, src);
                } else {
                    dst[..w].copy_from_slice(&src[..w]);
                    dst[w..].fill(0.0);
                }
            }
        }
    }
    fn rows(&self) -> Option<(&[f32], usize)> {
        Some((self.data, self.n))
    }
}

/// dst = src[..NR] for a panel row of NR floats, as a copy of known size: a few vector moves,
/// where a slice copy of a length the compiler does not know called memcpy for every 16
/// floats (3-4% of a pass natively and as wasm).
#[inline(always)]
fn copy_panel_row(dst: &mut [f32], src: &[f32]) {
    let dst: &mut [f32; NR] = dst.try_into().expect("a panel row of NR floats");
    *dst = src[..NR].try_into().expect("NR floats");
}

/// How many pairs of column panels a block's `panels` go in, then how many triples, where
/// AVX-512 runs: pairs, and an odd count ends with a triple instead of a panel alone (a
/// one-panel tile feeds one FMA per broadcast of A: SqueezeNet's conv25, 11 panels, spent a
/// tenth of its time on its last 9 columns).
fn wide_groups(panels: usize) -> (usize, usize) {
    if panels % 2 == 1 && panels >= 3 {
        ((panels - 3) / 2, 1)
    } else {
        (panels / 2, 0)
    }
}

/// Asks for `data` to be brought into the cache ahead of its use: the next row panel of A,
/// read once per block, comes from L3 or memory (a 1000-row layer's weights are 2 MB).
#[inline(always)]
fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for i in (0..data.len()).step_by(16) {
        // SAFETY: a prefetch is a hint; the address lies inside `data`.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>(data.as_ptr().add(i) as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Asks for the first two cache lines of `rows` rows of C at `c` (stride `ldc`), the next
/// tile's, to be brought in for writing while this tile's FMAs run: a layer's output is
/// written once, to lines in no cache yet, and each store waited for its line (SqueezeNet's
/// conv0, 3 MB of output for K = 27 FMA steps a tile, 0.31 -> 0.26 ms). A hint: it touches
/// nothing, whatever the address.
#[inline(always)]
fn prefetch_for_write(c: *mut f32, rows: usize, ldc: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in 0..rows {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
        let line = c.wrapping_add(i * ldc) as *const i8;
        // SAFETY: a prefetch is a hint: it neither reads nor faults.
        unsafe {
            _mm_prefetch::<_MM_HINT_ET0>(line);
            _mm_prefetch::<_MM_HINT_ET0>(line.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (c, rows, ldc);
}

/// What to do with C after the product: bias per row, ReLU.
#[derive(Clone, Copy)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

/// Below this many multiply-adds a GEMM runs on the calling thread: a fork costs more.
const PAR_MIN_MACS: usize = 1 << 20;
/// Narrowest column block a task gets (B panels packed per task: narrower wastes packing).
const MIN_COLS_PER_TASK: usize = 64;

thread_local! {
    /// Each pool thread's B-packing buffer.
    static PACK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The calling thread's B packed once for every task of a row-split GEMM (`SharedB`).
    static SHARED_B: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// B packed once, before the tasks, for a GEMM split by rows: without it each row task packed
/// the same columns again (GoogLeNet's 5x5 convs on 7x7 maps, 8 tasks each repacking a
/// 1200x49 im2col, ran slower on two threads than on one). Block (column block j, depth block
/// kb) of column chunk c starts at `at[(c * col_blocks + j) * depth_blocks + kb]`, laid out as
/// `gemm_block` packs its scratch.
struct SharedB {
    data: *const f32,
    at: Vec<usize>,
    col_blocks: usize,
    depth_blocks: usize,
}

// Read-only once packed; the tasks that read it run while the caller holds the buffer.
unsafe impl Sync for SharedB {}

impl SharedB {
    /// Where column chunk `c`'s block (j, kb) lies.
    fn block(&self, c: usize, j: usize, kb: usize) -> *const f32 {
        // SAFETY: `at` holds offsets inside the packed buffer.
        unsafe { self.data.add(self.at[(c * self.col_blocks + j) * self.depth_blocks + kb]) }
    }
}

/// C[m, n] (row-major, row stride `ldc`) = A * B, then the epilogue. Spread over the kernel
/// pool (`par`) in blocks of columns, and of rows when there are few columns; each output is
/// summed in the same order whatever the split, so the result does not depend on it.
pub fn gemm(a: &PackedA, b: &dyn PackB, c: &mut [f32], ldc: usize, ep: Epilogue, scratch: &mut Vec<f32>) {
    // SAFETY: C is a live slice of the length given.
    unsafe { gemm_raw(a, b, c.as_mut_ptr(), c.len(), ldc, ep, scratch) }
}

/// As `gemm`, into C given as a pointer and length, which may be uninitialised: every element
/// of C's m rows x n columns is written before it is read (a later K block reads what the first
/// wrote), and no reference to C is made.
///
/// # Safety
/// `c` is valid for writes of `c_len` floats, and nothing else touches them meanwhile.
pub unsafe fn gemm_raw(a: &PackedA, b: &dyn PackB, c: *mut f32, c_len: usize, ldc: usize, ep: Epilogue, scratch: &mut Vec<f32>) {
    let (m, k, n) = (a.m, a.k, b.n());
    assert_eq!(b.k(), k, "GEMM inner dimensions differ");
    assert!(c_len >= (m.max(1) - 1) * ldc + n);
    let panels = m.div_ceil(MR);
    let threads = par::threads();
    let out = par::SharedMut::from_ptr(c);
    if threads == 1 || m * n * k < PAR_MIN_MACS {
        // SAFETY: one caller, the whole of C.
        unsafe { gemm_block(a, b, out, ldc, ep, 0..n, 0..panels, scratch, None) };
        return;
    }
    // Several tasks per thread, claimed as threads come free: a thread the OS preempts (the
    // page's own work shares the cores) then delays its one small block, not a third of the layer.
    let want = (4 * threads).min((m * n * k / (PAR_MIN_MACS / 4)).max(threads));
    let col_w = (n.div_ceil(want).div_ceil(NR) * NR).clamp(MIN_COLS_PER_TASK, NC);
    let cols = par::chunks(n, n.div_ceil(col_w), NR);
    // Few large tasks: as many as a whole number of rounds on the pool (9 equal tasks on two
    // threads kept one idle for the last: SqueezeNet's conv25, 3 column chunks x 3 row chunks,
    // 0.93x its time with 12). Not for many tasks (more row chunks would pack B apart from
    // the tasks: its conv0 1.35x) nor small ones (an extra task costs more than the idle
    // thread: its 13x13 squeezes, 0.5 M multiply-adds a task, 1.07x).
    let mut row_parts = want.div_ceil(cols.len()).min(panels);
    let worth_a_task = |parts: usize| m * n * k / (cols.len() * parts) >= PAR_MIN_MACS;
    while cols.len() * row_parts < 8 * threads && (cols.len() * row_parts) % threads != 0 && row_parts < panels && worth_a_task(row_parts + 1) {
        row_parts += 1;
    }
    let rows = par::chunks(panels, row_parts, 1);
    let rows_per_task = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if rows.len() > 1 && b_in_place(b, rows_per_task).is_none() {
        SHARED_B.with(|buf| {
            let mut buf = buf.borrow_mut();
            let shared = pack_shared(b, &cols, &mut buf);
            par::for_each(cols.len() * rows.len(), &|t| {
                let (c, rr) = (t % cols.len(), rows[t / cols.len()].clone());
                // SAFETY: tasks cover disjoint (row panel, column) blocks of C.
                unsafe { gemm_block(a, b, out, ldc, ep, cols[c].clone(), rr, &mut Vec::new(), Some((&shared, c))) }
            });
        });
        return;
    }
    par::for_each(cols.len() * rows.len(), &|t| {
        let (cr, rr) = (cols[t % cols.len()].clone(), rows[t / cols.len()].clone());
        PACK.with(|p| {
            // SAFETY: tasks cover disjoint (row panel, column) blocks of C.
            unsafe { gemm_block(a, b, out, ldc, ep, cr, rr, &mut p.borrow_mut(), None) }
        });
    });
}

/// Packs every (column block, depth block) of the column chunks `cols` into `buf`, the blocks
/// spread over the pool; each starts on a cache line, as `gemm_block`'s scratch does.
fn pack_shared(b: &dyn PackB, cols: &[std::ops::Range<usize>], buf: &mut Vec<f32>) -> SharedB {
    let k = b.k();
    let depth_blocks = k.max(1).div_ceil(KC);
    let col_blocks = cols.iter().map(|c| c.len().div_ceil(NC)).max().unwrap_or(0);
    // (column start, width, depth start, depth) of each block, and where it goes.
    let mut blocks = Vec::new();
    let mut at = vec![0; cols.len() * col_blocks * depth_blocks];
    let mut len = 0;
    for (c, cr) in cols.iter().enumerate() {
        for (j, n0) in cr.clone().step_by(NC).enumerate() {
            let nc = NC.min(cr.end - n0);
            for (kb, k0) in (0..k.max(1)).step_by(KC).enumerate() {
                let kc = KC.min(k - k0);
                at[(c * col_blocks + j) * depth_blocks + kb] = len;
                blocks.push((n0, nc, k0, kc, len));
                len += nc.div_ceil(NR) * NR * kc;
            }
        }
    }
    buf.resize(len + 16, 0.0);
    let line = buf.as_ptr().align_offset(64).min(15);
    at.iter_mut().for_each(|o| *o += line);
    let dst = par::SharedMut::new(&mut buf[line..]);
    par::for_each(blocks.len(), &|i| {
        let (n0, nc, k0, kc, off) = blocks[i];
        // SAFETY: the blocks' ranges are disjoint and inside the buffer.
        b.pack(k0, kc, n0, nc, unsafe { dst.slice(off, nc.div_ceil(NR) * NR * kc) });
    });
    SharedB { data: buf.as_ptr(), at, col_blocks, depth_blocks }
}

/// B where it lies, for a block of `panels` row panels that may read it in place (`PackB::rows`).
/// Only a few: each panel reads every B panel again, and a strided B row spans two cache lines
/// where a packed one spans one (SqueezeNet's 1000-way conv25, 167 panels, ran 4.8 ms packed
/// and 5.5 in place as wasm; its 16-channel squeezes gain).
fn b_in_place(b: &dyn PackB, panels: usize) -> Option<(&[f32], usize)> {
    if panels <= IN_PLACE_MAX_PANELS { b.rows() } else { None }
}

/// C's columns `cols` of row panels `panels`.
///
/// # Safety
/// No other thread may touch those elements of `out` meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block(
    a: &PackedA,
    b: &dyn PackB,
    c: par::SharedMut<f32>,
    ldc: usize,
    ep: Epilogue,
    cols: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    scratch: &mut Vec<f32>,
    shared: Option<(&SharedB, usize)>,
) {
    let (m, k) = (a.m, a.k);
    // Panels start on a cache line: the micro-kernel loads B 32 bytes at a time, and from a
    // buffer only 16-byte aligned every other load would straddle two lines.
    if shared.is_none() {
        scratch.resize(KC * NC.div_ceil(NR) * NR + 16, 0.0);
    }
    let line = scratch.as_ptr().align_offset(64).min(15).min(scratch.len());
    let scratch = &mut scratch[line..];
    let in_place = if shared.is_none() { b_in_place(b, panels.len()) } else { None };
    let mut acc = [0.0f32; MR * NR];
    for (j, n0) in cols.clone().step_by(NC).enumerate() {
        let nc = NC.min(cols.end - n0);
        // Panels read in place when B is a matrix in memory; the last, narrower one is packed.
        let full = if in_place.is_some() { nc / NR } else { 0 };
        for (kb, k0) in (0..k.max(1)).step_by(KC).enumerate() {
            let kc = KC.min(k - k0);
            let (first, last) = (k0 == 0, k0 + kc >= k);
            let packed: *const f32 = match shared {
                Some((sb, c)) => sb.block(c, j, kb),
                None => {
                    if full * NR < nc {
                        b.pack(k0, kc, n0 + full * NR, nc - full * NR, &mut scratch[full * kc * NR..]);
                    }
                    scratch.as_ptr()
                }
            };
            for p in panels.clone() {
                let ap = a.panel(p, k0, kc);
                let rows = MR.min(m - p * MR);
                let mut bias = [0.0f32; MR];
                if first {
                    if let Some(bv) = ep.bias {
                        let b = &bv[p * MR..p * MR + rows];
                        // A whole panel's as an array copy of known size: a slice copy called
                        // memcpy, and reading the result back stalled on store forwarding (a
                        // fifth of this function's time in a SqueezeNet pass).
                        match <&[f32; MR]>::try_from(b) {
                            Ok(whole) => bias = *whole,
                            Err(_) => bias[..rows].copy_from_slice(b),
                        }
                    }
                }
                let st = Store { bias, accumulate: !first, relu: last && ep.relu };
                let panel = |jp: usize| match in_place {
                    Some((data, ld)) if jp < full => (data[k0 * ld + n0 + jp * NR..].as_ptr(), ld),
                    // SAFETY: panel jp of this block, packed above or before the tasks.
                    _ => (unsafe { packed.add(jp * kc * NR) }, NR),
                };
                // Where AVX-512 runs, panels go two or three at a time (the last may be the
                // block's last, narrower one; `wide_groups`); elsewhere one at a time.
                let (pairs, triples) = if wide_tiles() { wide_groups(nc.div_ceil(NR)) } else { (0, 0) };
                let singles_from = 2 * pairs + 3 * triples;
                // The next row panel's A, a slice before each tile: all at once, its misses
                // filled the miss buffers and stalled the tile after.
                let calls = pairs + triples + nc.div_ceil(NR) - singles_from;
                let next = if p + 1 < panels.end { a.panel(p + 1, k0, kc) } else { &[] };
                let mut ahead = next.chunks(next.len().div_ceil(calls).next_multiple_of(16).max(16));
                for jp in (0..pairs).map(|q| 2 * q) {
                    prefetch(ahead.next().unwrap_or(&[]));
                    let ((b0, ld0), (b1, ld1)) = (panel(jp), panel(jp + 1));
                    let cols1 = NR.min(nc - (jp + 1) * NR);
                    if jp + 2 < nc.div_ceil(NR) {
                        // SAFETY: column (jp + 2) * NR < nc of this row panel lies inside C.
                        prefetch_for_write(unsafe { c.ptr(p * MR * ldc + n0 + (jp + 2) * NR) }, rows, ldc);
                    }
                    // SAFETY: as the single panel's call below, for two panels side by side.
                    unsafe { micro_kernel_store_rows_wide::<2>(rows, kc, ap.as_ptr(), [b0, b1], [ld0, ld1], cols1, c.ptr(p * MR * ldc + n0 + jp * NR), ldc, st) };
                }
                for jp in (0..triples).map(|q| 2 * pairs + 3 * q) {
                    prefetch(ahead.next().unwrap_or(&[]));
                    let ((b0, ld0), (b1, ld1), (b2, ld2)) = (panel(jp), panel(jp + 1), panel(jp + 2));
                    let cols2 = NR.min(nc - (jp + 2) * NR);
                    // SAFETY: as the single panel's call below, for three panels side by side.
                    unsafe { micro_kernel_store_rows_wide::<3>(rows, kc, ap.as_ptr(), [b0, b1, b2], [ld0, ld1, ld2], cols2, c.ptr(p * MR * ldc + n0 + jp * NR), ldc, st) };
                }
                for jp in singles_from..nc.div_ceil(NR) {
                    prefetch(ahead.next().unwrap_or(&[]));
                    let col0 = n0 + jp * NR;
                    let ncols = NR.min(cols.end - col0);
                    let (bp, ldb) = panel(jp);
                    if ncols == NR {
                        // SAFETY: `bp` holds kc rows of NR at stride ldb (a full panel in place, or
                        // a packed one); the tile lies in C's rows p*MR..p*MR+rows and columns
                        // `cols`, which this block alone writes.
                        unsafe { micro_kernel_store_rows(rows, kc, ap.as_ptr(), bp, ldb, c.ptr(p * MR * ldc + col0), ldc, st) };
                        continue;
                    }
                    if wide_tiles() {
                        // SAFETY: as above; only the tile's `ncols` columns of C are touched.
                        unsafe { micro_kernel_store_cols(rows, ncols, kc, ap.as_ptr(), bp, ldb, c.ptr(p * MR * ldc + col0), ldc, st) };
                        continue;
                    }
                    // SAFETY: as above, into the tile buffer.
                    unsafe { micro_kernel_store(kc, ap.as_ptr(), bp, ldb, acc.as_mut_ptr(), NR, Store::SUMS) };
                    for i in 0..rows {
                        // Through the pointer: C may not be initialised yet on the first block.
                        let dst = c.ptr((p * MR + i) * ldc + col0);
                        for (j, &s) in acc[i * NR..i * NR + ncols].iter().enumerate() {
                            // SAFETY: inside C's tile; read only on a later K block, once written.
                            unsafe { st.write(i, dst.add(j), s) };
                        }
                    }
                }
            }
        }
    }
}
