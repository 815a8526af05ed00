//! What the network looks at and the passes over it: a dropped, pasted or sample photo (or a
//! dropped .onnx file, handed to the model), the fit mode, sending frames to the worker, and
//! the answers coming back.

use convlens_core::image_check;
use convlens_core::preprocess::Fit;
use web_sys::{HtmlCanvasElement, ImageBitmap};
use yew::prelude::*;

use super::model::{Fetching, ModelMsg};
use super::{now_ms, App, Msg};
use crate::imaging::{self, crop_preview, decode, frame_pixels, Source};
use crate::model_source;
use crate::protocol::{ModelSource, RunSummary, ToWorker};

pub enum InputMsg {
    OpenFile(web_sys::File),
    ImageReady(ImageBitmap),
    Sample(String),
    ToggleFit,
    /// An opened photo the browser could not decode.
    Undecodable(String),
    /// Run `id` is still going after `PICTURE_AFTER_MS` (draw its picture) or after
    /// `RUNNING_AFTER_MS` (`say_so`: show "Running…" too).
    StillRunning { id: u64, say_so: bool },
}

/// "Running…" appears only for a pass this slow. A short pass (a photo on the CPU takes ~20 ms)
/// would only flash it, and inserting and removing that line made the page lay out and repaint
/// during the pass, on a core the kernels' threads want. The worker's progress messages start
/// after the same time (`worker::PROGRESS_AFTER_MS`).
const RUNNING_AFTER_MS: u32 = 250;

/// A picture sent to the worker is drawn with its answer, or after this long if the pass is
/// slower: drawing it at once (the new preview, the old answer dimmed) made the browser lay
/// out, paint, raster and composite during a ~10 ms pass, 5-10 ms of work on the cores the
/// kernels' threads want. Within this, the picture and its answer appearing together look
/// instant.
pub(super) const PICTURE_AFTER_MS: u32 = 100;

/// See `App::seen`.
pub(super) struct Seen {
    sent: u64,
    error: Option<String>,
    notice: Option<super::Notice>,
}

#[derive(Default)]
pub struct RunState {
    /// The newest answer; while `running`, it belongs to an older picture and is shown dimmed.
    pub last: Option<RunSummary>,
    /// The id of the newest `Run` sent: the picture on screen.
    pub sent: u64,
    /// Photos opened and still being decoded: what is shown is already older than them.
    pub decoding: usize,
    /// Passes finished since the page opened (in the page as data-run, for scripts that time it).
    pub runs_done: u64,
    pub running: bool,
    pub progress: Option<(usize, usize)>,
    pub bitmap: Option<ImageBitmap>,
    /// Live: the last answer waits for its maps' render (`on_ran`).
    pub drawn_with_maps: bool,
    /// The error shown when the newest Run was sent: its answer clears that one only.
    pub error_when_sent: Option<String>,
    /// The model's view of the image, shown under the feature maps.
    pub input: Option<HtmlCanvasElement>,
    pub fit: Fit,
    /// The per-layer times the costs table shows, and how they were taken: the last pass's,
    /// but in live mode refreshed only every `LIVE_COSTS_EVERY_MS`.
    pub layer_ms: (Vec<f64>, String),
    pub(super) layer_ms_at: f64,
}

/// Live, the costs table's times change this often at most: forty refreshes a second are
/// unreadable, and each re-rendered the table on the page's main thread (about 1 ms a frame),
/// which in live mode is what bounds the frame rate on a machine with few cores.
const LIVE_COSTS_EVERY_MS: f64 = 500.0;

impl App {
    pub(super) fn on_input(&mut self, ctx: &Context<Self>, msg: InputMsg) {
        match msg {
            InputMsg::OpenFile(file) => self.open_file(ctx, file),
            InputMsg::ImageReady(b) => {
                self.run.decoding = self.run.decoding.saturating_sub(1);
                self.run.bitmap = Some(b);
                self.rerun_image();
            }
            InputMsg::Sample(url) => ctx.link().send_future(async move {
                let noop = |_, _| true;
                let bytes = match model_source::fetch_with_progress::<Vec<u8>>(&url, &noop).await {
                    Ok(b) => b,
                    Err(e) => return Msg::Error(e),
                };
                let arr = js_sys::Array::of1(&js_sys::Uint8Array::from(&bytes[..]));
                let blob = match web_sys::Blob::new_with_u8_array_sequence(&arr) {
                    Ok(b) => b,
                    Err(e) => return Msg::Error(imaging::js_err(e)),
                };
                match decode(&blob).await {
                    Ok(b) => Msg::Input(InputMsg::ImageReady(b)),
                    Err(e) => Msg::Error(e),
                }
            }),
            InputMsg::Undecodable(e) => {
                self.run.decoding = self.run.decoding.saturating_sub(1);
                self.error = Some(e);
            }
            InputMsg::StillRunning { .. } => {} // handled in `update`, which may skip the render
            InputMsg::ToggleFit => {
                self.run.fit = if self.run.fit == Fit::Squash { Fit::ResizeAndCenterCrop } else { Fit::Squash };
                self.write_url();
                self.rerun_image();
            }
        }
    }

    /// A finished pass: keep it, ask for the shown layers' maps, and in live mode time the
    /// frame and ask for the next.
    pub(super) fn on_ran(&mut self, ctx: &Context<Self>, mut r: RunSummary) {
        // A camera frame the worker cut out: its view is shown under the maps, as the page's own
        // crop is when the page sends pixels.
        if let Some(view) = r.camera_crop.take() {
            match imaging::new_canvas(view.width, view.height).and_then(|c| imaging::paint_rgba(&c, &view.rgba, view.width as usize, view.height as usize).map(|_| c)) {
                Ok(canvas) => self.run.input = Some(canvas),
                Err(e) => self.error = Some(e),
            }
        }
        // The newest picture's answer ends the run; an older picture's answer is shown dimmed
        // until then (the worker drops pictures replaced while waiting).
        if r.id == self.run.sent {
            self.run.running = false;
            self.run.progress = None;
            // The newest picture answered: a failure from before it was sent no longer describes
            // what is shown; one that came after (a bad file, a denied camera) still does.
            if self.error.is_some() && self.error == self.run.error_when_sent {
                self.error = None;
            }
        }
        let newest = r.id == self.run.sent;
        let t = now_ms();
        // A new model clears `last`: its first answer's times show at once.
        if !self.camera.live || self.run.last.is_none() || t - self.run.layer_ms_at >= LIVE_COSTS_EVERY_MS {
            self.run.layer_ms = (r.layer_ms.clone(), r.layer_clock.clone());
            self.run.layer_ms_at = t;
        }
        self.run.last = Some(r);
        self.run.runs_done += 1;
        // Live, the answer is drawn with its maps, which follow at once: one render of the
        // page a frame instead of two (each a diff of the whole view on the main thread).
        self.run.drawn_with_maps = self.request_maps() && self.camera.live;
        // The heatmap follows the picture.
        if newest {
            self.request_explain();
        }
        if self.camera.live {
            let t = now_ms();
            if self.camera.frame_t0 > 0.0 {
                let inst = 1000.0 / (t - self.camera.frame_t0).max(1.0);
                self.camera.fps = if self.camera.fps == 0.0 { inst } else { 0.8 * self.camera.fps + 0.2 * inst };
            }
            self.camera.frame_t0 = t;
            if let Some(r) = &self.run.last {
                self.camera.stages.preprocess = r.preprocess_ms;
                self.camera.stages.forward = r.total_ms;
            }
            ctx.link().send_message(Msg::Camera(super::live::CameraMsg::Frame));
        }
    }

    fn open_file(&mut self, ctx: &Context<Self>, file: web_sys::File) {
        let name = file.name();
        if name.to_lowercase().ends_with(".onnx") {
            self.model.status = Some(format!("Reading {name}…"));
            self.model.summary = None;
            self.run.last = None;
            self.model.name = name.clone();
            self.model.weights_url = None;
            self.model.may_fall_back = false;
            // The file a shared link was made with: its view comes back.
            if let Some(view) = self.model.awaiting_local.take_if(|v| v.model.as_deref() == Some(name.as_str())) {
                self.model.pending_url.layer = view.layer;
                self.model.pending_url.channel = view.channel;
                self.notice = None;
            }
            self.model.seq += 1;
            self.model.prep = None;
            self.reset_vis();
            self.reset_examples();
            // The worker reads the file itself through a blob: URL: its bytes never cross
            // the message channel.
            match web_sys::Url::create_object_url_with_blob(&file) {
                Ok(blob_url) => {
                    let what = ModelMsg::Fetch { source: ModelSource::Url { url: blob_url.clone(), name: name.clone() }, what: Fetching::Local { name, blob_url } };
                    ctx.link().send_message(Msg::Model(what));
                }
                Err(e) => self.error = Some(format!("cannot read {name}: {}", crate::imaging::js_err(e))),
            }
        } else {
            // A new photo: the last one's error no longer applies, and its answer is now old.
            self.error = None;
            self.run.decoding += 1;
            ctx.link().send_future(async move {
                // What the file is decides the message: not an image, cut short, or too small.
                // Its two ends tell; the browser decodes the rest without it entering wasm.
                let blob = gloo::file::Blob::from(file.clone());
                let (size, end) = (blob.size(), image_check::END_BYTES as u64);
                let mut ends = Vec::new();
                for (from, to) in [(0, end.min(size)), (size.saturating_sub(end), size)] {
                    match gloo::file::futures::read_as_bytes(&blob.slice(from, to)).await {
                        Ok(b) => ends.push(b),
                        Err(e) => return Msg::Input(InputMsg::Undecodable(format!("cannot read {name}: {e}"))),
                    }
                }
                if let Some(problem) = image_check::problem(&name, image_check::sniff_ends(&ends[0], &ends[1])) {
                    return Msg::Input(InputMsg::Undecodable(problem));
                }
                match decode(&file).await {
                    Ok(b) => match image_check::too_small(&name, b.width() as usize, b.height() as usize) {
                        Some(m) => Msg::Input(InputMsg::Undecodable(m)),
                        None => Msg::Input(InputMsg::ImageReady(b)),
                    },
                    Err(e) => Msg::Input(InputMsg::Undecodable(format!("{name}: {e} (damaged, or a format this browser cannot read)"))),
                }
            });
        }
    }

    /// Sends the whole image to the worker, which crops it as the CLI does; the canvas crop
    /// is only the preview shown under the maps.
    pub(super) fn send_run(&mut self, src: Source, side: usize) -> Result<(), String> {
        let t0 = super::now_ms();
        let crop = crop_preview(&src, side, self.run.fit)?;
        // A photo goes whole (the worker resizes it as the CLI does); a camera frame as the
        // crop already drawn for the preview.
        let frame = match src {
            Source::Bitmap(_) => frame_pixels(&src)?,
            Source::Video(_) => imaging::crop_pixels(&crop)?,
        };
        if matches!(src, Source::Bitmap(_)) && frame.rgba.chunks_exact(4).all(|p| p[3] == 0) {
            self.notice = Some(super::Notice::new(
                "This image is fully transparent: there is nothing to see, and the network gets the colour its transparent pixels hold (usually black).",
            ));
        }
        self.run.input = Some(crop);
        self.camera.stages.grab = super::now_ms() - t0;
        let id = self.begin_run();
        // A camera frame is already the network's view (cropped as `fit` says): the worker
        // takes it whole. Cropping it again would feed the network the centre 7/8 of what the
        // preview shows, upsampled.
        let squash = matches!(src, Source::Video(_)) || self.run.fit == Fit::Squash;
        self.bridge.send(ToWorker::Run { id, frame, squash, time_layers: !self.camera.live });
        Ok(())
    }

    /// A picture is about to go to the worker: the run it starts, numbered (the id to send).
    pub(super) fn begin_run(&mut self) -> u64 {
        self.run.running = true;
        self.run.progress = None;
        self.run.sent += 1;
        let (link, id) = (self.link.clone(), self.run.sent);
        for (after, say_so) in [(PICTURE_AFTER_MS, false), (RUNNING_AFTER_MS, true)] {
            let link = link.clone();
            gloo::timers::callback::Timeout::new(after, move || link.send_message(Msg::Input(InputMsg::StillRunning { id, say_so }))).forget();
        }
        self.run.error_when_sent = self.error.clone();
        id
    }

    /// What decides whether a message that may send a picture needs a render now.
    pub(super) fn seen(&self) -> Seen {
        Seen { sent: self.run.sent, error: self.error.clone(), notice: self.notice.clone() }
    }

    /// A picture went to the worker and nothing else changed that must show now: it is drawn
    /// with its answer, or after `PICTURE_AFTER_MS` (see there).
    pub(super) fn picture_in_flight(&self, before: Seen) -> bool {
        self.run.running && self.run.sent != before.sent && self.error == before.error && self.notice == before.notice
    }

    /// The costs table's times: none before a pass of this model (a new model clears `last`).
    pub(super) fn shown_layer_ms(&self, last: Option<&RunSummary>) -> (Vec<f64>, String) {
        if last.is_some() { self.run.layer_ms.clone() } else { Default::default() }
    }

    /// Whether what the top-5 shows is older than the picture the user is looking at.
    pub(super) fn answer_is_stale(&self) -> bool {
        let older = self.run.last.as_ref().is_some_and(|r| r.id != self.run.sent);
        self.run.decoding > 0 || (self.run.running && older)
    }

    /// Runs the current photo again (a new model, fit or backend); errors go to the banner.
    pub(super) fn rerun_image(&mut self) {
        let (Some(bmp), Some(s)) = (self.run.bitmap.clone(), &self.model.summary) else { return };
        let side = s.input_side;
        if let Err(e) = self.send_run(Source::Bitmap(&bmp), side) {
            self.error = Some(e);
        }
    }
}
