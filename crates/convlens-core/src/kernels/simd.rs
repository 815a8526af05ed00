//! The SIMD inner loops everything fast is built on: the MRxNR GEMM micro-kernel and a dot
//! product, each for x86-64 AVX2+FMA (picked at run time), wasm simd128 (picked at build
//! time with `+simd128`), and portable code for anything else.

/// Rows of A per micro-kernel call, and columns of B: 6x16 natively (12 AVX accumulators). On
/// wasm 2x16: V8 keeps one of x86's 16 vector registers for itself, so 6x8 (12 accumulators,
/// 2 B vectors, 1 splat) spilled in the inner loop; 2x16 (8 accumulators, 4 B vectors) does
/// not, and ran GoogLeNet in 81 ms instead of 120 under V8 (docs/BENCHMARKS.md).
#[cfg(target_arch = "wasm32")]
pub const MR: usize = 2;
#[cfg(not(target_arch = "wasm32"))]
pub const MR: usize = 6;
pub const NR: usize = 16;

/// `f::<R>(args)` for the tile's row count R = `rows` (1..=6, as MR is natively): each row
/// count is its own kernel, so its accumulators stay in registers.
#[cfg(target_arch = "x86_64")]
macro_rules! by_rows {
    ($rows:expr, $($f:ident)::+ $(<$p:ident>)? ($($arg:expr),*)) => {
        match $rows {
            6 => $($f)::+::<6 $(, $p)?>($($arg),*),
            5 => $($f)::+::<5 $(, $p)?>($($arg),*),
            4 => $($f)::+::<4 $(, $p)?>($($arg),*),
            3 => $($f)::+::<3 $(, $p)?>($($arg),*),
            2 => $($f)::+::<2 $(, $p)?>($($arg),*),
            _ => $($f)::+::<1 $(, $p)?>($($arg),*),
        }
    };
}

/// acc[i*NR + j] = sum_k a[k*MR + i] * b[k*NR + j] over k < kc (panels as `gemm` packs them).
#[inline]
pub fn micro_kernel(kc: usize, a: &[f32], b: &[f32], acc: &mut [f32; MR * NR]) {
    assert!(a.len() >= kc * MR && b.len() >= kc * NR);
    // SAFETY: lengths checked above; `acc` holds MR rows of NR.
    unsafe { micro_kernel_store(kc, a.as_ptr(), b.as_ptr(), NR, acc.as_mut_ptr(), NR, Store::SUMS) }
}

/// What a micro-kernel's MRxNR tile of sums becomes in C: the sums plus `bias[i]` per row, or
/// (`accumulate`, a later K block) C plus the sums; then max(0, .) when `relu`. The same
/// additions in the same order as summing into a buffer first and adding after, so results do
/// not depend on which of the two a tile took.
#[derive(Clone, Copy)]
pub struct Store {
    pub bias: [f32; MR],
    pub accumulate: bool,
    pub relu: bool,
}

impl Store {
    /// The sums as they are.
    pub const SUMS: Store = Store { bias: [0.0; MR], accumulate: false, relu: false };

    /// The rule above for one sum of row `i`, in scalar code (the SIMD kernels apply it to
    /// whole vectors in registers).
    ///
    /// # Safety
    /// `dst` is valid for writes, and for reads when `accumulate`.
    #[inline(always)]
    pub unsafe fn write(&self, i: usize, dst: *mut f32, sum: f32) {
        let v = if self.accumulate { *dst + sum } else { sum + self.bias[i] };
        *dst = if self.relu { fmax(v, 0.0) } else { v };
    }
}

/// C[i*ldc + j] (i < MR, j < NR) from sum_k a[k*MR + i] * b[k*ldb + j] over k < kc: written
/// straight into the output (no round trip through a buffer), and B read in place when it is
/// a row-major matrix already (`ldb` its row length; a packed panel has `ldb` = NR).
///
/// # Safety
/// `a` holds kc*MR floats, `b` kc rows of NR at stride `ldb`, `c` MR rows of NR at stride
/// `ldc`, and nothing else touches that tile of C meanwhile.
#[inline]
pub unsafe fn micro_kernel_store(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, st: Store) {
    micro_kernel_store_rows(MR, kc, a, b, ldb, c, ldc, st)
}

/// As `micro_kernel_store` for the first `rows` (1..=MR) rows of the panel only: C's other rows
/// are neither computed nor touched. A layer's last row panel when MR does not divide its
/// output channels (16, 32, 64 with MR = 6) then costs its real rows, stored as whole
/// vectors, instead of MR rows through a buffer and scalar stores.
///
/// Always inlined: as wasm, where LLVM left it out of line once a change elsewhere in the
/// crate tipped its inlining budget, V8 ran every convolution 15-20% slower (GoogLeNet 44 ->
/// 51 ms under Node; twice, after changes to LRN and to max pool, each time taken for V8's
/// own doing until `wasm-objdump` showed this function out of line).
///
/// # Safety
/// As `micro_kernel_store`, with `c` holding `rows` rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn micro_kernel_store_rows(rows: usize, kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, st: Store) {
    assert!((1..=MR).contains(&rows));
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            micro_kernel_store_cols(rows, NR, kc, a, b, ldb, c, ldc, st);
            return;
        }
        if has_avx2_fma() {
            micro_kernel_store_rows_avx2(rows, kc, a, b, ldb, c, ldc, st);
            return;
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // A packed panel's stride as a constant: V8 then addresses B with fixed offsets from
        // one pointer (conv25 4.8 ms against 5.1 with the stride in a register).
        match (ldb == NR, rows == MR) {
            (true, true) => wasm::micro_kernel_simd128::<NR, MR>(kc, a, b, NR, c, ldc, &st),
            (false, true) => wasm::micro_kernel_simd128::<0, MR>(kc, a, b, ldb, c, ldc, &st),
            (true, false) => wasm::micro_kernel_simd128::<NR, 1>(kc, a, b, NR, c, ldc, &st),
            (false, false) => wasm::micro_kernel_simd128::<0, 1>(kc, a, b, ldb, c, ldc, &st),
        }
        return;
    }
    #[allow(unreachable_code)]
    {
        let a = std::slice::from_raw_parts(a, kc * MR);
        let mut sums = [0.0f32; MR * NR];
        for k in 0..kc {
            let bk = std::slice::from_raw_parts(b.add(k * ldb), NR);
            micro_kernel_step(&a[k * MR..k * MR + MR], bk, &mut sums);
        }
        for i in 0..rows {
            for (j, &s) in sums[i * NR..i * NR + NR].iter().enumerate() {
                st.write(i, c.add(i * ldc + j), s);
            }
        }
    }
}

/// The AVX2 kernel whatever else the CPU has: the one-panel tile the AVX-512 tiles must equal
/// bit for bit (tests), and the tile on CPUs without AVX-512.
///
/// # Safety
/// As `micro_kernel_store_rows`; the CPU has AVX2 and FMA (`has_avx2_fma`).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn micro_kernel_store_rows_avx2(rows: usize, kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, st: Store) {
    assert!((1..=MR).contains(&rows) && has_avx2_fma());
    by_rows!(rows, x86::micro_kernel_avx2(kc, a, b, ldb, c, ldc, &st))
}

/// One panel's first `cols` (1..=NR) columns, straight into C with masked loads and stores:
/// a layer's last, narrower panel without the round trip through a buffer and scalar stores.
/// B's panel is read whole (packed panels are NR wide). Only where `wide_tiles()`.
///
/// # Safety
/// As `micro_kernel_store_rows`, with C's tile `rows` x `cols`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn micro_kernel_store_cols(rows: usize, cols: usize, kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, st: Store) {
    assert!((1..=MR).contains(&rows) && (1..=NR).contains(&cols) && wide_tiles());
    #[cfg(target_arch = "x86_64")]
    {
        let mask = column_mask(cols);
        by_rows!(rows, x86::micro_kernel_avx512(kc, a, b, ldb, c, ldc, &st, mask))
    }
    // Elsewhere `wide_tiles()` is false and the assert above has already failed.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (kc, a, b, ldb, c, ldc, st);
}

/// Whether `micro_kernel_store_rows_x2` runs here (x86-64 with AVX-512F): then a tile two
/// panels wide is one call.
#[inline]
pub fn wide_tiles() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx512()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// P neighbouring column panels at once (2 or 3; B's panels at `b[h]`, strides `ldb[h]`; C's
/// tile `rows` x ((P-1)*NR + `cols_last`) at `c`: the last panel may be a layer's last,
/// narrower one, packed NR wide, of which only `cols_last` columns are stored): P times the
/// accumulators, so AVX-512's FMAs are not waiting on each other, and one broadcast of A feeds
/// P of them. Every sum is the AVX2 kernel's: the same fused multiply-adds over k in the same
/// order, the same store rule, so a GEMM is bit for bit the same on either. Only where
/// `wide_tiles()`.
///
/// # Safety
/// As `micro_kernel_store_rows` for each of the P panels.
#[inline]
#[allow(clippy::too_many_arguments)]
pub unsafe fn micro_kernel_store_rows_wide<const P: usize>(rows: usize, kc: usize, a: *const f32, b: [*const f32; P], ldb: [usize; P], cols_last: usize, c: *mut f32, ldc: usize, st: Store) {
    assert!((1..=MR).contains(&rows) && (1..=NR).contains(&cols_last) && (2..=3).contains(&P) && wide_tiles());
    #[cfg(target_arch = "x86_64")]
    {
        let mask = std::array::from_fn(|h| if h + 1 == P { column_mask(cols_last) } else { u16::MAX });
        by_rows!(rows, x86::micro_kernel_avx512_wide<P>(kc, a, b, ldb, c, ldc, &st, mask))
    }
    // Elsewhere `wide_tiles()` is false and the assert above has already failed.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (kc, a, b, ldb, c, ldc, st);
}

/// The first `cols` (0..=16) lanes of a zmm register.
#[cfg(target_arch = "x86_64")]
fn column_mask(cols: usize) -> u16 {
    if cols >= 16 {
        u16::MAX
    } else {
        (1u16 << cols) - 1
    }
}

#[inline(always)]
fn micro_kernel_step(ak: &[f32], bk: &[f32], sums: &mut [f32; MR * NR]) {
    for i in 0..MR {
        for j in 0..NR {
            sums[i * NR + j] += ak[i] * bk[j];
        }
    }
}

pub fn micro_kernel_portable(kc: usize, a: &[f32], b: &[f32], acc: &mut [f32; MR * NR]) {
    let mut sums = [0.0f32; MR * NR];
    for k in 0..kc {
        micro_kernel_step(&a[k * MR..k * MR + MR], &b[k * NR..k * NR + NR], &mut sums);
    }
    *acc = sums;
}

/// Four f32 lanes for the loops around the GEMM (Winograd's transforms) that the
/// compiler leaves scalar: SSE (every x86-64 has it), wasm simd128, or plain arrays. Each
/// operation is the scalar one per lane, so results are bit for bit the scalar code's.
#[derive(Clone, Copy)]
pub struct F4(F4Inner);

#[cfg(target_arch = "x86_64")]
type F4Inner = core::arch::x86_64::__m128;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
type F4Inner = core::arch::wasm32::v128;
#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
type F4Inner = [f32; 4];

#[cfg(target_arch = "x86_64")]
impl F4 {
    #[inline(always)]
    pub fn splat(v: f32) -> F4 {
        // SAFETY: SSE is part of x86-64.
        F4(unsafe { core::arch::x86_64::_mm_set1_ps(v) })
    }
    /// # Safety
    /// `p` is valid for reading four floats.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F4 {
        F4(core::arch::x86_64::_mm_loadu_ps(p))
    }
    /// # Safety
    /// `p` is valid for writing four floats.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f32) {
        core::arch::x86_64::_mm_storeu_ps(p, self.0)
    }
    #[inline(always)]
    pub fn add(self, o: F4) -> F4 {
        // SAFETY: SSE is part of x86-64.
        F4(unsafe { core::arch::x86_64::_mm_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    pub fn sub(self, o: F4) -> F4 {
        // SAFETY: SSE is part of x86-64.
        F4(unsafe { core::arch::x86_64::_mm_sub_ps(self.0, o.0) })
    }
    /// `fmax(self, o)` per lane (MAXPS returns its second operand unless the first is greater).
    #[inline(always)]
    pub fn max(self, o: F4) -> F4 {
        // SAFETY: SSE is part of x86-64.
        F4(unsafe { core::arch::x86_64::_mm_max_ps(self.0, o.0) })
    }
    /// `fmax(v, 0)` per lane (MAXPS returns its second operand unless the first is greater).
    #[inline(always)]
    pub fn relu(self) -> F4 {
        // SAFETY: SSE is part of x86-64.
        F4(unsafe { core::arch::x86_64::_mm_max_ps(self.0, core::arch::x86_64::_mm_setzero_ps()) })
    }
    /// [a0, a2, b0, b2].
    #[inline(always)]
    pub fn even(a: F4, b: F4) -> F4 {
        // SAFETY: SSE is part of x86-64.
        F4(unsafe { core::arch::x86_64::_mm_shuffle_ps::<0b10_00_10_00>(a.0, b.0) })
    }
    /// [a1, a3, b1, b3].
    #[inline(always)]
    pub fn odd(a: F4, b: F4) -> F4 {
        // SAFETY: SSE is part of x86-64.
        F4(unsafe { core::arch::x86_64::_mm_shuffle_ps::<0b11_01_11_01>(a.0, b.0) })
    }
    /// [a0, b0, a1, b1] and [a2, b2, a3, b3].
    #[inline(always)]
    pub fn zip(a: F4, b: F4) -> (F4, F4) {
        use core::arch::x86_64::{_mm_unpackhi_ps, _mm_unpacklo_ps};
        // SAFETY: SSE is part of x86-64.
        unsafe { (F4(_mm_unpacklo_ps(a.0, b.0)), F4(_mm_unpackhi_ps(a.0, b.0))) }
    }
    /// [a1, a2, a3, b0].
    #[inline(always)]
    pub fn shift1(a: F4, b: F4) -> F4 {
        use core::arch::x86_64::_mm_shuffle_ps;
        // SAFETY: SSE is part of x86-64.
        unsafe {
            let t = _mm_shuffle_ps::<0b00_00_11_11>(a.0, b.0); // [a3, a3, b0, b0]
            F4(_mm_shuffle_ps::<0b10_00_10_01>(a.0, t)) // [a1, a2, t0, t2]
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl F4 {
    #[inline(always)]
    pub fn splat(v: f32) -> F4 {
        F4(core::arch::wasm32::f32x4_splat(v))
    }
    /// # Safety
    /// `p` is valid for reading four floats.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F4 {
        F4(core::arch::wasm32::v128_load(p as *const core::arch::wasm32::v128))
    }
    /// # Safety
    /// `p` is valid for writing four floats.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f32) {
        core::arch::wasm32::v128_store(p as *mut core::arch::wasm32::v128, self.0)
    }
    #[inline(always)]
    pub fn add(self, o: F4) -> F4 {
        F4(core::arch::wasm32::f32x4_add(self.0, o.0))
    }
    #[inline(always)]
    pub fn sub(self, o: F4) -> F4 {
        F4(core::arch::wasm32::f32x4_sub(self.0, o.0))
    }
    /// `fmax(self, o)` per lane: PMAX(o, self) is `o < self ? self : o`, the same select.
    #[inline(always)]
    pub fn max(self, o: F4) -> F4 {
        F4(core::arch::wasm32::f32x4_pmax(o.0, self.0))
    }
    /// `fmax(v, 0)` per lane: pmax(0, v) is `0 < v ? v : 0`.
    #[inline(always)]
    pub fn relu(self) -> F4 {
        F4(core::arch::wasm32::f32x4_pmax(core::arch::wasm32::f32x4_splat(0.0), self.0))
    }
    /// [a0, a2, b0, b2].
    #[inline(always)]
    pub fn even(a: F4, b: F4) -> F4 {
        F4(core::arch::wasm32::i32x4_shuffle::<0, 2, 4, 6>(a.0, b.0))
    }
    /// [a1, a3, b1, b3].
    #[inline(always)]
    pub fn odd(a: F4, b: F4) -> F4 {
        F4(core::arch::wasm32::i32x4_shuffle::<1, 3, 5, 7>(a.0, b.0))
    }
    /// [a0, b0, a1, b1] and [a2, b2, a3, b3].
    #[inline(always)]
    pub fn zip(a: F4, b: F4) -> (F4, F4) {
        use core::arch::wasm32::i32x4_shuffle;
        (F4(i32x4_shuffle::<0, 4, 1, 5>(a.0, b.0)), F4(i32x4_shuffle::<2, 6, 3, 7>(a.0, b.0)))
    }
    /// [a1, a2, a3, b0].
    #[inline(always)]
    pub fn shift1(a: F4, b: F4) -> F4 {
        F4(core::arch::wasm32::i32x4_shuffle::<1, 2, 3, 4>(a.0, b.0))
    }
}

#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
impl F4 {
    #[inline(always)]
    pub fn splat(v: f32) -> F4 {
        F4([v; 4])
    }
    /// # Safety
    /// `p` is valid for reading four floats.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F4 {
        F4(std::ptr::read_unaligned(p as *const [f32; 4]))
    }
    /// # Safety
    /// `p` is valid for writing four floats.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f32) {
        std::ptr::write_unaligned(p as *mut [f32; 4], self.0)
    }
    #[inline(always)]
    pub fn add(self, o: F4) -> F4 {
        F4(std::array::from_fn(|i| self.0[i] + o.0[i]))
    }
    #[inline(always)]
    pub fn sub(self, o: F4) -> F4 {
        F4(std::array::from_fn(|i| self.0[i] - o.0[i]))
    }
    #[inline(always)]
    pub fn max(self, o: F4) -> F4 {
        F4(std::array::from_fn(|i| fmax(self.0[i], o.0[i])))
    }
    #[inline(always)]
    pub fn relu(self) -> F4 {
        F4(self.0.map(|v| fmax(v, 0.0)))
    }
    #[inline(always)]
    pub fn even(a: F4, b: F4) -> F4 {
        F4([a.0[0], a.0[2], b.0[0], b.0[2]])
    }
    #[inline(always)]
    pub fn odd(a: F4, b: F4) -> F4 {
        F4([a.0[1], a.0[3], b.0[1], b.0[3]])
    }
    #[inline(always)]
    pub fn zip(a: F4, b: F4) -> (F4, F4) {
        let (a, b) = (a.0, b.0);
        (F4([a[0], b[0], a[1], b[1]]), F4([a[2], b[2], a[3], b[3]]))
    }
    #[inline(always)]
    pub fn shift1(a: F4, b: F4) -> F4 {
        F4([a.0[1], a.0[2], a.0[3], b.0[0]])
    }
}

impl F4 {
    #[inline(always)]
    pub fn from_array(v: [f32; 4]) -> F4 {
        // SAFETY: `v` holds four floats.
        unsafe { F4::load(v.as_ptr()) }
    }
    /// The lanes as an array (tests, tails).
    pub fn to_array(self) -> [f32; 4] {
        let mut out = [0.0; 4];
        // SAFETY: `out` holds four floats.
        unsafe { self.store(out.as_mut_ptr()) };
        out
    }
}

/// A vector of f32 lanes for the loops around the GEMM, so one body serves every width: `F4`
/// everywhere, `F8` (AVX2) and `F16` (AVX-512) on x86-64 CPUs that have them. Each operation is the scalar one
/// per lane, so every width gives the scalar code's bits. A value is made only by `splat` or
/// `load`, both unsafe with the promise that the CPU runs this width, so the operations on a
/// value that exists are safe.
pub trait Lanes: Copy {
    const N: usize;
    /// # Safety
    /// The CPU runs this width (`F16`: AVX-512F; `F8`: AVX2; `F4`: always).
    unsafe fn splat(v: f32) -> Self;
    /// # Safety
    /// `p` is valid for reading N floats, and the CPU runs this width.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` is valid for writing N floats.
    unsafe fn store(self, p: *mut f32);
    /// The first `n` lanes (n <= N) to `p`, nothing past them.
    ///
    /// # Safety
    /// `p` is valid for writing n floats.
    unsafe fn store_first(self, p: *mut f32, n: usize);
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    /// `fmax(self, o)` per lane.
    fn max(self, o: Self) -> Self;
    /// `fmax(v, 0)` per lane.
    fn relu(self) -> Self;
    /// The even lanes of `a`, then those of `b`.
    fn even(a: Self, b: Self) -> Self;
    /// The odd lanes of `a`, then those of `b`.
    fn odd(a: Self, b: Self) -> Self;
    /// [a0, b0, a1, b1, ...]: the first half of the lanes interleaved, then the second.
    fn zip(a: Self, b: Self) -> (Self, Self);
    /// [a1, a2, ..., a(N-1), b0]: `a` and `b` side by side, one lane on.
    fn shift1(a: Self, b: Self) -> Self;
}

impl Lanes for F4 {
    const N: usize = 4;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        F4::splat(v)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        F4::load(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        F4::store(self, p)
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        for (i, v) in self.to_array().into_iter().take(n).enumerate() {
            // SAFETY: i < n, which the caller says p holds.
            unsafe { *p.add(i) = v };
        }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        F4::add(self, o)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        F4::sub(self, o)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        F4::max(self, o)
    }
    #[inline(always)]
    fn relu(self) -> Self {
        F4::relu(self)
    }
    #[inline(always)]
    fn even(a: Self, b: Self) -> Self {
        F4::even(a, b)
    }
    #[inline(always)]
    fn odd(a: Self, b: Self) -> Self {
        F4::odd(a, b)
    }
    #[inline(always)]
    fn zip(a: Self, b: Self) -> (Self, Self) {
        F4::zip(a, b)
    }
    #[inline(always)]
    fn shift1(a: Self, b: Self) -> Self {
        F4::shift1(a, b)
    }
}

/// Sixteen f32 lanes in a zmm register, made only through `Lanes::splat` and `Lanes::load`
/// (unsafe: the CPU must have AVX-512F). Meant for code compiled with AVX-512F enabled (a
/// `#[target_feature]` function that `has_avx512()` guards), where its operations inline.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct F16(core::arch::x86_64::__m512);

#[cfg(target_arch = "x86_64")]
impl F16 {
    /// `a` and `b` as one 32-lane table, lanes picked by `idx`.
    #[inline(always)]
    fn pick(a: F16, b: F16, idx: &[i32; 16]) -> F16 {
        use core::arch::x86_64::*;
        // SAFETY: a value exists, so the CPU has AVX-512F (`Lanes`); `idx` is 16 i32s.
        F16(unsafe { _mm512_permutex2var_ps(a.0, _mm512_loadu_si512(idx.as_ptr() as *const _), b.0) })
    }
    const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
    const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
    const ZIP_LO: [i32; 16] = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
    const ZIP_HI: [i32; 16] = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];
}

#[cfg(target_arch = "x86_64")]
impl Lanes for F16 {
    const N: usize = 16;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        F16(core::arch::x86_64::_mm512_set1_ps(v))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        F16(core::arch::x86_64::_mm512_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        core::arch::x86_64::_mm512_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        // A masked store: lanes past n are neither written nor faulted on.
        core::arch::x86_64::_mm512_mask_storeu_ps(p, column_mask(n), self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: a value exists, so the CPU has AVX-512F (`Lanes`).
        F16(unsafe { core::arch::x86_64::_mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: a value exists, so the CPU has AVX-512F (`Lanes`).
        F16(unsafe { core::arch::x86_64::_mm512_sub_ps(self.0, o.0) })
    }
    /// VMAXPS, like MAXPS, returns its second operand unless the first is greater.
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        // SAFETY: a value exists, so the CPU has AVX-512F (`Lanes`).
        F16(unsafe { core::arch::x86_64::_mm512_max_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn relu(self) -> Self {
        // SAFETY: `self` exists, so the CPU has AVX-512F.
        self.max(unsafe { F16::splat(0.0) })
    }
    #[inline(always)]
    fn even(a: Self, b: Self) -> Self {
        F16::pick(a, b, &F16::EVEN)
    }
    #[inline(always)]
    fn odd(a: Self, b: Self) -> Self {
        F16::pick(a, b, &F16::ODD)
    }
    #[inline(always)]
    fn zip(a: Self, b: Self) -> (Self, Self) {
        (F16::pick(a, b, &F16::ZIP_LO), F16::pick(a, b, &F16::ZIP_HI))
    }
    #[inline(always)]
    fn shift1(a: Self, b: Self) -> Self {
        use core::arch::x86_64::*;
        // SAFETY: a value exists, so the CPU has AVX-512F (`Lanes`).
        F16(unsafe { _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(_mm512_castps_si512(b.0), _mm512_castps_si512(a.0))) })
    }
}

/// Eight f32 lanes in a ymm register (AVX2), made only through `Lanes::splat` and
/// `Lanes::load` (unsafe: the CPU must have AVX2). The loops around the GEMM on CPUs with AVX2
/// and no AVX-512 (Zen 1-3, most laptops), which otherwise ran them four lanes wide. Meant for
/// code compiled with AVX2 enabled (a `#[target_feature]` function that `has_avx2_fma()`
/// guards), where its operations inline.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct F8(core::arch::x86_64::__m256);

#[cfg(target_arch = "x86_64")]
impl F8 {
    /// The 128-bit halves of `a` and `b` picked by `SEL` (`_mm256_permute2f128_ps`).
    #[inline(always)]
    fn halves<const SEL: i32>(a: F8, b: F8) -> F8 {
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        F8(unsafe { core::arch::x86_64::_mm256_permute2f128_ps::<SEL>(a.0, b.0) })
    }
    /// Lanes 0, 2, 1, 3 of `v` in 64-bit pairs: the middle pairs swapped, which turns the
    /// in-half results of `shuffle_ps` into the whole register's order.
    #[inline(always)]
    fn middle_swapped(v: F8) -> F8 {
        use core::arch::x86_64::*;
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        F8(unsafe { _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v.0))) })
    }
}

#[cfg(target_arch = "x86_64")]
impl Lanes for F8 {
    const N: usize = 8;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        F8(core::arch::x86_64::_mm256_set1_ps(v))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        F8(core::arch::x86_64::_mm256_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        core::arch::x86_64::_mm256_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        use core::arch::x86_64::*;
        // VMASKMOVPS: lanes whose mask is clear are neither written nor faulted on. The mask
        // is eight of [-1 x 8, 0 x 8] starting at 8 - n.
        const ONES_THEN_ZEROS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        let mask = _mm256_loadu_si256(ONES_THEN_ZEROS.as_ptr().add(8 - n.min(8)) as *const __m256i);
        _mm256_maskstore_ps(p, mask, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        F8(unsafe { core::arch::x86_64::_mm256_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        F8(unsafe { core::arch::x86_64::_mm256_sub_ps(self.0, o.0) })
    }
    /// VMAXPS returns its second operand unless the first is greater: `fmax`'s pick.
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        F8(unsafe { core::arch::x86_64::_mm256_max_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn relu(self) -> Self {
        // SAFETY: `self` exists, so the CPU has AVX2.
        self.max(unsafe { F8::splat(0.0) })
    }
    #[inline(always)]
    fn even(a: Self, b: Self) -> Self {
        // In each half [a0 a2 b0 b2 | a4 a6 b4 b6], then the middle pairs swapped.
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        F8::middle_swapped(F8(unsafe { core::arch::x86_64::_mm256_shuffle_ps::<0b10_00_10_00>(a.0, b.0) }))
    }
    #[inline(always)]
    fn odd(a: Self, b: Self) -> Self {
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        F8::middle_swapped(F8(unsafe { core::arch::x86_64::_mm256_shuffle_ps::<0b11_01_11_01>(a.0, b.0) }))
    }
    #[inline(always)]
    fn zip(a: Self, b: Self) -> (Self, Self) {
        use core::arch::x86_64::*;
        // In each half: [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7].
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        let (lo, hi) = unsafe { (F8(_mm256_unpacklo_ps(a.0, b.0)), F8(_mm256_unpackhi_ps(a.0, b.0))) };
        (F8::halves::<0x20>(lo, hi), F8::halves::<0x31>(lo, hi))
    }
    #[inline(always)]
    fn shift1(a: Self, b: Self) -> Self {
        use core::arch::x86_64::*;
        // [a4..a7 b0..b3], then each half of (that : a) one lane on: [a1 a2 a3 a4 | a5 a6 a7 b0].
        let mid = F8::halves::<0x21>(a, b);
        // SAFETY: a value exists, so the CPU has AVX2 (`Lanes`).
        F8(unsafe { _mm256_castsi256_ps(_mm256_alignr_epi8::<4>(_mm256_castps_si256(mid.0), _mm256_castps_si256(a.0))) })
    }
}

/// Sum of `a` with eight partial sums (vectorised by the compiler): the order differs from a
/// left-to-right sum, within float rounding.
#[inline]
pub fn sum(a: &[f32]) -> f32 {
    let ones = [1.0f32; 8];
    dot_portable_by(a, |i| ones[i % 8])
}

/// max(a, b) as one compare-and-select. `f32::max` becomes a call to libm's `fmaxf` on wasm
/// (it must ignore NaN), which cost 14% of a GoogLeNet pass; inputs and weights are checked
/// finite, so the NaN rule is not needed on the fast path.
#[inline(always)]
pub fn fmax(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// min(a, b) as one compare-and-select, for the same reason as `fmax`.
#[inline(always)]
pub fn fmin(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

/// Sum of a[i]*b[i].
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: AVX2+FMA present; equal lengths asserted.
            return unsafe { x86::dot_avx2(a, b) };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: equal lengths asserted; simd128 enabled for this build.
        return unsafe { wasm::dot_simd128(a, b) };
    }
    #[allow(unreachable_code)]
    dot_portable(a, b)
}

pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_portable_by(a, |i| b[i])
}

/// Sum of a[i]*b(i), with eight partial sums so the compiler can vectorise without
/// reassociating floats itself.
#[inline(always)]
fn dot_portable_by(a: &[f32], b: impl Fn(usize) -> f32) -> f32 {
    let mut s = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            s[l] += a[c * 8 + l] * b(c * 8 + l);
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..a.len() {
        tail += a[i] * b(i);
    }
    s.iter().sum::<f32>() + tail
}

/// Sum of a[i]*widen(h[i]) for weights held in half precision (`crate::half`: finite values
/// only). Products and sums are f32; only the weights were rounded.
#[inline]
pub fn dot_f16(a: &[f32], h: &[u16]) -> f32 {
    assert_eq!(a.len(), h.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() && has_f16c() {
            // SAFETY: AVX2+FMA+F16C present; equal lengths asserted.
            return unsafe { x86::dot_f16_avx2(a, h) };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: equal lengths asserted; simd128 enabled for this build.
        return unsafe { wasm::dot_f16_simd128(a, h) };
    }
    #[allow(unreachable_code)]
    dot_f16_portable(a, h)
}

pub fn dot_f16_portable(a: &[f32], h: &[u16]) -> f32 {
    dot_portable_by(a, |i| crate::half::to_f32(h[i]))
}

#[cfg(target_arch = "x86_64")]
fn has_f16c() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("f16c"))
}

/// Which SIMD path this build and CPU run, for benchmark and UI labels.
pub fn simd_label() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            return "AVX-512+FMA";
        }
        if has_avx2_fma() {
            return "AVX2+FMA";
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        return "wasm relaxed SIMD";
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        return "wasm simd128";
    }
    #[allow(unreachable_code)]
    "portable (no SIMD)"
}

/// AVX-512F on top of AVX2+FMA; `CONVLENS_NO_AVX512` turns it off (to time both on one
/// machine).
#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| has_avx2_fma() && std::env::var_os("CONVLENS_NO_AVX512").is_none() && is_x86_feature_detected!("avx512f"))
}

#[cfg(target_arch = "x86_64")]
pub fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::env::var_os("CONVLENS_NO_SIMD").is_none()
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
    })
}

/// Defines a method that runs its body at the widest vectors this CPU has, chosen at run time:
/// compiled for AVX-512F (sixteen lanes), for AVX2+FMA (eight), or for the baseline (four: SSE2,
/// wasm simd128). `=> body::<V>` passes the width as the body's `Lanes` type; a plain `=> body`
/// is the same code compiled three times, for the compiler to widen. Bodies are
/// `#[inline(always)]` so that each copy is built with its rung's features; either way every rung
/// gives the same bits (`Lanes`' contract; no fused multiply-add the body does not ask for).
///
/// ```ignore
/// impl Plan<'_> {
///     widest_lanes! {
///         /// Doc of the dispatching method.
///         fn run(&self, x: &[f32]) for Plan<'_> => run_by::<V>
///     }
/// }
/// ```
/// An `unsafe fn` passes its caller's promises on to the body.
macro_rules! widest_lanes {
    ($(#[$m:meta])* $vis:vis unsafe fn $name:ident(&self $(, $a:ident: $t:ty)* $(,)?) for $T:ty => $by:ident $(::<$v:ident>)?) => {
        $(#[$m])*
        $vis unsafe fn $name(&self $(, $a: $t)*) {
            $crate::kernels::simd::widest_lanes!(@ladder self, $T, $by, [$($v)?], ($($a: $t),*))
        }
    };
    ($(#[$m:meta])* $vis:vis fn $name:ident(&self $(, $a:ident: $t:ty)* $(,)?) for $T:ty => $by:ident $(::<$v:ident>)?) => {
        $(#[$m])*
        $vis fn $name(&self $(, $a: $t)*) {
            $crate::kernels::simd::widest_lanes!(@ladder self, $T, $by, [$($v)?], ($($a: $t),*))
        }
    };
    (@ladder $this:ident, $T:ty, $by:ident, $gen:tt, ($($a:ident: $t:ty),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn sixteen(this: &$T $(, $a: $t)*) {
                // SAFETY: the caller checked AVX-512F and keeps the method's promises.
                unsafe { $crate::kernels::simd::widest_lanes!(@call this, $by, $gen, $crate::kernels::simd::F16, ($($a),*)) }
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn eight(this: &$T $(, $a: $t)*) {
                // SAFETY: the caller checked AVX2+FMA and keeps the method's promises.
                unsafe { $crate::kernels::simd::widest_lanes!(@call this, $by, $gen, $crate::kernels::simd::F8, ($($a),*)) }
            }
            if $crate::kernels::simd::has_avx512() {
                // SAFETY: the CPU has AVX-512F; any other promise is the method's caller's.
                return unsafe { sixteen($this $(, $a)*) };
            }
            if $crate::kernels::simd::has_avx2_fma() {
                // SAFETY: the CPU has AVX2+FMA; any other promise is the method's caller's.
                return unsafe { eight($this $(, $a)*) };
            }
        }
        // SAFETY: four lanes run everywhere; any other promise is the method's caller's.
        unsafe { $crate::kernels::simd::widest_lanes!(@call $this, $by, $gen, $crate::kernels::simd::F4, ($($a),*)) }
    }};
    (@call $this:ident, $by:ident, [V], $w:ty, ($($a:ident),*)) => { $this.$by::<$w>($($a),*) };
    (@call $this:ident, $by:ident, [], $w:ty, ($($a:ident),*)) => { $this.$by($($a),*) };
}
pub(crate) use widest_lanes;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Store, MR};
    use core::arch::x86_64::*;

    // B's stride stays a run-time value here: as a build-time constant (as on wasm) it made no
    // difference natively.
    /// R (<= MR) rows of the tile; A's panel is still MR wide.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn micro_kernel_avx2<const R: usize>(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, st: &Store) {
        let mut sums = [[_mm256_setzero_ps(); 2]; R];
        for k in 0..kc {
            let b0 = _mm256_loadu_ps(b.add(k * ldb));
            let b1 = _mm256_loadu_ps(b.add(k * ldb + 8));
            for (i, row) in sums.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(k * MR + i));
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        }
        let zero = _mm256_setzero_ps();
        for (i, row) in sums.iter().enumerate() {
            let dst = c.add(i * ldc);
            for (h, s) in row.iter().enumerate() {
                let mut v = if st.accumulate {
                    _mm256_add_ps(_mm256_loadu_ps(dst.add(8 * h)), *s)
                } else {
                    _mm256_add_ps(*s, _mm256_set1_ps(st.bias[i]))
                };
                if st.relu {
                    v = _mm256_max_ps(v, zero);
                }
                _mm256_storeu_ps(dst.add(8 * h), v);
            }
        }
    }

    /// R rows of one 16-wide panel, the columns in `mask` loaded from and stored to C. Per sum
    /// the same FMA chain over k as `micro_kernel_avx2`, and the same store.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn micro_kernel_avx512<const R: usize>(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, st: &Store, mask: u16) {
        let mut sums = [_mm512_setzero_ps(); R];
        for k in 0..kc {
            let bv = _mm512_loadu_ps(b.add(k * ldb));
            for (i, row) in sums.iter_mut().enumerate() {
                *row = _mm512_fmadd_ps(_mm512_set1_ps(*a.add(k * MR + i)), bv, *row);
            }
        }
        let zero = _mm512_setzero_ps();
        for (i, s) in sums.iter().enumerate() {
            let dst = c.add(i * ldc);
            let mut v = if st.accumulate {
                _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), *s)
            } else {
                _mm512_add_ps(*s, _mm512_set1_ps(st.bias[i]))
            };
            if st.relu {
                v = _mm512_max_ps(v, zero);
            }
            _mm512_mask_storeu_ps(dst, mask, v);
        }
    }

    /// R rows of P 16-wide panels: P*R zmm accumulators. Per sum the same FMA chain over k
    /// as `micro_kernel_avx2`, and the same store.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn micro_kernel_avx512_wide<const R: usize, const P: usize>(kc: usize, a: *const f32, b: [*const f32; P], ldb: [usize; P], c: *mut f32, ldc: usize, st: &Store, mask: [u16; P]) {
        let mut sums = [[_mm512_setzero_ps(); P]; R];
        for k in 0..kc {
            let bv: [__m512; P] = std::array::from_fn(|h| _mm512_loadu_ps(b[h].add(k * ldb[h])));
            for (i, row) in sums.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(k * MR + i));
                for (s, bh) in row.iter_mut().zip(&bv) {
                    *s = _mm512_fmadd_ps(av, *bh, *s);
                }
            }
        }
        let zero = _mm512_setzero_ps();
        for (i, row) in sums.iter().enumerate() {
            let dst = c.add(i * ldc);
            for (h, s) in row.iter().enumerate() {
                let mut v = if st.accumulate {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(mask[h], dst.add(16 * h)), *s)
                } else {
                    _mm512_add_ps(*s, _mm512_set1_ps(st.bias[i]))
                };
                if st.relu {
                    v = _mm512_max_ps(v, zero);
                }
                _mm512_mask_storeu_ps(dst.add(16 * h), mask[h], v);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (l, acc) in s.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8 * l)), _mm256_loadu_ps(pb.add(i + 8 * l)), *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s[0]);
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
        let mut total: f32 = lanes.iter().sum();
        while i < n {
            total += a[i] * b[i];
            i += 1;
        }
        total
    }

    /// F16C widens eight halves per instruction, exactly.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_f16_avx2(a: &[f32], h: &[u16]) -> f32 {
        let n = a.len();
        let (pa, ph) = (a.as_ptr(), h.as_ptr());
        let mut s = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (l, acc) in s.iter_mut().enumerate() {
                let w = _mm256_cvtph_ps(_mm_loadu_si128(ph.add(i + 8 * l) as *const __m128i));
                *acc = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8 * l)), w, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let w = _mm256_cvtph_ps(_mm_loadu_si128(ph.add(i) as *const __m128i));
            s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), w, s[0]);
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
        let mut total: f32 = lanes.iter().sum();
        while i < n {
            total += a[i] * crate::half::to_f32(h[i]);
            i += 1;
        }
        total
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{Store, MR, NR};
    use core::arch::wasm32::*;

    /// a * b + c: one fused (or not: the engine decides) instruction in a relaxed-SIMD build,
    /// which halves the micro-kernel's arithmetic instructions where the CPU has FMA.
    #[inline(always)]
    fn madd(a: v128, b: v128, c: v128) -> v128 {
        #[cfg(target_feature = "relaxed-simd")]
        {
            f32x4_relaxed_madd(a, b, c)
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            f32x4_add(c, f32x4_mul(a, b))
        }
    }

    /// LDB: B's row stride when known at build time (0: `ldb`).
    #[inline(always)]
    /// R (<= MR) rows of the tile; A's panel is still MR wide.
    pub unsafe fn micro_kernel_simd128<const LDB: usize, const R: usize>(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, st: &Store) {
        const V: usize = NR / 4;
        let ldb = if LDB == 0 { ldb } else { LDB };
        let mut sums = [[f32x4_splat(0.0); V]; R];
        for k in 0..kc {
            let mut bv = [f32x4_splat(0.0); V];
            for (j, v) in bv.iter_mut().enumerate() {
                *v = v128_load(b.add(k * ldb + 4 * j) as *const v128);
            }
            for (i, row) in sums.iter_mut().enumerate() {
                let av = f32x4_splat(*a.add(k * MR + i));
                for (r, v) in row.iter_mut().zip(&bv) {
                    *r = madd(av, *v, *r);
                }
            }
        }
        let zero = f32x4_splat(0.0);
        for (i, row) in sums.iter().enumerate() {
            let dst = c.add(i * ldc);
            for (j, s) in row.iter().enumerate() {
                let p = dst.add(4 * j) as *mut v128;
                let mut v = if st.accumulate { f32x4_add(v128_load(p), *s) } else { f32x4_add(*s, f32x4_splat(st.bias[i])) };
                if st.relu {
                    // Compare-and-select, as `fmax`: f32x4_max would also order -0 below +0.
                    v = v128_bitselect(v, zero, f32x4_gt(v, zero));
                }
                v128_store(p, v);
            }
        }
    }

    pub unsafe fn dot_simd128(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [f32x4_splat(0.0); 4];
        let mut i = 0;
        while i + 16 <= n {
            for (l, acc) in s.iter_mut().enumerate() {
                let x = v128_load(pa.add(i + 4 * l) as *const v128);
                let y = v128_load(pb.add(i + 4 * l) as *const v128);
                *acc = madd(x, y, *acc);
            }
            i += 16;
        }
        let v = f32x4_add(f32x4_add(s[0], s[1]), f32x4_add(s[2], s[3]));
        let mut total = f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v);
        while i < n {
            total += a[i] * b[i];
            i += 1;
        }
        total
    }

    /// Four halves (zero-extended to u32 lanes) as f32: the magnitude's bits moved to f32's
    /// places and scaled by 2^112 (the exponent bias difference), which also gets subnormals
    /// right; the sign put back. Exact for every finite half, which is all `crate::half` holds.
    #[inline(always)]
    fn widen(h: v128) -> v128 {
        let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
        let mag = i32x4_shl(v128_and(h, u32x4_splat(0x7fff)), 13);
        v128_or(f32x4_mul(mag, f32x4_splat(f32::from_bits(0x7780_0000))), sign)
    }

    pub unsafe fn dot_f16_simd128(a: &[f32], h: &[u16]) -> f32 {
        let n = a.len();
        let (pa, ph) = (a.as_ptr(), h.as_ptr());
        let mut s = [f32x4_splat(0.0); 4];
        let mut i = 0;
        while i + 16 <= n {
            for half in 0..2 {
                let w = v128_load(ph.add(i + 8 * half) as *const v128);
                let (lo, hi) = (widen(u32x4_extend_low_u16x8(w)), widen(u32x4_extend_high_u16x8(w)));
                let x0 = v128_load(pa.add(i + 8 * half) as *const v128);
                let x1 = v128_load(pa.add(i + 8 * half + 4) as *const v128);
                s[2 * half] = madd(x0, lo, s[2 * half]);
                s[2 * half + 1] = madd(x1, hi, s[2 * half + 1]);
            }
            i += 16;
        }
        let v = f32x4_add(f32x4_add(s[0], s[1]), f32x4_add(s[2], s[3]));
        let mut total = f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v);
        while i < n {
            total += a[i] * crate::half::to_f32(h[i]);
            i += 1;
        }
        total
    }
}
