//! Which model is loaded and how it got here: picking a zoo model or a dropped .onnx file,
//! downloading with progress, VGG16's size confirmation, untrained weights as the fallback.

use std::rc::Rc;

use convlens_core::catalog::ModelFile;
use yew::prelude::*;

use super::{App, Msg, MODELS};
use crate::components::bytes;
use crate::model_source::catalogues;
use crate::protocol::{ModelSource, ModelSummary, ToWorker};
use crate::url_state::UrlState;

pub enum ModelMsg {
    Pick(String),
    ConfirmDownload,
    UseUntrained,
    /// The worker fetches the file itself (its bytes never pass through the page); its
    /// answers come back as `Fetched` or `FetchFailed`, read against `ModelState::fetching`.
    Fetch { source: ModelSource, what: Fetching },
    DownloadProgress(u64, Option<u64>),
    /// The worker has the file of the current load and is importing it.
    Fetched { model: String, file: String, from: String, verified: bool, cached: bool, reasons: Vec<String> },
    FetchFailed(Vec<String>),
    LoadFailed { arch: Option<String>, error: String },
    /// A zoo model's weights could not be had (one reason per place tried): its architecture
    /// opens with untrained weights, and a calm notice says what is missing and how to get it.
    ZooUnavailable { arch: String, reasons: Vec<String> },
    /// The answer of load number `.0`: dropped when another load started since (a file the
    /// user opened while the default model was still downloading wins).
    ForLoad(u64, Box<ModelMsg>),
    /// The catalogues (models/catalog.json, ?catalog=) have been read: the first load starts.
    Catalogues { models: Vec<ModelFile>, errors: Vec<String>, first: String },
    /// Fetch the current model again (after a broken download).
    Retry,
}

/// What the worker is fetching for the current load, so its answer is read the right way.
#[derive(Clone, Debug)]
pub enum Fetching {
    /// `?weights=URL` for the zoo architecture `arch`.
    Weights { arch: String, url: String },
    /// The zoo or catalogue model `arch` (with other models to fall back to on a first visit).
    Zoo { arch: String },
    /// A file the user opened, read by the worker through a blob: URL (revoked once read).
    Local { name: String, blob_url: String },
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
    /// `?weights=` when the loaded model came from it (dropped when another model is picked).
    pub weights_url: Option<String>,
    /// A link made with a local file: its view, applied when a file of that name is opened.
    pub awaiting_local: Option<UrlState>,
    /// First visit without `?model=`: where the default cannot be had, open another model
    /// with real weights instead.
    pub may_fall_back: bool,
    pub fetching: Option<Fetching>,
    /// The preprocessing the user picked for this model (`?prep=`); None: the file's.
    pub prep: Option<String>,
    /// Counts loads started, so a slow one's answer cannot replace a newer one.
    pub seq: u64,
    /// The built-in models merged with the catalogues' (convlens_core::catalog::merged).
    pub catalog: Vec<ModelFile>,
    /// `?catalog=`, kept in the URL.
    pub catalog_url: Option<String>,
}

impl ModelState {
    /// The downloadable file of model `key`, built in or from a catalogue.
    pub fn file(&self, key: &str) -> Option<ModelFile> {
        self.catalog.iter().find(|m| m.model == key).cloned().or_else(|| convlens_core::catalog::zoo_file(key).map(ModelFile::from))
    }

    /// (key, label) of every model the picker offers.
    pub fn choices(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = MODELS.iter().map(|(k, l)| (k.to_string(), l.to_string())).collect();
        for m in self.catalog.iter().filter(|m| !MODELS.iter().any(|(k, _)| *k == m.model)) {
            out.push((m.model.clone(), m.title.clone().unwrap_or_else(|| m.model.clone())));
        }
        out
    }

    fn label(&self, key: &str) -> String {
        self.choices().into_iter().find(|(k, _)| k == key).map_or(key.to_string(), |(_, l)| l)
    }
}

fn note_for(file: &str, from: &str, verified: bool, cached: bool) -> String {
    let how = if cached {
        "from the browser cache"
    } else if from.starts_with("models/") {
        "served next to the app"
    } else {
        "downloaded"
    };
    let check = if verified { "sha256 verified" } else { "served locally, not the zoo's exact file" };
    format!("{file} {how} as {from} ({check})")
}

impl App {
    pub(super) fn on_model(&mut self, ctx: &Context<Self>, msg: ModelMsg) {
        match msg {
            ModelMsg::ForLoad(seq, m) => {
                if seq == self.model.seq {
                    self.on_model(ctx, *m);
                }
            }
            ModelMsg::Pick(m) => {
                // A model the user picks: no fallback, no stale weights=, prep= or notice.
                self.model.may_fall_back = false;
                self.model.pending_url.weights = None;
                self.model.pending_url.prep = None;
                self.notice = None;
                self.load_model(ctx, m);
            }
            ModelMsg::ConfirmDownload => {
                self.model.confirm_vgg = false;
                let m = self.model.name.clone();
                if let Some(zoo) = self.model.file(&m) {
                    self.fetch_zoo_model(ctx, m, zoo);
                }
            }
            ModelMsg::Catalogues { models, errors, first } => {
                self.model.catalog = convlens_core::catalog::merged(&models);
                if !errors.is_empty() {
                    self.set_notice(super::Notice { text: "A model catalogue could not be used; the built-in one is.".into(), details: errors, retry: false });
                }
                // A link's model the catalogues know is theirs, not a file on the sharer's disk.
                let mut first = first;
                if let Some(view) = self.model.awaiting_local.take_if(|v| v.model.as_deref().is_some_and(|m| models.iter().any(|c| c.model == m))) {
                    first = view.model.clone().unwrap_or(first);
                    self.model.pending_url.layer = view.layer;
                    self.model.pending_url.channel = view.channel;
                    self.notice = None;
                }
                self.load_model(ctx, first);
            }
            ModelMsg::Retry => {
                self.notice = None;
                self.model.may_fall_back = false;
                self.load_model(ctx, self.model.name.clone());
            }
            ModelMsg::UseUntrained => {
                self.model.confirm_vgg = false;
                self.model.status = Some(format!("Building {} with seeded random weights…", self.model.name));
                self.model.weights_note = "UNTRAINED: built-in architecture with seeded random weights".into();
                self.bridge.send(ToWorker::LoadUntrained { load: self.model.seq, arch: self.model.name.clone(), backend: self.backend.choice, split_relus: self.view.split_relus });
            }
            ModelMsg::Fetch { source, what } => {
                self.model.fetching = Some(what);
                self.bridge.send(ToWorker::Fetch { load: self.model.seq, source, backend: self.backend.choice, split_relus: self.view.split_relus });
            }
            ModelMsg::Fetched { model, file, from, verified, cached, reasons } => {
                let size = self.model.download.take().map_or(String::new(), |(got, _)| format!(" ({})", bytes(got)));
                self.model.status = Some(format!("Importing {file}{size}…"));
                match self.model.fetching.take() {
                    Some(Fetching::Weights { url, .. }) => self.model.weights_note = format!("weights from {url} (not checked against the zoo)"),
                    Some(Fetching::Local { name, blob_url }) => {
                        let _ = web_sys::Url::revoke_object_url(&blob_url);
                        self.model.weights_note = format!("{name} (your file)");
                    }
                    Some(Fetching::Zoo { arch }) => {
                        if model != arch {
                            // The default's weights could not be had: another zoo model with real
                            // weights that this page already has opened instead.
                            self.set_notice(super::Notice {
                                text: format!(
                                    "{} could not be had here, so {} opened instead (real weights, {}). Pick {} again once its file is reachable.",
                                    self.model.label(&arch),
                                    self.model.label(&model),
                                    if cached { "from this browser's cache" } else { "served next to the app" },
                                    self.model.label(&arch)
                                ),
                                details: reasons,
                                retry: false,
                            });
                            self.model.name = model.clone();
                        }
                        let file = self.model.file(&model).map_or(file, |z| z.file);
                        self.model.weights_note = note_for(&file, &from, verified, cached);
                    }
                    None => {}
                }
            }
            // Out of memory: the same model untrained would not fit either; say so, nothing else.
            ModelMsg::FetchFailed(reasons) if reasons.iter().any(|r| r.contains("does not fit") || r.contains("out of memory")) => {
                if let Some(Fetching::Local { blob_url, .. }) = self.model.fetching.take() {
                    let _ = web_sys::Url::revoke_object_url(&blob_url);
                }
                let error = format!("{}: this tab has not the memory for it (close other tabs, or pick a smaller model). {}", self.model.name, reasons.join("; "));
                ctx.link().send_message(Msg::Model(ModelMsg::LoadFailed { arch: None, error }));
            }
            ModelMsg::FetchFailed(reasons) => match self.model.fetching.take() {
                Some(Fetching::Weights { arch, .. }) => ctx.link().send_message(Msg::Model(ModelMsg::LoadFailed { arch: Some(arch), error: reasons.join("; ") })),
                Some(Fetching::Local { name, blob_url }) => {
                    let _ = web_sys::Url::revoke_object_url(&blob_url);
                    ctx.link().send_message(Msg::Model(ModelMsg::LoadFailed { arch: None, error: format!("cannot read {name}: {}", reasons.join("; ")) }));
                }
                Some(Fetching::Zoo { arch }) => ctx.link().send_message(Msg::Model(ModelMsg::ZooUnavailable { arch, reasons })),
                None => {}
            },
            ModelMsg::DownloadProgress(got, total) => self.model.download = Some((got, total)),
            ModelMsg::ZooUnavailable { arch, reasons } => {
                self.model.download = None;
                self.model.status = None;
                let file = self.model.file(&arch).map_or(arch.clone(), |z| format!("{} ({} MB)", z.file, z.bytes / 1_000_000));
                let built_in = MODELS.iter().any(|(k, _)| *k == arch);
                let text = if built_in {
                    format!(
                        "{}'s weights, {file}, could not be had, so its architecture is shown with untrained weights. To get them: retry, reload when online, or put the file in the models/ folder next to the app (CONVLENS_MODELS=… scripts/serve.sh).",
                        self.model.label(&arch)
                    )
                } else {
                    format!("{} ({file}) could not be had from any of its mirrors. Retry, or open the file itself.", self.model.label(&arch))
                };
                self.set_notice(super::Notice { text, details: reasons, retry: true });
                self.model.name = arch;
                if built_in {
                    ctx.link().send_message(Msg::Model(ModelMsg::UseUntrained));
                }
            }
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
        // A model the page has since replaced (its own load answered after a newer one began).
        if s.load != self.model.seq {
            return;
        }
        self.model.status = None;
        // Layers are numbered anew (ReLUs split or fused): ranked photos are asked for again.
        self.examples.top.clear();
        self.examples.asked = None;
        self.model.download = None;
        let s = Rc::new(s);
        let want = self.model.pending_url.layer.take();
        let first_conv = s.layers.iter().position(|l| l.op.starts_with("Conv"));
        let found = want.as_ref().and_then(|n| s.layers.iter().position(|l| &l.name == n));
        if let (Some(w), None) = (&want, found) {
            let shown = first_conv.map_or("the first layer", |i| s.layers[i].name.as_str());
            self.notice = Some(super::Notice::new(format!("{} has no layer named {w} (from the link): showing {shown}.", s.name)));
        }
        let pick = found.or(first_conv).or(Some(0));
        self.model.summary = Some(s);
        self.view.selected = None;
        if let Some(i) = pick {
            self.select(i);
        }
        if let Some(c) = self.model.pending_url.channel.take() {
            self.apply_channel(c);
        }
        // A link's preprocessing, for the model it came with.
        if let Some(key) = self.model.pending_url.prep.take() {
            if s_key(&self.model.summary) != Some(key.as_str()) {
                self.bridge.send(ToWorker::Preprocess(key.clone()));
            }
            self.model.prep = Some(key);
        }
        self.write_url();
        // Photos ranked for this model on an earlier visit, kept in this browser.
        self.bridge.send(ToWorker::Index(crate::protocol::IndexCmd::Restore));
        self.rerun_image();
        if self.run.bitmap.is_none() && self.camera.stream.is_none() {
            ctx.link().send_message(Msg::Input(super::input::InputMsg::Sample("samples/chelsea.png".into())));
        }
    }

    /// The user picked how pixels become the model's input: the worker uses it from the next
    /// pass, and the URL keeps it.
    pub(super) fn set_preprocess(&mut self, key: String) {
        self.model.prep = Some(key.clone());
        self.bridge.send(ToWorker::Preprocess(key));
        self.write_url();
    }

    /// The worker's answer to a `Preprocess`: the model line says it, and the photo runs again.
    pub(super) fn on_preprocessed(&mut self, s: ModelSummary) {
        if s.load != self.model.seq {
            return;
        }
        self.model.summary = Some(Rc::new(s));
        self.rerun_image();
    }

    pub(super) fn load_model(&mut self, ctx: &Context<Self>, arch: String) {
        self.model.seq += 1;
        self.model.prep = None;
        self.reset_vis();
        self.reset_examples();
        self.model.name = arch.clone();
        self.model.summary = None;
        self.run.last = None;
        self.view.maps = None;
        self.view.branch_maps.clear();
        self.model.confirm_vgg = false;
        self.error = None;
        self.model.weights_url = None;
        let pending = &self.model.pending_url;
        if let Some(weights) = pending.weights.clone().filter(|_| pending.model.as_deref() == Some(arch.as_str())) {
            self.model.weights_url = Some(weights.clone());
            self.model.status = Some(format!("Loading weights from {weights}…"));
            let what = Fetching::Weights { arch, url: weights.clone() };
            ctx.link().send_message(Msg::Model(ModelMsg::Fetch { source: ModelSource::Url { name: weights.clone(), url: weights }, what }));
            return;
        }
        let Some(zoo) = self.model.file(&arch) else {
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

    /// Fetches a zoo file (served folder, cache or mirrors) and hands it to the worker; where
    /// it cannot be had, another zoo model this page has (first visit only), else untrained.
    fn fetch_zoo_model(&mut self, ctx: &Context<Self>, arch: String, zoo: ModelFile) {
        self.model.status = Some(format!("Fetching {} ({} MB)…", zoo.file, zoo.bytes / 1_000_000));
        let fall_back = std::mem::take(&mut self.model.may_fall_back);
        // VGG16 (553 MB) is never opened unasked.
        let fall_back = MODELS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| fall_back && *k != arch && *k != "vgg16")
            .filter_map(|k| self.model.catalog.iter().find(|m| m.model == k).cloned())
            .collect();
        let source = ModelSource::Zoo { file: zoo, fall_back };
        ctx.link().send_message(Msg::Model(ModelMsg::Fetch { source, what: Fetching::Zoo { arch } }));
    }

    /// A notice about the model; a shared link's word about its local file stays in front.
    fn set_notice(&mut self, n: super::Notice) {
        self.notice = match (self.notice.take(), self.model.awaiting_local.is_some()) {
            (Some(old), true) => Some(super::Notice { text: format!("{} {}", old.text, n.text), details: n.details, retry: n.retry }),
            _ => Some(n),
        };
    }

    /// Whether the loaded model is one of the zoo's or a catalogue's (else a file the user opened).
    pub(super) fn is_zoo_model(&self) -> bool {
        self.model.file(&self.model.name).is_some()
    }

    /// Reads the catalogues, then loads `first`.
    pub(super) fn read_catalogues(&mut self, ctx: &Context<Self>, first: String) {
        let extra = self.model.catalog_url.clone();
        self.model.status = Some("Reading the model catalogue…".into());
        ctx.link().send_future(async move {
            let (models, errors) = catalogues(extra.as_deref()).await;
            Msg::Model(ModelMsg::Catalogues { models, errors, first })
        });
    }
}

fn s_key(s: &Option<Rc<ModelSummary>>) -> Option<&str> {
    s.as_ref().and_then(|s| s.preprocess_key.as_deref())
}
