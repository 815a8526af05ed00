//! The network's view cut straight out of a raw camera frame: the planes a webcam delivers
//! (I420 or NV12 YUV, or RGBA/BGRA), only the crop window resampled, converted to RGB on the
//! way. A live frame thus costs one pass over the window instead of a full-frame colour
//! conversion, a full-frame resize and a crop (`preprocess::crop_rgb` on an RGBA copy: 4-5 ms
//! a 640x480 frame in wasm), and the browser's canvas is not involved (in a worker, drawing a
//! VideoFrame on an OffscreenCanvas waited 5-24 ms a frame on the browser's other threads).
//!
//! The filter is `crop_rgb`'s: a triangle as wide as the downscale (at least one source pixel),
//! centred where the resized image's pixel centre falls in the source, weights renormalised at
//! the frame's edges; the window is `preprocess::geometry`'s.

use crate::error::{Error, Result};
use crate::preprocess::{geometry, Fit};

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
            Layout::Rgba | Layout::Bgra => 1,
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

    /// (y scale, y offset, chroma scale) and the four chroma coefficients (r_v, g_u, g_v, b_u).
    fn coefficients(self) -> ([f32; 3], [f32; 4]) {
        let kg = 1.0 - self.kr - self.kb;
        let (ys, yo, cs) = if self.full_range { (1.0, 0.0, 1.0) } else { (255.0 / 219.0, 16.0, 255.0 / 224.0) };
        let rv = 2.0 * (1.0 - self.kr);
        let bu = 2.0 * (1.0 - self.kb);
        let gu = -2.0 * self.kb * (1.0 - self.kb) / kg;
        let gv = -2.0 * self.kr * (1.0 - self.kr) / kg;
        ([ys, yo, cs], [rv * cs, gu * cs, gv * cs, bu * cs])
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
        };
        for (p, (row_bytes, rows)) in self.planes.iter().zip(extents) {
            let end = p.stride.checked_mul(rows - 1).and_then(|b| b.checked_add(p.offset + row_bytes));
            if p.stride < row_bytes || end.is_none_or(|end| end > self.bytes.len()) {
                return bad(format!("a plane at {} with rows of {} bytes does not fit in {} bytes", p.offset, p.stride, self.bytes.len()));
            }
        }
        Ok(())
    }

    /// Row `y`'s pixels `x0..x1` as RGB in 0..=255, into `out` (3 values a pixel).
    fn rgb_row(&self, y: usize, x0: usize, x1: usize, out: &mut Vec<f32>) {
        out.clear();
        let px = |plane: usize, x: usize, y: usize| self.bytes[self.planes[plane].offset + y * self.planes[plane].stride + x];
        match self.layout {
            Layout::Rgba | Layout::Bgra => {
                let (r, b) = if self.layout == Layout::Rgba { (0, 2) } else { (2, 0) };
                let row = &self.bytes[self.planes[0].offset + y * self.planes[0].stride..];
                for p in row[4 * x0..4 * x1].chunks_exact(4) {
                    out.extend([p[r] as f32, p[1] as f32, p[b] as f32]);
                }
            }
            Layout::I420 | Layout::Nv12 => {
                let ([ys, yo, _], [rv, gu, gv, bu]) = self.space.coefficients();
                for x in x0..x1 {
                    let l = (px(0, x, y) as f32 - yo) * ys;
                    let (u, v) = match self.layout {
                        Layout::I420 => (px(1, x / 2, y / 2), px(2, x / 2, y / 2)),
                        _ => (px(1, x / 2 * 2, y / 2), px(1, x / 2 * 2 + 1, y / 2)),
                    };
                    let (u, v) = (u as f32 - 128.0, v as f32 - 128.0);
                    out.extend([(l + rv * v).clamp(0.0, 255.0), (l + gu * u + gv * v).clamp(0.0, 255.0), (l + bu * u).clamp(0.0, 255.0)]);
                }
            }
        }
    }
}

/// For each output pixel along one axis: the first source index it reads, and its weights.
struct Taps {
    first: Vec<usize>,
    weights: Vec<Vec<f32>>,
}

impl Taps {
    /// `out` pixels from the source span starting at `start` of `span` pixels, in a source
    /// `len` pixels long.
    fn new(len: usize, start: f64, span: f64, out: usize) -> Taps {
        let scale = span / out as f64;
        let support = scale.max(1.0);
        let (mut first, mut weights) = (Vec::with_capacity(out), Vec::with_capacity(out));
        for j in 0..out {
            let centre = start + (j as f64 + 0.5) * scale - 0.5;
            let lo = (centre - support).floor().max(0.0) as usize;
            let hi = ((centre + support).ceil() as usize).min(len - 1);
            let mut w: Vec<f32> = (lo..=hi).map(|i| (1.0 - (i as f64 - centre).abs() / support).max(0.0) as f32).collect();
            let sum: f32 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                // Only where the centre is a whole support past the edge: the nearest pixel.
                w = vec![1.0];
            }
            first.push(lo);
            weights.push(w);
        }
        Taps { first, weights }
    }

    /// The source indices read at all.
    fn range(&self) -> (usize, usize) {
        let lo = self.first.iter().copied().min().unwrap_or(0);
        let hi = self.first.iter().zip(&self.weights).map(|(f, w)| f + w.len()).max().unwrap_or(0);
        (lo, hi)
    }
}

/// The network's `side` x `side` view of `frame`, RGB8 row-major, as `fit` frames it (the same
/// window `preprocess::crop_rgb` takes from a decoded image).
pub fn crop_frame(frame: &RawFrame, side: usize, fit: Fit) -> Result<Vec<u8>> {
    frame.check()?;
    let (w, h) = (frame.width, frame.height);
    let (rw, rh, cx, cy) = geometry(w, h, side, fit)?;
    let (sx, sw) = (cx as f64 * w as f64 / rw as f64, side as f64 * w as f64 / rw as f64);
    let (sy, sh) = (cy as f64 * h as f64 / rh as f64, side as f64 * h as f64 / rh as f64);
    let (tx, ty) = (Taps::new(w, sx, sw, side), Taps::new(h, sy, sh, side));
    let ((x0, x1), (y0, y1)) = (tx.range(), ty.range());
    // Each source row the window reads, filtered across to `side` pixels, then down.
    let mut across = vec![0.0f32; (y1 - y0) * side * 3];
    let mut row = Vec::with_capacity((x1 - x0) * 3);
    for y in y0..y1 {
        frame.rgb_row(y, x0, x1, &mut row);
        let dst = &mut across[(y - y0) * side * 3..][..side * 3];
        for (j, (&first, weights)) in tx.first.iter().zip(&tx.weights).enumerate() {
            let mut acc = [0.0f32; 3];
            for (k, &wt) in weights.iter().enumerate() {
                let p = &row[(first - x0 + k) * 3..][..3];
                acc[0] += wt * p[0];
                acc[1] += wt * p[1];
                acc[2] += wt * p[2];
            }
            dst[j * 3..j * 3 + 3].copy_from_slice(&acc);
        }
    }
    let mut out = vec![0u8; side * side * 3];
    for (i, (&first, weights)) in ty.first.iter().zip(&ty.weights).enumerate() {
        let dst = &mut out[i * side * 3..][..side * 3];
        let mut acc = vec![0.0f32; side * 3];
        for (k, &wt) in weights.iter().enumerate() {
            let src = &across[(first - y0 + k) * side * 3..][..side * 3];
            acc.iter_mut().zip(src).for_each(|(a, s)| *a += wt * s);
        }
        dst.iter_mut().zip(&acc).for_each(|(d, a)| *d = a.round().clamp(0.0, 255.0) as u8);
    }
    Ok(out)
}
