//! The network's view cut straight out of a raw camera frame: the planes a webcam delivers
//! (I420 or NV12 YUV, or RGBA/BGRA), only the crop window resampled, converted to RGB on the
//! way. A live frame thus costs one pass over the window instead of a full-frame colour
//! conversion, a full-frame resize and a crop (`preprocess::crop_rgb` on an RGBA copy: 4-5 ms
//! a 640x480 frame in wasm), and the browser's canvas is not involved (in a worker, drawing a
//! VideoFrame on an OffscreenCanvas waited 5-24 ms a frame on the browser's other threads).
//!
//! Decoded photos take the same path (`preprocess::crop_rgb`, RGB or RGBA): only the crop
//! window is resampled. The filter is a triangle as wide as the downscale (at least one source
//! pixel), centred where the resized image's pixel centre falls in the source, weights
//! renormalised at the frame's edges, as the image crate's and PIL's resize (within a level or
//! two, `tests/frame_view.rs`); the window is `preprocess::crop_window`'s.

use crate::error::{Error, Result};
use crate::preprocess::{crop_window, Fit};

/// How a frame's bytes hold its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Y plane, then U and V planes at half width and height.
    I420,
    /// Y plane, then one plane of interleaved U, V at half width and height.
    Nv12,
    /// Four bytes a pixel, R G B x.
    Rgba,
    /// Four bytes a pixel, B G R x.
    Bgra,
    /// Three bytes a pixel, R G B: a photo decoded natively (the `image` crate's RGB8).
    Rgb,
}

impl Layout {
    /// WebCodecs' name of a pixel format (`VideoFrame.format`); alpha and padding variants
    /// read the same (alpha is dropped).
    pub fn from_webcodecs(format: &str) -> Option<Layout> {
        match format {
            "I420" | "I420A" => Some(Layout::I420),
            "NV12" => Some(Layout::Nv12),
            "RGBA" | "RGBX" => Some(Layout::Rgba),
            "BGRA" | "BGRX" => Some(Layout::Bgra),
            _ => None,
        }
    }

    fn planes(self) -> usize {
        match self {
            Layout::I420 => 3,
            Layout::Nv12 => 2,
            Layout::Rgba | Layout::Bgra | Layout::Rgb => 1,
        }
    }
}

/// Which YUV matrix and range a frame's values are in (`VideoFrame.colorSpace`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YuvSpace {
    /// The luma weights of red and blue (BT.601: 0.299, 0.114; BT.709: 0.2126, 0.0722).
    pub kr: f32,
    pub kb: f32,
    /// Y in 0..=255 and U, V centred on 128 over the full byte, rather than 16..=235 / 16..=240.
    pub full_range: bool,
}

impl YuvSpace {
    pub const BT601: YuvSpace = YuvSpace { kr: 0.299, kb: 0.114, full_range: false };
    pub const BT709: YuvSpace = YuvSpace { kr: 0.2126, kb: 0.0722, full_range: false };

    /// From WebCodecs' `VideoColorSpace` matrix name and `fullRange`; an unnamed matrix is
    /// BT.601 (what webcams and JPEG use).
    pub fn from_webcodecs(matrix: Option<&str>, full_range: Option<bool>) -> YuvSpace {
        let base = match matrix {
            Some("bt709") => YuvSpace::BT709,
            _ => YuvSpace::BT601,
        };
        YuvSpace { full_range: full_range.unwrap_or(false), ..base }
    }

    /// (y scale, y offset) and the four chroma coefficients (r_v, g_u, g_v, b_u), the chroma
    /// range's scale folded in.
    fn coefficients(self) -> ([f32; 2], [f32; 4]) {
        let kg = 1.0 - self.kr - self.kb;
        let (ys, yo, cs) = if self.full_range { (1.0, 0.0, 1.0) } else { (255.0 / 219.0, 16.0, 255.0 / 224.0) };
        let rv = 2.0 * (1.0 - self.kr);
        let bu = 2.0 * (1.0 - self.kb);
        let gu = -2.0 * self.kb * (1.0 - self.kb) / kg;
        let gv = -2.0 * self.kr * (1.0 - self.kr) / kg;
        ([ys, yo], [rv * cs, gu * cs, gv * cs, bu * cs])
    }
}

/// One plane's place in the frame's bytes: its first byte and the bytes from one row to the next
/// (WebCodecs' `PlaneLayout`, as `VideoFrame.copyTo` reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plane {
    pub offset: usize,
    pub stride: usize,
}

/// A frame's pixels as they arrived.
pub struct RawFrame<'a> {
    pub layout: Layout,
    pub width: usize,
    pub height: usize,
    pub planes: &'a [Plane],
    pub bytes: &'a [u8],
    pub space: YuvSpace,
}

impl RawFrame<'_> {
    /// Every plane fits in the bytes: checked once, so the pixel reads cannot run off the end.
    fn check(&self) -> Result<()> {
        let bad = |why: String| Err(Error::Input(format!("a {:?} {}x{} frame: {why}", self.layout, self.width, self.height)));
        if self.width == 0 || self.height == 0 {
            return bad("no pixels".into());
        }
        if self.planes.len() != self.layout.planes() {
            return bad(format!("{} planes", self.planes.len()));
        }
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let extents: Vec<(usize, usize)> = match self.layout {
            Layout::I420 => vec![(self.width, self.height), (cw, ch), (cw, ch)],
            Layout::Nv12 => vec![(self.width, self.height), (2 * cw, ch)],
            Layout::Rgba | Layout::Bgra => vec![(4 * self.width, self.height)],
            Layout::Rgb => vec![(3 * self.width, self.height)],
        };
        for (p, (row_bytes, rows)) in self.planes.iter().zip(extents) {
            let end = p.stride.checked_mul(rows - 1).and_then(|b| b.checked_add(p.offset + row_bytes));
            if p.stride < row_bytes || end.is_none_or(|end| end > self.bytes.len()) {
                return bad(format!("a plane at {} with rows of {} bytes does not fit in {} bytes", p.offset, p.stride, self.bytes.len()));
            }
        }
        Ok(())
    }
}

/// For each output pixel along one axis: the first source index it reads and `n` weights
/// (zero past its own support), all in one run so the filter loops stay flat.
struct Taps {
    first: Vec<usize>,
    n: usize,
    weights: Vec<f32>,
}

impl Taps {
    /// `out` pixels from the source span starting at `start` of `span` pixels, in a source
    /// `len` pixels long.
    fn new(len: usize, start: f64, span: f64, out: usize) -> Taps {
        let scale = span / out as f64;
        let support = scale.max(1.0);
        let each: Vec<(usize, Vec<f32>)> = (0..out)
            .map(|j| {
                let centre = start + (j as f64 + 0.5) * scale - 0.5;
                let lo = (centre - support).floor().max(0.0) as usize;
                let hi = ((centre + support).ceil() as usize).min(len - 1);
                let w: Vec<f32> = (lo..=hi).map(|i| (1.0 - (i as f64 - centre).abs() / support).max(0.0) as f32).collect();
                let sum: f32 = w.iter().sum();
                if sum > 0.0 {
                    (lo, w.iter().map(|v| v / sum).collect())
                } else {
                    // Only where the centre is a whole support past the edge: the nearest pixel.
                    (lo.min(len - 1), vec![1.0])
                }
            })
            .collect();
        let n = each.iter().map(|(_, w)| w.len()).max().unwrap_or(1).min(len);
        let mut first = Vec::with_capacity(out);
        let mut weights = vec![0.0f32; out * n];
        for (j, (lo, w)) in each.into_iter().enumerate() {
            // Near the far edge a full run would read past it: start it earlier, zeros first.
            let start = lo.min(len.saturating_sub(n));
            weights[j * n + (lo - start)..][..w.len()].copy_from_slice(&w);
            first.push(start);
        }
        Taps { first, n, weights }
    }

    /// The same filter on a plane at half the resolution whose sample m stands for pixels 2m
    /// and 2m+1 (chroma): each weight goes to its pixel's sample. Exactly the filter applied to
    /// the plane upsampled by repeating samples, without upsampling it.
    fn halved(&self, half_len: usize) -> Taps {
        let n = (self.n / 2 + 2).min(half_len);
        let mut first = Vec::with_capacity(self.first.len());
        let mut weights = vec![0.0f32; self.first.len() * n];
        for (j, (&f, w)) in self.first.iter().zip(self.weights.chunks_exact(self.n)).enumerate() {
            let start = (f / 2).min(half_len.saturating_sub(n));
            for (k, &wt) in w.iter().enumerate() {
                weights[j * n + (f + k) / 2 - start] += wt;
            }
            first.push(start);
        }
        Taps { first, n, weights }
    }

    /// The source indices read at all.
    fn range(&self) -> (usize, usize) {
        let lo = self.first.iter().copied().min().unwrap_or(0);
        let hi = self.first.iter().map(|f| f + self.n).max().unwrap_or(0);
        (lo, hi)
    }
}

/// One plane filtered down then across: for each of `channels` (byte offsets within a pixel
/// of `step` bytes), `side` x `side` values into `out`, channel by channel.
fn filter_plane(bytes: &[u8], plane: Plane, step: usize, channels: &[usize], tx: &Taps, ty: &Taps, out: &mut [Vec<f32>]) {
    let side = tx.first.len();
    let (x0, x1) = tx.range();
    let (b0, b1) = (x0 * step, x1 * step);
    let mut down = vec![0.0f32; b1 - b0];
    for (i, (&first, weights)) in ty.first.iter().zip(ty.weights.chunks_exact(ty.n)).enumerate() {
        // Down: the rows this output row reads, summed byte by byte (every channel at once).
        down.fill(0.0);
        for (k, &wt) in weights.iter().enumerate() {
            if wt != 0.0 {
                let row = &bytes[plane.offset + (first + k) * plane.stride..][b0..b1];
                down.iter_mut().zip(row).for_each(|(d, &v)| *d += wt * v as f32);
            }
        }
        // Across, one channel at a time.
        for (&c, dst) in channels.iter().zip(out.iter_mut()) {
            let dst = &mut dst[i * side..][..side];
            match step {
                1 => across::<1>(&down[c..], x0, tx, dst),
                2 => across::<2>(&down[c..], x0, tx, dst),
                3 => across::<3>(&down[c..], x0, tx, dst),
                _ => across::<4>(&down[c..], x0, tx, dst),
            }
        }
    }
}

/// One row's horizontal filter, for pixels `STEP` values apart (a constant, so the taps'
/// addresses are shifts and the loop unrolls).
fn across<const STEP: usize>(down: &[f32], x0: usize, tx: &Taps, dst: &mut [f32]) {
    let n = tx.n;
    for ((d, &first), weights) in dst.iter_mut().zip(&tx.first).zip(tx.weights.chunks_exact(n)) {
        let src = &down[(first - x0) * STEP..][..(n - 1) * STEP + 1];
        // Two sums, even and odd taps: half the chain of dependent adds.
        let (mut even, mut odd) = (0.0f32, 0.0f32);
        let mut k = 0;
        while k + 1 < n {
            even += weights[k] * src[k * STEP];
            odd += weights[k + 1] * src[(k + 1) * STEP];
            k += 2;
        }
        if k < n {
            even += weights[k] * src[k * STEP];
        }
        *d = even + odd;
    }
}

/// The network's `side` x `side` view of `frame`, RGB8 row-major, as `fit` frames it (the same
/// window `preprocess::crop_rgb` takes from a decoded image). Each plane is filtered at its own
/// resolution (chroma with the luma filter halved, `Taps::halved`) and the colours converted
/// last, per output pixel: the result of converting every pixel and then filtering, as the
/// conversion is affine (clamping aside, which a filter of in-gamut colours never needs).
pub fn crop_frame(frame: &RawFrame, side: usize, fit: Fit) -> Result<Vec<u8>> {
    frame.check()?;
    let (w, h) = (frame.width, frame.height);
    let (sx, sy, sw, sh) = crop_window(w, h, side, fit)?;
    let (tx, ty) = (Taps::new(w, sx, sw, side), Taps::new(h, sy, sh, side));
    let mut ch = vec![vec![0.0f32; side * side]; 3];
    let p = frame.planes;
    // Rounded half up (no libm call; the values are never negative once clamped).
    let to_u8 = |v: f32| (v.clamp(0.0, 255.0) + 0.5) as u8;
    let mut out = vec![0u8; side * side * 3];
    match frame.layout {
        Layout::Rgba | Layout::Bgra | Layout::Rgb => {
            let order = if frame.layout == Layout::Bgra { [2, 1, 0] } else { [0, 1, 2] };
            let step = if frame.layout == Layout::Rgb { 3 } else { 4 };
            filter_plane(frame.bytes, p[0], step, &order, &tx, &ty, &mut ch);
            for (((o, &r), &g), &b) in out.chunks_exact_mut(3).zip(&ch[0]).zip(&ch[1]).zip(&ch[2]) {
                o.copy_from_slice(&[to_u8(r), to_u8(g), to_u8(b)]);
            }
        }
        Layout::I420 | Layout::Nv12 => {
            let (half_x, half_y) = (tx.halved(w.div_ceil(2)), ty.halved(h.div_ceil(2)));
            let (luma, chroma) = ch.split_at_mut(1);
            filter_plane(frame.bytes, p[0], 1, &[0], &tx, &ty, luma);
            if frame.layout == Layout::I420 {
                let (u, v) = chroma.split_at_mut(1);
                filter_plane(frame.bytes, p[1], 1, &[0], &half_x, &half_y, u);
                filter_plane(frame.bytes, p[2], 1, &[0], &half_x, &half_y, v);
            } else {
                filter_plane(frame.bytes, p[1], 2, &[0, 1], &half_x, &half_y, chroma);
            }
            let ([ys, yo], [rv, gu, gv, bu]) = frame.space.coefficients();
            for (((o, &l), &u), &v) in out.chunks_exact_mut(3).zip(&ch[0]).zip(&ch[1]).zip(&ch[2]) {
                let l = (l - yo) * ys;
                let (u, v) = (u - 128.0, v - 128.0);
                o.copy_from_slice(&[to_u8(l + rv * v), to_u8(l + gu * u + gv * v), to_u8(l + bu * u)]);
            }
        }
    }
    Ok(out)
}
