//! Convolution as GEMM: weights packed once at load; input columns gathered straight into
//! packed panels (implicit im2col, never materialised); 1x1 stride-1 convs read the input
//! as the B matrix directly.

use super::gemm::{gemm_raw, DenseB, Epilogue, PackB, PackedA, KC};
use super::simd::widest_lanes;
use super::simd::{Lanes, NR};
use crate::error::Result;
use crate::graph::Window;
use crate::par;
use crate::tensor::Tensor;

/// The input of one group seen as the KxN matrix im2col would build: K = cg*kh*kw, N = oh*ow.
/// It reads a zero-padded copy of the input (the input itself when the window has no pads),
/// so a panel's gather has no borders to handle: per
/// tap (row k) it copies the panel's runs of output pixels that share an output row, each run
/// one contiguous slice at stride 1.
struct Im2colB<'a> {
    /// The group's channels, each padded to hp x wp (or unpadded: hp x wp = h x w).
    xp: &'a [f32],
    hp: usize,
    wp: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    win: &'a Window,
    cg: usize,
}

thread_local! {
    /// The padded copy of a conv's input, kept from call to call: zeroing a fresh one whole
    /// was a memset of every pixel (~2% of a SqueezeNet pass) where only the border is zero.
    static PADDED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Pads every channel of `x` (c planes of h x w) by the window's pads into `out`: every
/// element written, the border with zeros.
fn pad_planes(x: &[f32], c: usize, h: usize, w: usize, win: &Window, out: &mut Vec<f32>) -> (usize, usize) {
    let [pt, pl, pb, pr] = win.pads;
    let (hp, wp) = (h + pt + pb, w + pl + pr);
    pad_planes_to(x, c, h, w, pt, pl, hp, wp, out);
    (hp, wp)
}

/// `c` planes of h x w into `out` as planes of hp x wp, each shifted by (pt, pl), zero around
/// (what falls outside is dropped): every element written, so `out` can be reused. A large copy
/// is split over the kernel pool by channels: run by the caller alone, it was the serial part
/// of the 3x3 convs it feeds (SqueezeNet's first expands copy 215 KB each).
#[allow(clippy::too_many_arguments)]
pub(super) fn pad_planes_to(x: &[f32], c: usize, h: usize, w: usize, pt: usize, pl: usize, hp: usize, wp: usize, out: &mut Vec<f32>) {
    if out.len() < c * hp * wp {
        out.resize(c * hp * wp, 0.0);
    }
    let (pt, pl) = (pt.min(hp), pl.min(wp));
    // Rows and columns of the input that land inside the padded plane.
    let (rows, cols) = (h.min(hp - pt), w.min(wp - pl));
    let pad_plane = |ch: usize, plane: &mut [f32]| {
        plane[..pt * wp].fill(0.0);
        plane[(pt + rows) * wp..].fill(0.0);
        for y in 0..rows {
            let row = &mut plane[(pt + y) * wp..(pt + y + 1) * wp];
            row[..pl].fill(0.0);
            row[pl..pl + cols].copy_from_slice(&x[(ch * h + y) * w..(ch * h + y) * w + cols]);
            row[pl + cols..].fill(0.0);
        }
    };
    // One task under PAR_PAD_MIN: `par::for_each` runs it inline, as it does on one thread.
    let parts = if c * hp * wp < PAR_PAD_MIN { 1 } else { 2 * par::threads() };
    let planes = par::chunks(c, parts, 1);
    let outs = par::SharedMut::new(&mut out[..c * hp * wp]);
    par::for_each(planes.len(), &|t| {
        for ch in planes[t].clone() {
            // SAFETY: tasks take disjoint channels, so disjoint planes of `out`.
            pad_plane(ch, unsafe { outs.slice(ch * hp * wp, hp * wp) });
        }
    });
}

/// Floats of padded copy under which one thread copies alone (a fork costs more).
const PAR_PAD_MIN: usize = 1 << 14;

impl PackB for Im2colB<'_> {
    fn k(&self) -> usize {
        self.cg * self.kh * self.kw
    }
    fn n(&self) -> usize {
        self.oh * self.ow
    }
    widest_lanes! {
        fn pack(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut [f32]) for Im2colB<'_> => pack_by::<V>
    }
}

impl Im2colB<'_> {
    /// `pack`, the stride-2 gather `V::N` lanes at a time (sixteen: two loads and one
    /// shuffle per panel row, where four lanes took eight loads and four shuffles).
    ///
    /// # Safety
    /// The CPU runs `V`'s width.
    #[inline(always)]
    unsafe fn pack_by<V: Lanes>(&self, k0: usize, kc: usize, n0: usize, nc: usize, out: &mut [f32]) {
        let (sy, sx) = (self.win.strides[0], self.win.strides[1]);
        let (dy, dx) = (self.win.dilations[0], self.win.dilations[1]);
        let plane = self.hp * self.wp;
        // Each row's tap (k0..k0 + kc) as an input offset, once per call: worked out per panel
        // row, with its bounds checks, it took a quarter of SqueezeNet's conv0 (K = 27).
        assert!(kc <= KC, "a depth block of at most KC rows");
        let mut taps = [0usize; KC];
        let taps = &mut taps[..kc];
        let (mut ic, mut ky, mut kx) = (k0 / (self.kh * self.kw), (k0 / self.kw) % self.kh, k0 % self.kw);
        for tap in taps.iter_mut() {
            *tap = ic * plane + ky * dy * self.wp + kx * dx;
            kx += 1;
            if kx == self.kw {
                kx = 0;
                ky += 1;
                if ky == self.kh {
                    ky = 0;
                    ic += 1;
                }
            }
        }
        let last_tap = taps.iter().copied().max().unwrap_or(0);
        for jp in 0..nc.div_ceil(NR) {
            let col0 = n0 + jp * NR;
            let width = NR.min(n0 + nc - col0);
            // Runs of this panel's columns within one output row: (first column, input offset
            // of its window's top-left tap, length). A panel spans at most NR rows.
            let mut runs = [(0usize, 0usize, 0usize); NR];
            let mut nruns = 0;
            let mut j = 0;
            while j < width {
                let (oy, ox) = ((col0 + j) / self.ow, (col0 + j) % self.ow);
                let len = (self.ow - ox).min(width - j);
                runs[nruns] = (j, oy * sy * self.wp + ox * sx, len);
                nruns += 1;
                j += len;
            }
            let panel = &mut out[jp * kc * NR..(jp + 1) * kc * NR];
            // The common case: the panel's NR columns in one output row at stride 1 or 2, every
            // row's loads inside the input (checked once for the panel): a copy of NR floats,
            // or the even lanes of 2 * NR (conv0 of SqueezeNet, GoogLeNet, ResNet) split out by
            // shuffles.
            let base = runs[0].1;
            if nruns == 1 && width == NR && (sx == 1 || sx == 2) && base + last_tap + sx * NR <= self.xp.len() {
                let src = self.xp[base..].as_ptr();
                for (dst, &tap) in panel.chunks_exact_mut(NR).zip(taps.iter()) {
                    for q in 0..NR / V::N {
                        // SAFETY: loads end at base + tap + sx * NR <= xp.len() (checked above);
                        // `dst` holds NR floats; the CPU runs `V` (the caller's promise).
                        unsafe {
                            let d = dst.as_mut_ptr().add(q * V::N);
                            if sx == 1 {
                                V::load(src.add(tap + q * V::N)).store(d);
                            } else {
                                let p = src.add(tap + 2 * V::N * q);
                                V::even(V::load(p), V::load(p.add(V::N))).store(d);
                            }
                        }
                    }
                }
                continue;
            }
            for (dst, &tap) in panel.chunks_exact_mut(NR).zip(taps.iter()) {
                for &(j, off, len) in &runs[..nruns] {
                    let src = &self.xp[tap + off..];
                    if sx == 1 {
                        dst[j..j + len].copy_from_slice(&src[..len]);
                    } else {
                        for (t, d) in dst[j..j + len].iter_mut().enumerate() {
                            *d = src[t * sx];
                        }
                    }
                }
                dst[width..].fill(0.0);
            }
        }
    }
}

/// A convolution ready to run: weights packed per group.
pub struct PreparedConv {
    window: Window,
    group: usize,
    kernel: [usize; 2],
    cg: usize,
    mg: usize,
    packed: Vec<PackedA>,
    bias: Option<Vec<f32>>,
    relu: bool,
}

impl PreparedConv {
    pub fn new(w: &Tensor, bias: Option<&Tensor>, window: &Window, group: usize, relu: bool) -> Result<Self> {
        let (m, cg, kh, kw) = w.nchw()?;
        let mg = m / group;
        let k = cg * kh * kw;
        let packed = (0..group)
            .map(|g| PackedA::pack(mg, k, |i| &w.data[(g * mg + i) * k..(g * mg + i + 1) * k]))
            .collect();
        Ok(PreparedConv {
            window: window.clone(),
            group,
            kernel: [kh, kw],
            cg,
            mg,
            packed,
            bias: bias.map(|b| b.data.clone()),
            relu,
        })
    }

    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.window.strides == [1, 1] && self.window.pads == [0; 4]
    }

    /// The output's shape for input `x`.
    pub fn out_shape(&self, x: &Tensor) -> Result<[usize; 4]> {
        let (n, _, h, w) = x.nchw()?;
        Ok([n, self.mg * self.group, self.window.out_dim(0, h, false)?, self.window.out_dim(1, w, false)?])
    }

    pub fn run(&self, x: &Tensor, scratch: &mut Vec<f32>) -> Result<Tensor> {
        let shape = self.out_shape(x)?;
        // SAFETY: `run_into` writes every output element through the pointer.
        unsafe { Tensor::filled_by(&shape, |out, len| self.run_into(x, scratch, out, len)) }
    }

    /// The output written to `out` (which may be uninitialised), e.g. a concat's slice.
    ///
    /// # Safety
    /// `out` is valid for writes of `len` floats, nothing else touches them meanwhile, and `len`
    /// is the output's size (`out_shape`; checked). Every one of them is written, through the
    /// pointer, none read before it is written.
    pub unsafe fn run_into(&self, x: &Tensor, scratch: &mut Vec<f32>, out: *mut f32, len: usize) -> Result<()> {
        let (n, c, h, w) = x.nchw()?;
        let [_, m, oh, ow] = self.out_shape(x)?;
        if len != n * m * oh * ow {
            return Err(crate::error::Error::Shape(format!("a conv output of {} floats written into {len}", n * m * oh * ow)));
        }
        PADDED.with(|padded| {
            let mut padded = padded.borrow_mut();
            for b in 0..n {
                for g in 0..self.group {
                    let xs = &x.data[(b * c + g * self.cg) * h * w..(b * c + (g + 1) * self.cg) * h * w];
                    // SAFETY: this group's block of the output, inside it.
                    let dst = unsafe { out.add((b * m + g * self.mg) * oh * ow) };
                    let len = self.mg * oh * ow;
                    let ep = Epilogue { bias: self.bias.as_ref().map(|v| &v[g * self.mg..(g + 1) * self.mg]), relu: self.relu };
                    if self.is_pointwise() {
                        // SAFETY: `dst` holds `len` floats that only this GEMM writes.
                        unsafe { gemm_raw(&self.packed[g], &DenseB { k: self.cg, n: h * w, data: xs }, dst, len, oh * ow, ep, scratch) };
                    } else {
                        // An unpadded conv (SqueezeNet's and AlexNet's first) gathers from the
                        // input itself.
                        let (xp, hp, wp) = if self.window.pads == [0; 4] {
                            (xs, h, w)
                        } else {
                            let (hp, wp) = pad_planes(xs, self.cg, h, w, &self.window, &mut padded);
                            (&padded[..], hp, wp)
                        };
                        let src = Im2colB {
                            xp,
                            hp,
                            wp,
                            kh: self.kernel[0],
                            kw: self.kernel[1],
                            oh,
                            ow,
                            win: &self.window,
                            cg: self.cg,
                        };
                        // SAFETY: as above.
                        unsafe { gemm_raw(&self.packed[g], &src, dst, len, oh * ow, ep, scratch) };
                    }
                }
            }
        });
        // The groups' GEMMs wrote every output of every image, each M_g x (oh*ow) block whole
        // (`gemm_raw`).
        Ok(())
    }
}
