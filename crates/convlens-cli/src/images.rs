//! Image files to input tensors: decoding with the `image` crate under limits that refuse a
//! decompression bomb from its header, before any pixel memory is allocated.

use std::io::Cursor;
use std::path::Path;

use anyhow::{bail, Context, Result};
use convlens_core::graph::Preprocess;
use convlens_core::preprocess::{crop_rgb, to_tensor, Fit};
use convlens_core::Tensor;
use image::{ImageDecoder, ImageReader, Limits};

/// 100 megapixels: bigger than any camera photo, far smaller than a 40000x40000 bomb.
pub const MAX_PIXELS: u64 = 100_000_000;
const MAX_SIDE: u32 = 20_000;
const MAX_FILE_BYTES: u64 = 256 << 20;

pub fn load_rgb(path: &Path) -> Result<image::RgbImage> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() == 0 {
        bail!("{} is empty (0 bytes)", path.display());
    }
    if meta.len() > MAX_FILE_BYTES {
        bail!("{} is {} bytes; refusing image files over {MAX_FILE_BYTES}", path.display(), meta.len());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // The content decides the format, not the file name.
    let format = image::guess_format(&bytes)
        .map_err(|_| anyhow::anyhow!("{} is not an image this tool reads (PNG, JPEG, GIF, WebP, BMP)", path.display()))?;
    let reader = || ImageReader::with_format(Cursor::new(&bytes[..]), format);
    let (w, h) = reader().into_dimensions().with_context(|| format!("{}: corrupt or truncated image", path.display()))?;
    if w == 0 || h == 0 {
        bail!("{} has no pixels ({w}x{h})", path.display());
    }
    if w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        bail!("{} is {w}x{h} pixels; refusing images over {MAX_PIXELS} pixels or {MAX_SIDE} px a side", path.display());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4 + (64 << 20));
    let mut r = reader();
    r.limits(limits);
    let corrupt = || format!("{}: corrupt or truncated image", path.display());
    let mut decoder = r.into_decoder().with_context(corrupt)?;
    // Turned upright as the EXIF orientation says, as the browser's createImageBitmap does.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).with_context(corrupt)?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// The image as the model's input tensor, plus the 224x224 RGB crop the model saw.
pub fn to_input(img: &image::RgbImage, side: usize, fit: Fit, p: &Preprocess) -> Result<(Tensor, image::RgbImage)> {
    let rgb = crop_rgb(img.as_raw(), img.width() as usize, img.height() as usize, 3, side, fit)?;
    let crop = image::RgbImage::from_raw(side as u32, side as u32, rgb).expect("side x side RGB");
    Ok((to_tensor(crop.as_raw(), side, p)?, crop))
}
