//! Browser-side pixels: decoding with createImageBitmap (EXIF orientation applied, no colour
//! space conversion, as the CLI decodes), reading a photo's pixels for the worker (which resizes
//! them with the core's filter, like the CLI) or a camera frame's crop (already the network's
//! size: live, the page's canvas scales it), and drawing tiles.

use convlens_core::preprocess::{self, Fit};
use convlens_core::viz::channel_rgba;
use wasm_bindgen::{Clamped, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use crate::protocol::Frame;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlVideoElement, ImageBitmap, ImageData};

pub fn js_err(v: JsValue) -> String {
    v.as_string()
        .or_else(|| js_sys::Reflect::get(&v, &"message".into()).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| format!("{v:?}"))
}

pub fn document() -> web_sys::Document {
    web_sys::window().expect("window").document().expect("document")
}

fn context(canvas: &HtmlCanvasElement) -> Result<CanvasRenderingContext2d, String> {
    canvas
        .get_context("2d")
        .map_err(js_err)?
        .ok_or("no 2d canvas context")?
        .dyn_into::<CanvasRenderingContext2d>()
        .map_err(|_| "not a 2d context".to_string())
}

/// A 2D context kept in CPU memory (`willReadFrequently`): for canvases whose pixels are read
/// back (a frame's) or written whole with putImageData (the tiles). A GPU-backed one would
/// read back synchronously from the GPU, and each tile canvas would be a compositor layer of
/// its own: main-thread work that competes with the pass for the cores.
fn cpu_context(canvas: &HtmlCanvasElement) -> Result<CanvasRenderingContext2d, String> {
    thread_local! {
        // Made once: it is asked for every tile of every live frame.
        static OPTIONS: js_sys::Object = {
            let options = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&options, &"willReadFrequently".into(), &true.into());
            options
        };
        // Each canvas's context, kept as long as the canvas: getContext with an options
        // dictionary cost ~20 us a call in Chromium (1.4 ms a live frame of 64 tiles).
        static CONTEXTS: js_sys::WeakMap = js_sys::WeakMap::new();
    }
    let key: &js_sys::Object = canvas.unchecked_ref();
    if let Some(ctx) = CONTEXTS.with(|m| m.get(key)).dyn_into::<CanvasRenderingContext2d>().ok() {
        return Ok(ctx);
    }
    let ctx = OPTIONS
        .with(|options| canvas.get_context_with_context_options("2d", options))
        .map_err(js_err)?
        .ok_or("no 2d canvas context")?
        .dyn_into::<CanvasRenderingContext2d>()
        .map_err(|_| "not a 2d context".to_string())?;
    CONTEXTS.with(|m| m.set(key, &ctx));
    Ok(ctx)
}

pub fn new_canvas(w: u32, h: u32) -> Result<HtmlCanvasElement, String> {
    let c: HtmlCanvasElement = document().create_element("canvas").map_err(js_err)?.dyn_into().map_err(|_| "canvas")?;
    c.set_width(w);
    c.set_height(h);
    Ok(c)
}

/// Decodes any image the browser reads (a File or Blob): upright as its EXIF orientation
/// says, colours as stored (the CLI converts no colour profile either).
pub async fn decode(blob: &web_sys::Blob) -> Result<ImageBitmap, String> {
    let window = web_sys::window().ok_or("no window")?;
    let options = web_sys::ImageBitmapOptions::new();
    options.set_image_orientation(web_sys::ImageOrientation::FromImage);
    options.set_color_space_conversion(web_sys::ColorSpaceConversion::None);
    options.set_premultiply_alpha(web_sys::PremultiplyAlpha::None);
    let promise = window.create_image_bitmap_with_blob_and_image_bitmap_options(blob, &options).map_err(js_err)?;
    let bmp = JsFuture::from(promise).await.map_err(|e| format!("cannot decode this image: {}", js_err(e)))?;
    let bmp: ImageBitmap = bmp.dyn_into().map_err(|_| "not an image")?;
    if bmp.width() == 0 || bmp.height() == 0 {
        return Err("the image has no pixels".into());
    }
    Ok(bmp)
}

/// Something a canvas can draw: a decoded image or a playing video frame.
pub enum Source<'a> {
    Bitmap(&'a ImageBitmap),
    Video(&'a HtmlVideoElement),
}

/// Photos up to this many pixels reach the worker as they are, so the app's answer is the
/// CLI's; a larger one is first scaled down on a canvas to fit (a 48 MP photo would be 192 MB
/// of RGBA to copy into the worker).
pub const MAX_FRAME_PIXELS: usize = 4096 * 4096;

fn source_size(src: &Source) -> (usize, usize) {
    match src {
        Source::Bitmap(b) => (b.width() as usize, b.height() as usize),
        Source::Video(v) => (v.video_width() as usize, v.video_height() as usize),
    }
}

/// The pixels of `src` for the worker: the whole image, RGBA, at its own size (or scaled to
/// fit `MAX_FRAME_PIXELS`).
pub fn frame_pixels(src: &Source) -> Result<Frame, String> {
    let (w, h) = source_size(src);
    if w == 0 || h == 0 {
        return Err("the image has no pixels".into());
    }
    let scale = ((MAX_FRAME_PIXELS as f64) / (w * h) as f64).sqrt().min(1.0);
    let (fw, fh) = (((w as f64 * scale) as u32).max(1), ((h as f64 * scale) as u32).max(1));
    let canvas = new_canvas(fw, fh)?;
    let ctx = cpu_context(&canvas)?;
    let (dw, dh) = (fw as f64, fh as f64);
    match src {
        Source::Bitmap(b) => ctx.draw_image_with_image_bitmap_and_dw_and_dh(b, 0.0, 0.0, dw, dh),
        Source::Video(v) => ctx.draw_image_with_html_video_element_and_dw_and_dh(v, 0.0, 0.0, dw, dh),
    }
    .map_err(js_err)?;
    let rgba = ctx.get_image_data(0.0, 0.0, dw, dh).map_err(js_err)?.data().0;
    Ok(Frame { width: fw, height: fh, rgba })
}

/// Where the network's view of a `w` x `h` picture lies in it (`preprocess::crop_window`).
pub fn crop_window(w: usize, h: usize, side: usize, fit: Fit) -> Result<(f64, f64, f64, f64), String> {
    preprocess::crop_window(w, h, side, fit).map_err(|e| e.to_string())
}

/// The model's view of `src` for display under the feature maps: resized and centre-cropped
/// (or squashed) onto `side`x`side` by the canvas. The worker computes the input itself.
pub fn crop_preview(src: &Source, side: usize, fit: Fit) -> Result<HtmlCanvasElement, String> {
    let (w, h) = source_size(src);
    let (sx, sy, sw, sh) = crop_window(w, h, side, fit)?;
    let canvas = new_canvas(side as u32, side as u32)?;
    // In CPU memory: a camera frame's crop is read back as the network's input (`crop_pixels`).
    let ctx = cpu_context(&canvas)?;
    ctx.set_image_smoothing_enabled(true);
    // Mipmapped, not bilinear from the full frame: a 640x480 frame shrinks 2x or more.
    // (web-sys has no binding for the property.)
    let _ = js_sys::Reflect::set(&ctx, &"imageSmoothingQuality".into(), &"high".into());
    let s = side as f64;
    match src {
        Source::Bitmap(b) => ctx.draw_image_with_image_bitmap_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(b, sx, sy, sw, sh, 0.0, 0.0, s, s),
        Source::Video(v) => ctx.draw_image_with_html_video_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(v, sx, sy, sw, sh, 0.0, 0.0, s, s),
    }
    .map_err(js_err)?;
    Ok(canvas)
}

/// The pixels of a `crop_preview` canvas, as a frame the worker takes as it is (its size is
/// the network's input, so the worker's crop is the whole of it and nothing is resized): how a
/// live camera frame reaches the worker. One small read instead of the whole frame's, and no
/// resize on the worker (4-5 ms a frame for 640x480).
pub fn crop_pixels(crop: &HtmlCanvasElement) -> Result<Frame, String> {
    let (w, h) = (crop.width(), crop.height());
    let rgba = cpu_context(crop)?.get_image_data(0.0, 0.0, w as f64, h as f64).map_err(js_err)?.data().0;
    Ok(Frame { width: w, height: h, rgba })
}

/// Paints one channel (h x w values) onto `canvas`, `lo..hi` spanning the colour ramp.
pub fn paint_channel(canvas: &HtmlCanvasElement, plane: &[f32], w: usize, h: usize, lo: f32, hi: f32) -> Result<(), String> {
    paint_rgba(canvas, &channel_rgba(plane, lo, hi), w, h)
}

/// Paints w x h RGBA pixels (a tile the worker coloured) onto `canvas`, resized to fit them.
pub fn paint_rgba(canvas: &HtmlCanvasElement, rgba: &[u8], w: usize, h: usize) -> Result<(), String> {
    if rgba.len() != w * h * 4 || rgba.is_empty() {
        return Err(format!("a {w}x{h} tile with {} bytes", rgba.len()));
    }
    if canvas.width() != w as u32 || canvas.height() != h as u32 {
        canvas.set_width(w as u32);
        canvas.set_height(h as u32);
    }
    let data = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), w as u32, h as u32).map_err(js_err)?;
    cpu_context(canvas)?.put_image_data(&data, 0.0, 0.0).map_err(js_err)
}

/// Copies `from` (e.g. the input crop) onto `to`, scaled to fit.
pub fn copy_canvas(from: &HtmlCanvasElement, to: &HtmlCanvasElement) -> Result<(), String> {
    to.set_width(from.width());
    to.set_height(from.height());
    context(to)?.draw_image_with_html_canvas_element(from, 0.0, 0.0).map_err(js_err)
}

/// Offers `bytes` as a download named `name`.
pub fn download(bytes: &[u8], name: &str, mime: &str) -> Result<(), String> {
    let arr = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&arr);
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts).map_err(js_err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_err)?;
    let a: web_sys::HtmlAnchorElement = document().create_element("a").map_err(js_err)?.dyn_into().map_err(|_| "a")?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url).map_err(js_err)
}

/// A canvas's pixels as PNG bytes (through toDataURL).
pub fn canvas_png(canvas: &HtmlCanvasElement) -> Result<Vec<u8>, String> {
    let url = canvas.to_data_url_with_type("image/png").map_err(js_err)?;
    let b64 = url.split(',').nth(1).ok_or("bad data URL")?;
    let bin = web_sys::window().ok_or("no window")?.atob(b64).map_err(js_err)?;
    Ok(bin.chars().map(|c| c as u8).collect())
}

/// An f32 tensor as .npy bytes.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, String> {
    use npyz::WriterBuilder;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::Cursor::new(&mut out))
        .begin_nd()
        .map_err(|e| e.to_string())?;
    w.extend(data.iter().copied()).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    Ok(out)
}
