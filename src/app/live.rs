//! The webcam: opening and switching cameras, live vs frozen, one frame at a time (the next is
//! grabbed only when the last pass has answered), and the frame rate.

use web_sys::{HtmlVideoElement, MediaStream};
use yew::prelude::*;

use convlens_core::preprocess::Fit;

use super::{App, Msg};
use crate::camera;
use crate::imaging::Source;
use crate::protocol::ToWorker;
use crate::{video_frame, worker_codec};

pub enum CameraMsg {
    Start,
    Opened(MediaStream, Vec<(String, String)>),
    Stop,
    Pick(String),
    ToggleLive,
    Frame,
    /// The frame after `Maps` arrived was drawn (its time since then).
    Painted(f64),
}

/// Where a live frame's time goes, in ms: grabbing it (video to pixels, on the page), the
/// worker's preprocessing and forward pass, drawing the tiles (worker), painting them (page).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stages {
    pub grab: f64,
    pub preprocess: f64,
    pub forward: f64,
    pub tiles: f64,
    pub paint: f64,
}

impl Stages {
    pub fn label(&self) -> String {
        format!(
            "grab {:.0} · prep {:.0} · forward {:.0} · tiles {:.0} · paint {:.0} ms",
            self.grab, self.preprocess, self.forward, self.tiles, self.paint
        )
    }
}

/// How live frames reach the worker.
#[derive(Clone, Debug, PartialEq)]
pub enum FramePath {
    /// As VideoFrames the worker cuts the network's view out of (`video_frame`): the page's
    /// main thread neither scales nor reads a frame's pixels.
    ByReference,
    /// The page crops each frame on a canvas and sends its pixels: why not by reference.
    Copied(String),
}

impl Default for FramePath {
    fn default() -> Self {
        FramePath::Copied("the worker has not started yet".into())
    }
}

impl FramePath {
    /// (the `data-frames` value, the sentence for the stages' tooltip)
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            FramePath::ByReference => ("reference", "Frames reach the worker by reference (a VideoFrame it crops); grab: making and posting it on the page; prep: the worker's crop and normalization".into()),
            FramePath::Copied(why) => ("copied", format!("Frames are cropped and copied on the page ({why}); grab: that crop and copy; prep: the worker's normalization")),
        }
    }
}

#[derive(Default)]
pub struct CameraState {
    pub stream: Option<MediaStream>,
    pub cameras: Vec<(String, String)>,
    pub video: NodeRef,
    pub live: bool,
    pub frame_t0: f64,
    pub fps: f64,
    /// The latest frame's stages (live mode).
    pub stages: Stages,
    /// When the latest maps arrived, until they are painted.
    pub maps_at: Option<f64>,
    pub frames: FramePath,
    /// VideoFrames that could not be made, in a row.
    pub grab_failures: u32,
}

/// After this many frames in a row the video would not give as a VideoFrame, frames are copied.
const GRAB_FAILURES_TO_COPY: u32 = 3;

fn open(ctx: &Context<App>, device: Option<String>) {
    ctx.link().send_future(async move {
        match camera::open(device.as_deref()).await {
            Ok(stream) => Msg::Camera(CameraMsg::Opened(stream, camera::cameras().await)),
            Err(e) => Msg::Error(e),
        }
    });
}

impl App {
    pub(super) fn on_camera(&mut self, ctx: &Context<Self>, msg: CameraMsg) {
        let c = &mut self.camera;
        match msg {
            CameraMsg::Start => open(ctx, None),
            CameraMsg::Pick(id) => {
                if let Some(s) = c.stream.take() {
                    camera::stop(&s);
                }
                open(ctx, Some(id));
            }
            CameraMsg::Opened(stream, cams) => {
                c.cameras = cams;
                c.stream = Some(stream);
                c.live = true;
                c.frame_t0 = 0.0;
                c.fps = 0.0;
                let link = ctx.link().clone();
                gloo::timers::callback::Timeout::new(300, move || link.send_message(Msg::Camera(CameraMsg::Frame))).forget();
            }
            CameraMsg::Stop => {
                c.live = false;
                if let Some(s) = c.stream.take() {
                    camera::stop(&s);
                }
            }
            CameraMsg::ToggleLive => {
                c.live = !c.live;
                if c.live {
                    ctx.link().send_message(Msg::Camera(CameraMsg::Frame));
                }
            }
            CameraMsg::Painted(t) => {
                if let Some(t0) = c.maps_at.take() {
                    c.stages.paint = (t - t0).max(0.0);
                }
            }
            CameraMsg::Frame => {
                if self.camera.stream.is_some() && !self.run.running {
                    if let Err(e) = self.run_video_frame() {
                        self.error = Some(e);
                    } else if !self.run.running && self.camera.live {
                        let link = ctx.link().clone();
                        gloo::timers::callback::Timeout::new(100, move || link.send_message(Msg::Camera(CameraMsg::Frame))).forget();
                    }
                }
            }
        }
    }

    fn run_video_frame(&mut self) -> Result<(), String> {
        let (Some(video), Some(s)) = (self.camera.video.cast::<HtmlVideoElement>(), &self.model.summary) else { return Ok(()) };
        if video.video_width() == 0 {
            return Ok(()); // not playing yet
        }
        let side = s.input_side;
        if self.camera.frames == FramePath::ByReference {
            match self.send_camera_frame(&video) {
                Ok(()) => {
                    self.camera.grab_failures = 0;
                    return Ok(());
                }
                // A frame the video cannot give yet (a camera just switched) is copied once;
                // only a run of failures means this browser cannot.
                Err(why) => {
                    self.camera.grab_failures += 1;
                    if self.camera.grab_failures >= GRAB_FAILURES_TO_COPY {
                        self.camera.frames = FramePath::Copied(why);
                    }
                }
            }
        }
        self.send_run(Source::Video(&video), side)
    }

    /// The current frame to the worker by reference; Err (why) when it cannot be made.
    fn send_camera_frame(&mut self, video: &HtmlVideoElement) -> Result<(), String> {
        let t0 = super::now_ms();
        let frame = video_frame::grab(video)?;
        let key = worker_codec::attach(frame.clone().into());
        let id = self.begin_run();
        let squash = self.run.fit == Fit::Squash;
        self.bridge.send(ToWorker::RunCamera { id, frame: key, squash, time_layers: !self.camera.live });
        // The message holds a clone of it (sharing the camera's buffer): this one is released
        // now. One still waiting to be encoded goes without (the worker refuses the run; the
        // page then sends pixels).
        let _ = worker_codec::take_unsent(key);
        frame.close();
        self.camera.stages.grab = super::now_ms() - t0;
        Ok(())
    }

    /// The worker says whether it can take frames by reference (answering `Init`).
    pub(super) fn set_frame_path(&mut self, worker: Result<(), String>) {
        let page = video_frame::supported(false).map_err(|e| format!("this page: {e}"));
        self.camera.frames = match worker.map_err(|e| format!("the worker: {e}")).and(page) {
            Ok(()) => FramePath::ByReference,
            Err(why) => FramePath::Copied(why),
        };
    }

    /// The worker could not read camera frame `id`: pixels from now on, and the next frame.
    pub(super) fn on_frame_refused(&mut self, ctx: &Context<Self>, id: u64, why: String) {
        self.camera.frames = FramePath::Copied(format!("the worker could not read one: {why}"));
        if id == self.run.sent {
            self.run.running = false;
            self.run.progress = None;
            if self.camera.live {
                ctx.link().send_message(Msg::Camera(CameraMsg::Frame));
            }
        }
    }

    /// The worker skipped pass `run` (or maps) for want of a model. While a new model loads
    /// (this page has no summary then, and sends nothing new) that is a frame that was already
    /// on its way: nothing is wrong, the picture runs again once the model is here
    /// (`on_loaded`) and a live camera's next frame waits for it. With a model loaded here, the
    /// worker lost its own: said, and the camera stops asking.
    pub(super) fn on_skipped(&mut self, ctx: &Context<Self>, run: Option<u64>, why: String) {
        if run.is_some_and(|id| id == self.run.sent) {
            self.run.running = false;
            self.run.progress = None;
        }
        if self.model.summary.is_some() {
            self.camera.live = false;
            self.error = Some(format!("The inference worker has no model ({why}): open the model again."));
            return;
        }
        if self.camera.live && !self.run.running {
            ctx.link().send_message(Msg::Camera(CameraMsg::Frame));
        }
    }

    /// In live mode: the maps just arrived; their paint time is taken at the next frame drawn.
    pub(super) fn time_paint(&mut self, ctx: &Context<Self>, tiles_ms: f64) {
        if !self.camera.live {
            return;
        }
        self.camera.stages.tiles = tiles_ms;
        self.camera.maps_at = Some(super::now_ms());
        let link = ctx.link().clone();
        // rAF's own timestamp is the frame's start, which may precede the maps' arrival.
        let cb = wasm_bindgen::closure::Closure::once_into_js(move |_: f64| link.send_message(Msg::Camera(CameraMsg::Painted(super::now_ms()))));
        if let Some(w) = web_sys::window() {
            use wasm_bindgen::JsCast;
            let _ = w.request_animation_frame(cb.unchecked_ref());
        }
    }

    /// Attaches the camera stream to the <video> once it exists.
    pub(super) fn attach_camera(&self) {
        if let (Some(stream), Some(video)) = (&self.camera.stream, self.camera.video.cast::<HtmlVideoElement>()) {
            if video.src_object().is_none() {
                video.set_src_object(Some(stream));
                let _ = video.play();
            }
        }
    }
}
