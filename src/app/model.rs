//! Which model is loaded and how it got here: picking a zoo model or a dropped .onnx file,
//! downloading with progress, VGG16's size confirmation, untrained weights as the fallback.

use std::rc::Rc;

use convlens_core::catalog::{zoo_file, ZooFile};
use yew::prelude::*;

use super::{App, Msg, MODELS};
use crate::components::bytes;
use crate::model_source::{fetch_with_progress, fetch_zoo};
use crate::protocol::{ModelSummary, ToWorker};
use crate::url_state::{self, UrlState};

pub enum ModelMsg {
    Pick(String),
    ConfirmDownload,
    UseUntrained,
    Bytes { name: String, bytes: Vec<u8>, note: String },
    DownloadProgress(u64, Option<u64>),
    LoadFailed { arch: Option<String>, error: String },
}

#[derive(Default)]
pub struct ModelState {
    /// A zoo key ("googlenet") or the name of the file the user opened.
    pub name: String,
    pub summary: Option<Rc<ModelSummary>>,
    pub status: Option<String>,
    pub download: Option<(u64, Option<u64>)>,
    pub confirm_vgg: bool,
    pub weights_note: String,
    /// Layer and channel from the URL, applied once the model has loaded.
    pub pending_url: UrlState,
}

impl App {
    pub(super) fn on_model(&mut self, ctx: &Context<Self>, msg: ModelMsg) {
        match msg {
            ModelMsg::Pick(m) => self.load_model(ctx, m),
            ModelMsg::ConfirmDownload => {
                self.model.confirm_vgg = false;
                let m = self.model.name.clone();
                if let Some(zoo) = zoo_file(&m) {
                    self.fetch_zoo_model(ctx, m, zoo);
                }
            }
            ModelMsg::UseUntrained => {
                self.model.confirm_vgg = false;
                self.model.status = Some(format!("Building {} with seeded random weights…", self.model.name));
                self.model.weights_note = "UNTRAINED: built-in architecture with seeded random weights".into();
                self.bridge.send(ToWorker::LoadUntrained { arch: self.model.name.clone(), backend: self.backend.choice, split_relus: self.view.split_relus });
            }
            ModelMsg::Bytes { name, bytes: b, note } => {
                self.model.status = Some(format!("Importing {name} ({})…", bytes(b.len() as u64)));
                self.model.download = None;
                self.model.weights_note = note;
                self.bridge.send(ToWorker::LoadOnnx { name, bytes: b, backend: self.backend.choice, split_relus: self.view.split_relus });
            }
            ModelMsg::DownloadProgress(got, total) => self.model.download = Some((got, total)),
            ModelMsg::LoadFailed { arch, error } => {
                self.model.download = None;
                self.model.status = None;
                self.error = Some(error);
                if let Some(arch) = arch {
                    // Still open: the architecture and its analytics, with untrained weights.
                    self.model.name = arch;
                    ctx.link().send_message(Msg::Model(ModelMsg::UseUntrained));
                }
            }
        }
    }

    /// The worker has the model: pick the layer (from the URL, else the first conv) and run
    /// the current image, or the sample photo when there is none.
    pub(super) fn on_loaded(&mut self, ctx: &Context<Self>, s: ModelSummary) {
        self.model.status = None;
        self.model.download = None;
        let s = Rc::new(s);
        let want = self.model.pending_url.layer.take();
        let first_conv = s.layers.iter().position(|l| l.op.starts_with("Conv"));
        let pick = want.and_then(|n| s.layers.iter().position(|l| l.name == n)).or(first_conv).or(Some(0));
        self.model.summary = Some(s);
        self.view.selected = None;
        if let Some(i) = pick {
            self.select(i);
        }
        if let Some(c) = self.model.pending_url.channel.take() {
            self.view.channel = Some(c);
        }
        self.rerun_image();
        if self.run.bitmap.is_none() && self.camera.stream.is_none() {
            ctx.link().send_message(Msg::Input(super::input::InputMsg::Sample("samples/chelsea.png".into())));
        }
    }

    pub(super) fn load_model(&mut self, ctx: &Context<Self>, arch: String) {
        self.model.name = arch.clone();
        self.model.summary = None;
        self.run.last = None;
        self.view.maps = None;
        self.view.branch_maps.clear();
        self.model.confirm_vgg = false;
        self.error = None;
        let url = url_state::read();
        if let Some(weights) = url.weights.filter(|_| url.model.as_deref() == Some(arch.as_str())) {
            self.model.status = Some(format!("Loading weights from {weights}…"));
            let link = ctx.link().clone();
            ctx.link().send_future(async move {
                let progress = move |got, total| link.send_message(Msg::Model(ModelMsg::DownloadProgress(got, total)));
                Msg::Model(match fetch_with_progress(&weights, &progress).await {
                    Ok(bytes) => ModelMsg::Bytes { name: weights.clone(), bytes, note: format!("weights from {weights} (not checked against the zoo)") },
                    Err(error) => ModelMsg::LoadFailed { arch: Some(arch), error },
                })
            });
            return;
        }
        let Some(zoo) = zoo_file(&arch) else {
            self.error = Some(format!("unknown model {arch}"));
            return;
        };
        if arch == "vgg16" {
            // Its size (the catalogue's) is asked about first: ConfirmDownload, or untrained weights.
            self.model.confirm_vgg = true;
            self.model.status = None;
            return;
        }
        self.fetch_zoo_model(ctx, arch, zoo);
    }

    /// Fetches a zoo file (served folder, cache or mirrors) and hands it to the worker.
    fn fetch_zoo_model(&mut self, ctx: &Context<Self>, arch: String, zoo: &'static ZooFile) {
        self.model.status = Some(format!("Fetching {} ({} MB)…", zoo.file, zoo.bytes / 1_000_000));
        let link = ctx.link().clone();
        ctx.link().send_future(async move {
            let progress = move |got, total| link.send_message(Msg::Model(ModelMsg::DownloadProgress(got, total)));
            Msg::Model(match fetch_zoo(zoo, &progress).await {
                Ok(f) => {
                    let how = if f.cached { "from the browser cache" } else { "downloaded" };
                    let check = if f.verified { "sha256 verified" } else { "served locally, not the zoo's exact file" };
                    ModelMsg::Bytes { name: zoo.file.to_string(), bytes: f.bytes, note: format!("{} {how} from {} ({check})", zoo.file, f.from) }
                }
                Err(error) => ModelMsg::LoadFailed { arch: Some(arch), error },
            })
        });
    }

    /// Whether the loaded model is one of the zoo's (else a file the user opened).
    pub(super) fn is_zoo_model(&self) -> bool {
        MODELS.iter().any(|(k, _)| *k == self.model.name)
    }
}
