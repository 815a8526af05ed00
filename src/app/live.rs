//! The webcam: opening and switching cameras, live vs frozen, one frame at a time (the next is
//! grabbed only when the last pass has answered), and the frame rate.

use web_sys::{HtmlVideoElement, MediaStream};
use yew::prelude::*;

use super::{App, Msg};
use crate::camera;
use crate::imaging::Source;

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
}

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
        self.send_run(Source::Video(&video), side)
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
