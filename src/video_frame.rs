//! A live camera frame handed to the worker by reference: WebCodecs' `VideoFrame`, made on the
//! page from the playing <video> and structured-cloned beside the message's bytes
//! (`worker_codec::attach`). A clone shares the camera's buffer (no pixels are copied), so the
//! page's main thread neither scales the frame nor reads it back. The worker copies the frame's
//! planes out as they are (YUV, as the camera gave them) and cuts the network's view from them
//! in wasm (`core::frame_view`, `view`); a pixel format the core does not read is drawn on an
//! OffscreenCanvas instead (`crop`), which in a worker waits on the browser's other threads
//! (5-24 ms a frame, against 1-3 for the planes). Where either side lacks VideoFrame the page
//! reads the pixels itself, as before (`imaging::crop_pixels`).
//!
//! Bound here rather than through web-sys, which has VideoFrame only behind its unstable-API
//! flag.

use convlens_core::preprocess::Fit;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::imaging::{crop_window, js_err};
use crate::protocol::Frame;

#[wasm_bindgen]
extern "C" {
    pub type VideoFrame;

    #[wasm_bindgen(constructor, catch)]
    fn new_from_video(source: &web_sys::HtmlVideoElement) -> Result<VideoFrame, JsValue>;

    #[wasm_bindgen(method, getter, js_name = displayWidth)]
    pub fn display_width(this: &VideoFrame) -> u32;

    #[wasm_bindgen(method, getter, js_name = displayHeight)]
    pub fn display_height(this: &VideoFrame) -> u32;

    /// WebCodecs' pixel format ("I420", "NV12", "RGBA", ...); None where it is opaque.
    #[wasm_bindgen(method, getter)]
    fn format(this: &VideoFrame) -> Option<String>;

    #[wasm_bindgen(method, getter, js_name = visibleRect)]
    fn visible_rect(this: &VideoFrame) -> JsValue;

    #[wasm_bindgen(method, getter, js_name = colorSpace)]
    fn color_space(this: &VideoFrame) -> JsValue;

    #[wasm_bindgen(method, catch, js_name = allocationSize)]
    fn allocation_size(this: &VideoFrame) -> Result<f64, JsValue>;

    #[wasm_bindgen(method, catch, js_name = copyTo)]
    fn copy_to(this: &VideoFrame, destination: &js_sys::Uint8Array) -> Result<js_sys::Promise, JsValue>;

    /// Releases the camera's buffer now: the capture pipeline has only a few, and a frame left
    /// to the garbage collector stalls it.
    #[wasm_bindgen(method)]
    pub fn close(this: &VideoFrame);

    /// An OffscreenCanvas's 2D context, seen as something that draws a VideoFrame.
    type FrameDrawer;

    #[wasm_bindgen(method, catch, js_name = drawImage)]
    fn draw_frame(this: &FrameDrawer, frame: &VideoFrame, sx: f64, sy: f64, sw: f64, sh: f64, dx: f64, dy: f64, dw: f64, dh: f64) -> Result<(), JsValue>;
}

fn global_has(name: &str) -> bool {
    js_sys::Reflect::has(&js_sys::global(), &name.into()).unwrap_or(false)
}

/// The current frame of a playing video, by reference (the page's side).
pub fn grab(video: &web_sys::HtmlVideoElement) -> Result<VideoFrame, String> {
    if !global_has("VideoFrame") {
        return Err("this browser has no VideoFrame".into());
    }
    VideoFrame::new_from_video(video).map_err(js_err)
}

/// Whether this side (the page, or the worker) can take part: VideoFrame to make or receive
/// frames, and where `crop` runs an OffscreenCanvas with a 2D context; Err says what is missing.
pub fn supported(cropping: bool) -> Result<(), String> {
    if !global_has("VideoFrame") {
        return Err("no VideoFrame".into());
    }
    if cropping {
        with_context(1, |_| Ok(()))?;
    }
    Ok(())
}

thread_local! {
    /// One canvas for every frame (its side changes only with the model).
    static CANVAS: std::cell::RefCell<Option<(web_sys::OffscreenCanvas, web_sys::OffscreenCanvasRenderingContext2d)>> = const { std::cell::RefCell::new(None) };
}

fn with_context<T>(side: u32, f: impl FnOnce(&web_sys::OffscreenCanvasRenderingContext2d) -> Result<T, String>) -> Result<T, String> {
    CANVAS.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_none_or(|(c, _)| c.width() != side || c.height() != side) {
            if !global_has("OffscreenCanvas") {
                return Err("no OffscreenCanvas".into());
            }
            let canvas = web_sys::OffscreenCanvas::new(side, side).map_err(js_err)?;
            // In CPU memory: the pixels are read back every frame.
            let options = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&options, &"willReadFrequently".into(), &true.into());
            let ctx = canvas
                .get_context_with_context_options("2d", &options)
                .map_err(js_err)?
                .ok_or("no 2D context on an OffscreenCanvas")?
                .dyn_into::<web_sys::OffscreenCanvasRenderingContext2d>()
                .map_err(|_| "not a 2D context")?;
            ctx.set_image_smoothing_enabled(true);
            // Mipmapped, as the page's crop (`imaging::crop_preview`): a 640x480 frame shrinks 2x or more.
            let _ = js_sys::Reflect::set(&ctx, &"imageSmoothingQuality".into(), &"high".into());
            *slot = Some((canvas, ctx));
        }
        f(&slot.as_ref().expect("made above").1)
    })
}

/// The network's view of `frame`, `side` x `side` RGBA, resized and centre-cropped (or squashed)
/// by the canvas exactly as the page crops a video frame. Closes `frame` whatever happens.
pub fn crop(frame: VideoFrame, side: usize, fit: Fit) -> Result<Frame, String> {
    let cropped = (|| {
        let (w, h) = (frame.display_width() as usize, frame.display_height() as usize);
        if w == 0 || h == 0 {
            return Err("the camera frame has no pixels".to_string());
        }
        let (sx, sy, sw, sh) = crop_window(w, h, side, fit)?;
        let s = side as f64;
        with_context(side as u32, |ctx| {
            ctx.clear_rect(0.0, 0.0, s, s);
            ctx.unchecked_ref::<FrameDrawer>().draw_frame(&frame, sx, sy, sw, sh, 0.0, 0.0, s, s).map_err(js_err)?;
            let rgba = ctx.get_image_data(0.0, 0.0, s, s).map_err(js_err)?.data().0;
            Ok(Frame { width: side as u32, height: side as u32, rgba })
        })
    })();
    frame.close();
    cropped
}

fn number(object: &JsValue, name: &str) -> Option<f64> {
    js_sys::Reflect::get(object, &name.into()).ok().and_then(|v| v.as_f64())
}

/// The network's view of `frame` (as `crop`), cut from its planes in wasm where the core reads
/// its pixel format, else drawn on a canvas. Closes `frame` whatever happens.
pub async fn view(frame: VideoFrame, side: usize, fit: Fit) -> Result<Frame, String> {
    match planes_view(&frame, side, fit).await {
        Some(view) => {
            frame.close();
            view
        }
        None => crop(frame, side, fit),
    }
}

/// None: not a layout the core reads (or its pixels are not square), so the canvas must.
async fn planes_view(frame: &VideoFrame, side: usize, fit: Fit) -> Option<Result<Frame, String>> {
    use convlens_core::frame_view::{crop_frame, Layout, Plane, RawFrame, YuvSpace};
    let layout = Layout::from_webcodecs(&frame.format()?)?;
    let rect = frame.visible_rect();
    let (w, h) = (number(&rect, "width")? as usize, number(&rect, "height")? as usize);
    if (w, h) != (frame.display_width() as usize, frame.display_height() as usize) {
        return None;
    }
    let space = frame.color_space();
    let matrix = js_sys::Reflect::get(&space, &"matrix".into()).ok().and_then(|m| m.as_string());
    let full_range = js_sys::Reflect::get(&space, &"fullRange".into()).ok().and_then(|r| r.as_bool());
    let copied = async {
        // Into a buffer of its own, not the wasm memory, which may grow (and move) meanwhile.
        let buffer = js_sys::Uint8Array::new_with_length(frame.allocation_size().map_err(js_err)? as u32);
        let layouts = wasm_bindgen_futures::JsFuture::from(frame.copy_to(&buffer).map_err(js_err)?).await.map_err(js_err)?;
        let planes: Vec<Plane> = js_sys::Array::from(&layouts)
            .iter()
            .map(|l| Plane { offset: number(&l, "offset").unwrap_or(0.0) as usize, stride: number(&l, "stride").unwrap_or(0.0) as usize })
            .collect();
        Ok::<_, String>((buffer.to_vec(), planes))
    };
    let (bytes, planes) = match copied.await {
        Ok(c) => c,
        Err(e) => return Some(Err(format!("cannot copy the camera frame: {e}"))),
    };
    let raw = RawFrame { layout, width: w, height: h, planes: &planes, bytes: &bytes, space: YuvSpace::from_webcodecs(matrix.as_deref(), full_range) };
    Some(crop_frame(&raw, side, fit).map_err(|e| e.to_string()).map(|rgb| Frame {
        width: side as u32,
        height: side as u32,
        rgba: rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
    }))
}
