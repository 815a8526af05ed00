//! Why the network said a class: the class the user clicked in the top-5 (main or aux head),
//! the method, the heatmap the worker sent for the newest picture, and its exports. The
//! heatmap follows each new photo, and the webcam frame by frame where the method is cheap.

use std::rc::Rc;

use yew::prelude::*;

use super::App;
use crate::imaging;
use crate::protocol::{Explained, ToWorker};

pub enum ExplainMsg {
    /// (head, class) from a click in the top-5.
    Pick(usize, usize),
    Method(String),
    Opacity(f64),
    /// Grad-CAM at the layer selected in the layer list instead of the last conv block.
    AtSelectedLayer(bool),
    Close,
    ExportPng,
    /// The heatmap alone, colour-mapped at the input's size.
    ExportRawPng,
    ExportNpy,
}

pub struct ExplainState {
    pub target: Option<(usize, usize)>,
    pub method: String,
    pub opacity: f64,
    pub at_selected_layer: bool,
    /// The id of the newest Explain sent.
    pub sent: u64,
    pub result: Option<Rc<Explained>>,
    pub running: bool,
    /// The overlay canvas, for the PNG export.
    pub canvas: NodeRef,
}

impl Default for ExplainState {
    fn default() -> Self {
        ExplainState { target: None, method: "gradcam".into(), opacity: 0.6, at_selected_layer: false, sent: 0, result: None, running: false, canvas: NodeRef::default() }
    }
}

/// Gradient methods cheap enough for every webcam frame (one partial backward pass).
fn cheap(method: &str) -> bool {
    matches!(method, "cam" | "gradcam")
}

/// Deletion-curve steps: a frozen picture gets the faithfulness score, live frames do not.
const DELETION_STEPS: usize = 10;

impl App {
    pub(super) fn on_explain(&mut self, msg: ExplainMsg) {
        match msg {
            ExplainMsg::Pick(head, class) => {
                self.explain.target = Some((head, class));
                self.request_explain();
            }
            ExplainMsg::Method(m) => {
                self.explain.method = m;
                self.request_explain();
            }
            ExplainMsg::Opacity(o) => self.explain.opacity = o,
            ExplainMsg::AtSelectedLayer(on) => {
                self.explain.at_selected_layer = on;
                self.request_explain();
            }
            ExplainMsg::Close => {
                self.explain.target = None;
                self.explain.result = None;
                self.explain.running = false;
            }
            ExplainMsg::ExportPng => {
                let r = self.explain.canvas.cast::<web_sys::HtmlCanvasElement>().ok_or("no heatmap shown".to_string()).and_then(|c| imaging::canvas_png(&c));
                if let Err(e) = r.and_then(|b| imaging::download(&b, &format!("{}-heatmap.png", self.explain.method), "image/png")) {
                    self.error = Some(e);
                }
            }
            ExplainMsg::ExportRawPng => {
                let Some(e) = self.explain.result.clone() else { return };
                let side = self.run.input.as_ref().map_or(224, |c| c.width());
                let r = imaging::new_canvas(side, side)
                    .and_then(|c| crate::components::explain_panel::paint(&c, None, &e, 1.0).map(|_| c))
                    .and_then(|c| imaging::canvas_png(&c))
                    .and_then(|b| imaging::download(&b, &format!("{}-heatmap-raw.png", e.method), "image/png"));
                if let Err(e) = r {
                    self.error = Some(e);
                }
            }
            ExplainMsg::ExportNpy => {
                let Some(e) = &self.explain.result else { return };
                let r = imaging::npy_bytes(&[e.h, e.w], &e.heatmap).and_then(|b| imaging::download(&b, &format!("{}-heatmap.npy", e.method), "application/octet-stream"));
                if let Err(e) = r {
                    self.error = Some(e);
                }
            }
        }
    }

    /// Asks for the current target's heatmap on the last pass (again after each new picture).
    pub(super) fn request_explain(&mut self) {
        let (Some((head, class)), Some(_)) = (self.explain.target, &self.run.last) else { return };
        if self.camera.live && !cheap(&self.explain.method) {
            return;
        }
        let layer = (self.explain.at_selected_layer && self.explain.method == "gradcam").then_some(self.view.selected).flatten();
        self.explain.sent += 1;
        self.explain.running = true;
        self.bridge.send(ToWorker::Explain {
            id: self.explain.sent,
            head,
            class,
            method: self.explain.method.clone(),
            layer,
            deletion_steps: if self.camera.live { 0 } else { DELETION_STEPS },
        });
    }

    pub(super) fn on_explained(&mut self, e: Explained) {
        if e.id == self.explain.sent {
            self.explain.running = false;
        }
        if e.id <= self.explain.sent {
            self.explain.result = Some(Rc::new(e));
        }
    }
}
