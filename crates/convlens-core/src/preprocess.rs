//! Pixels to the input tensor. Decoding and resampling belong to the caller (the `image`
//! crate natively, the browser's canvas on the web); this holds the geometry both follow and
//! the per-family normalisation.

use crate::error::{Error, Result};
use crate::graph::Preprocess;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Shorter side to 256 (for 224 inputs: side * 8/7), then the centre crop. The default.
    ResizeAndCenterCrop,
    /// Squash the whole image to the input size, ignoring aspect ratio.
    Squash,
}

/// Where to resize to and which window to crop: (resize_w, resize_h, crop_x, crop_y).
pub fn geometry(w: usize, h: usize, out: usize, fit: Fit) -> Result<(usize, usize, usize, usize)> {
    if w == 0 || h == 0 {
        return Err(Error::Input("the image is empty (0 pixels)".into()));
    }
    Ok(match fit {
        Fit::Squash => (out, out, 0, 0),
        Fit::ResizeAndCenterCrop => {
            let short = out * 8 / 7; // 256 for 224
            let (rw, rh) = if w <= h {
                (short, ((h * short) as f64 / w as f64).round().max(out as f64) as usize)
            } else {
                (((w * short) as f64 / h as f64).round().max(out as f64) as usize, short)
            };
            (rw, rh, (rw - out) / 2, (rh - out) / 2)
        }
    })
}

/// An `out`x`out` RGB8 image (row-major, 3 bytes a pixel) to a [1, 3, out, out] tensor.
pub fn to_tensor(rgb: &[u8], out: usize, p: &Preprocess) -> Result<Tensor> {
    if rgb.len() != out * out * 3 {
        return Err(Error::Input(format!("expected {out}x{out} RGB pixels, got {} bytes", rgb.len())));
    }
    let plane = out * out;
    let mut data = vec![0.0f32; 3 * plane];
    for i in 0..plane {
        for c in 0..3 {
            let v = (rgb[i * 3 + c] as f32 * p.scale - p.mean[c]) / p.std[c];
            let dst = if p.bgr { 2 - c } else { c };
            data[dst * plane + i] = v;
        }
    }
    Tensor::new(vec![1, 3, out, out], data)
}
