//! Pixels to the input tensor, one path for the CLI, the browser worker (dropped photos and
//! webcam frames) and the tests: decoded pixels are resized with a triangle filter (as PIL and
//! torchvision antialias), centre-cropped, and normalised per model family. Decoding belongs
//! to the caller (the `image` crate natively, `createImageBitmap` in the browser).

use crate::error::{Error, Result};
use crate::frame_view::{crop_frame, Layout, Plane, RawFrame, YuvSpace};
use crate::graph::Preprocess;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fit {
    /// Shorter side to 256 (for 224 inputs: side * 8/7), then the centre crop. The default.
    #[default]
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

/// Where the network's `out` x `out` view of a `w` x `h` picture lies in it, in source pixels
/// (x, y, width, height): `geometry`'s resize and crop (or squash) seen from the source, for a
/// canvas to draw or a filter to sample.
pub fn crop_window(w: usize, h: usize, out: usize, fit: Fit) -> Result<(f64, f64, f64, f64)> {
    let (rw, rh, cx, cy) = geometry(w, h, out, fit)?;
    let (fx, fy) = (w as f64 / rw as f64, h as f64 / rh as f64);
    Ok((cx as f64 * fx, cy as f64 * fy, out as f64 * fx, out as f64 * fy))
}

/// `pixels` hold `width`x`height` pixels of `channels` (3 or 4) bytes.
fn check_pixels(pixels: &[u8], width: usize, height: usize, channels: usize) -> Result<()> {
    let bytes = width.checked_mul(height).and_then(|p| p.checked_mul(channels));
    if !(channels == 3 || channels == 4) || bytes != Some(pixels.len()) {
        return Err(Error::Input(format!("{} bytes are not {width}x{height} pixels of {channels} channels", pixels.len())));
    }
    Ok(())
}

/// The model's view of a `width`x`height` image whose pixels are `channels` (3: RGB, 4: RGBA,
/// alpha dropped) bytes each, row-major: resized as `geometry` says with a triangle filter,
/// then cropped to `side`x`side` RGB8. Only the crop window is resampled
/// (`frame_view::crop_frame`, the live path's filter): a phone's 12 MP photo took 56 ms
/// through the image crate's resize of the whole picture and an RGB copy first, most of it for
/// pixels the crop drops (docs/BENCHMARKS.md). The tests hold it to that resize
/// (`crop_rgb_whole_resize`) within two levels.
pub fn crop_rgb(pixels: &[u8], width: usize, height: usize, channels: usize, side: usize, fit: Fit) -> Result<Vec<u8>> {
    check_pixels(pixels, width, height, channels)?;
    let (rw, rh, cx, cy) = geometry(width, height, side, fit)?;
    if (rw, rh) == (width, height) {
        // Nothing to resize (a live camera frame arrives at the network's size): the window's
        // rows as they are, alpha dropped, without a filter's multiplies by one and zero.
        let mut out = Vec::with_capacity(side * side * 3);
        for row in pixels.chunks_exact(width * channels).skip(cy).take(side) {
            out.extend(row[cx * channels..(cx + side) * channels].chunks_exact(channels).flat_map(|p| [p[0], p[1], p[2]]));
        }
        return Ok(out);
    }
    let layout = if channels == 4 { Layout::Rgba } else { Layout::Rgb };
    let planes = [Plane { offset: 0, stride: width * channels }];
    crop_frame(&RawFrame { layout, width, height, planes: &planes, bytes: pixels, space: YuvSpace::BT601 }, side, fit)
}

/// `crop_rgb` the long way, as it ran until 2026-12-02: the image crate's triangle resize of
/// the whole picture (an RGBA one copied to RGB first), then the crop. The reference that the
/// tests and `examples/frame_view_bench.rs` hold the window-only cut to; no product path uses it.
pub fn crop_rgb_whole_resize(pixels: &[u8], width: usize, height: usize, channels: usize, side: usize, fit: Fit) -> Result<Vec<u8>> {
    check_pixels(pixels, width, height, channels)?;
    let (rw, rh, cx, cy) = geometry(width, height, side, fit)?;
    let rgb: Vec<u8> = pixels.chunks_exact(channels).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let too_big = || Error::TooLarge(format!("{width}x{height} pixels"));
    let (w, h) = (u32::try_from(width).map_err(|_| too_big())?, u32::try_from(height).map_err(|_| too_big())?);
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(too_big)?;
    let resized = image::imageops::resize(&img, rw as u32, rh as u32, image::imageops::FilterType::Triangle);
    Ok(image::imageops::crop_imm(&resized, cx as u32, cy as u32, side as u32, side as u32).to_image().into_raw())
}

/// An `out`x`out` RGB8 image (row-major, 3 bytes a pixel) to a [1, 3, out, out] tensor.
/// The inverse of `to_tensor`: an input tensor [1, 3, side, side] back to RGB pixels (clamped),
/// to show what the network saw under a heatmap.
pub fn to_rgb(x: &Tensor, p: &Preprocess) -> Result<Vec<u8>> {
    let [1, 3, h, w] = x.shape[..] else { return Err(Error::Input(format!("expected a [1, 3, H, W] image tensor, got {:?}", x.shape))) };
    let plane = h * w;
    let mut rgb = vec![0u8; 3 * plane];
    for i in 0..plane {
        for c in 0..3 {
            let src = if p.bgr { 2 - c } else { c };
            let v = (x.data[src * plane + i] * p.std[c] + p.mean[c]) / p.scale;
            rgb[i * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(rgb)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: usize, h: usize, channels: usize) -> Vec<u8> {
        (0..w * h * channels).map(|i| (i * 37 % 251) as u8).collect()
    }

    /// The image crate's resize and crop, which the unresized fast path must equal.
    fn via_image(px: &[u8], w: usize, h: usize, channels: usize, side: usize, fit: Fit) -> Vec<u8> {
        crop_rgb_whole_resize(px, w, h, channels, side, fit).unwrap()
    }

    #[test]
    fn a_frame_at_the_networks_size_is_taken_as_it_is() {
        // A live camera frame: side x side RGBA, squashed onto itself: every pixel, alpha dropped.
        let px = pattern(5, 5, 4);
        let want: Vec<u8> = px.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!(crop_rgb(&px, 5, 5, 4, 5, Fit::Squash).unwrap(), want);
        // Centre-cropped without a resize (side 7: shorter side 8): the window at (0, 1).
        for channels in [3, 4] {
            let px = pattern(8, 10, channels);
            let got = crop_rgb(&px, 8, 10, channels, 7, Fit::ResizeAndCenterCrop).unwrap();
            assert_eq!(got, via_image(&px, 8, 10, channels, 7, Fit::ResizeAndCenterCrop), "{channels} channels");
            assert_eq!(&got[..3], &px[channels * 8..channels * 8 + 3], "row 1, column 0");
        }
    }

    #[test]
    fn a_resized_crop_is_the_image_crates_whole_resize_within_two_levels() {
        // Downscaled (a photo, both orientations), upscaled (smaller than the input), squashed;
        // RGB and RGBA: only the window resampled, in f32, against the image crate's resize of
        // every pixel then the crop. Noise, the hardest case for rounding differences.
        for (w, h, side, fit) in [(1203, 901, 224, Fit::ResizeAndCenterCrop), (480, 640, 224, Fit::ResizeAndCenterCrop), (150, 97, 224, Fit::ResizeAndCenterCrop), (9, 6, 4, Fit::Squash), (700, 300, 227, Fit::Squash)] {
            for channels in [3, 4] {
                let px = pattern(w, h, channels);
                let (got, want) = (crop_rgb(&px, w, h, channels, side, fit).unwrap(), via_image(&px, w, h, channels, side, fit));
                assert_eq!(got.len(), want.len());
                let worst = got.iter().zip(&want).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap();
                assert!(worst <= 2, "{w}x{h} {channels} channels to {side} {fit:?}: {worst} levels");
            }
        }
    }

    #[test]
    fn pixels_that_do_not_match_the_size_are_an_error() {
        assert!(crop_rgb(&[0; 11], 2, 2, 3, 2, Fit::Squash).is_err());
        assert!(crop_rgb(&[0; 8], 2, 2, 2, 2, Fit::Squash).is_err());
        assert!(crop_rgb(&[], usize::MAX, 3, 3, 2, Fit::Squash).is_err(), "an overflowing size");
    }
}
