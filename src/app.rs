//! The explorer: owns the state, talks to the inference worker, lays out the panels.

use std::rc::Rc;

use convlens_core::catalog::zoo_file;
use convlens_core::preprocess::Fit;
use gloo::worker::{Spawnable, WorkerBridge};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, HtmlInputElement, HtmlVideoElement, ImageBitmap, MediaStream};
use yew::prelude::*;

use crate::components::branch_view::BranchView;
use crate::components::costs::Costs;
use crate::components::feature_grid::FeatureGrid;
use crate::components::layer_list::LayerList;
use crate::components::top5::Top5;
use crate::components::{bytes, count};
use crate::imaging::{self, crop_preview, decode, frame_pixels, Source};
use crate::model_source::{fetch_with_progress, fetch_zoo};
use crate::protocol::{BackendChoice, FromWorker, LayerMaps, ModelSummary, RunSummary, ToWorker};
use crate::url_state::{self, UrlState};
use crate::worker::InferenceWorker;
use crate::{camera, model_source};

/// Bundled sample photos (scikit-image's data folder, CC0): see www/samples/LICENSE.txt.
const SAMPLES: &[(&str, &str)] = &[("cat", "samples/chelsea.png"), ("coffee", "samples/coffee.png"), ("moped", "samples/motorcycle_left.png")];
const MODELS: &[(&str, &str)] = &[("googlenet", "GoogLeNet (Inception v1)"), ("vgg16", "VGG16"), ("squeezenet", "SqueezeNet 1.1")];

pub enum Msg {
    Worker(FromWorker),
    PickModel(String),
    ConfirmDownload,
    UseUntrained,
    ModelBytes { name: String, bytes: Vec<u8>, note: String },
    DownloadProgress(u64, Option<u64>),
    LoadFailed { arch: Option<String>, error: String },
    OpenFile(web_sys::File),
    ImageReady(ImageBitmap),
    Sample(String),
    SelectLayer(usize),
    SelectChannel(Option<usize>),
    ToggleShared,
    ToggleSort,
    ToggleFit,
    ToggleTheme,
    SetBackend(String),
    Key(KeyboardEvent),
    CameraStart,
    CameraOpened(MediaStream, Vec<(String, String)>),
    CameraStop,
    PickCamera(String),
    ToggleLive,
    CameraFrame,
    ExportPng,
    ExportNpy,
    Error(String),
    DismissError,
}

pub struct App {
    bridge: WorkerBridge<InferenceWorker>,
    model: String,
    summary: Option<Rc<ModelSummary>>,
    status: Option<String>,
    download: Option<(u64, Option<u64>)>,
    confirm_vgg: bool,
    weights_note: String,
    run: Option<RunSummary>,
    /// Passes finished since the page opened (in the page as data-run, for scripts that time it).
    runs_done: u64,
    running: bool,
    progress: Option<(usize, usize)>,
    bitmap: Option<ImageBitmap>,
    input: Option<HtmlCanvasElement>,
    selected: Option<usize>,
    channel: Option<usize>,
    maps: Option<Rc<LayerMaps>>,
    branch_maps: Vec<Rc<LayerMaps>>,
    shared_scale: bool,
    sort_by_mean: bool,
    fit: Fit,
    dark: bool,
    camera: Option<MediaStream>,
    cameras: Vec<(String, String)>,
    video: NodeRef,
    live: bool,
    frame_t0: f64,
    fps: f64,
    error: Option<String>,
    pending_url: UrlState,
    webgpu_note: String,
    /// The backend the worker reported; WebGPU unless unavailable or `?backend=cpu`.
    backend: Option<String>,
    backend_choice: BackendChoice,
    _paste: Option<Closure<dyn FnMut(web_sys::ClipboardEvent)>>,
}

/// Larger than any map of a 224-px input: tiles at full resolution.
const FULL_SIZE_TILES: usize = 256;

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

impl App {
    fn load_model(&mut self, ctx: &Context<Self>, arch: String) {
        self.model = arch.clone();
        self.summary = None;
        self.run = None;
        self.maps = None;
        self.branch_maps.clear();
        self.confirm_vgg = false;
        self.error = None;
        let url = url_state::read();
        if let Some(weights) = url.weights.filter(|_| url.model.as_deref() == Some(arch.as_str())) {
            self.status = Some(format!("Loading weights from {weights}…"));
            let link = ctx.link().clone();
            ctx.link().send_future(async move {
                let progress = move |got, total| link.send_message(Msg::DownloadProgress(got, total));
                match fetch_with_progress(&weights, &progress).await {
                    Ok(bytes) => Msg::ModelBytes { name: weights.clone(), bytes, note: format!("weights from {weights} (not checked against the zoo)") },
                    Err(error) => Msg::LoadFailed { arch: Some(arch), error },
                }
            });
            return;
        }
        let Some(zoo) = zoo_file(&arch) else {
            self.error = Some(format!("unknown model {arch}"));
            return;
        };
        if arch == "vgg16" {
            // 553 MB: the user confirms first (Msg::ConfirmDownload) or picks untrained weights.
            self.confirm_vgg = true;
            self.status = None;
            return;
        }
        self.fetch_zoo_model(ctx, arch, zoo);
    }

    /// Fetches a zoo file (served folder, cache or mirrors) and hands it to the worker.
    fn fetch_zoo_model(&mut self, ctx: &Context<Self>, arch: String, zoo: &'static convlens_core::catalog::ZooFile) {
        self.status = Some(format!("Fetching {} ({} MB)…", zoo.file, zoo.bytes / 1_000_000));
        let link = ctx.link().clone();
        ctx.link().send_future(async move {
            let progress = move |got, total| link.send_message(Msg::DownloadProgress(got, total));
            match fetch_zoo(zoo, &progress).await {
                Ok(f) => {
                    let how = if f.cached { "from the browser cache" } else { "downloaded" };
                    let check = if f.verified { "sha256 verified" } else { "served locally, not the zoo's exact file" };
                    Msg::ModelBytes { name: zoo.file.to_string(), bytes: f.bytes, note: format!("{} {how} from {} ({check})", zoo.file, f.from) }
                }
                Err(error) => Msg::LoadFailed { arch: Some(arch), error },
            }
        });
    }

    /// Sends the whole image to the worker, which crops it as the CLI does; the canvas crop
    /// is only the preview shown under the maps.
    fn send_run(&mut self, src: Source, side: usize) -> Result<(), String> {
        let frame = frame_pixels(&src)?;
        self.input = Some(crop_preview(&src, side, self.fit)?);
        self.running = true;
        self.progress = Some((0, 1));
        self.bridge.send(ToWorker::Run { frame, squash: self.fit == Fit::Squash, time_layers: !self.live });
        Ok(())
    }

    fn run_bitmap(&mut self) -> Result<(), String> {
        let (Some(bmp), Some(s)) = (self.bitmap.clone(), &self.summary) else { return Ok(()) };
        let side = s.input_side;
        self.send_run(Source::Bitmap(&bmp), side)
    }

    fn run_video_frame(&mut self) -> Result<(), String> {
        let (Some(video), Some(s)) = (self.video.cast::<HtmlVideoElement>(), &self.summary) else { return Ok(()) };
        if video.video_width() == 0 {
            return Ok(()); // not playing yet
        }
        let side = s.input_side;
        self.send_run(Source::Video(&video), side)
    }

    /// Asks the worker for the selected layer's maps and, inside a module, its branch outputs.
    fn request_maps(&mut self) {
        let (Some(sel), Some(s), Some(_)) = (self.selected, &self.summary, &self.run) else { return };
        let mut layers = vec![sel];
        if let Some(m) = s.layers[sel].module {
            layers.extend(s.modules[m].branches.iter().filter_map(|b| b.output_layer));
        }
        // Live: tiles at the size they are shown, drawn where the pass ran, no raw values.
        // Frozen: full-size tiles and the values (hover readout, export).
        let (max_side, values) = if self.live {
            let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio()).max(1.0);
            let channels = s.layers[sel].shape.get(1).copied().unwrap_or(1);
            ((crate::components::feature_grid::tile_px(channels) as f64 * dpr).ceil() as usize, false)
        } else {
            (FULL_SIZE_TILES, true)
        };
        self.bridge.send(ToWorker::Maps { layers, max_side, shared: self.shared_scale, values });
    }

    fn select(&mut self, i: usize) {
        let Some(s) = &self.summary else { return };
        if i >= s.layers.len() {
            return;
        }
        if self.selected != Some(i) {
            self.channel = None;
        }
        self.selected = Some(i);
        url_state::write(&UrlState {
            model: Some(self.model.clone()),
            layer: Some(s.layers[i].name.clone()),
            channel: self.channel,
            weights: url_state::read().weights,
        });
        self.request_maps();
    }

    fn open_file(&mut self, ctx: &Context<Self>, file: web_sys::File) {
        let name = file.name();
        let link = ctx.link().clone();
        if name.to_lowercase().ends_with(".onnx") {
            self.status = Some(format!("Reading {name}…"));
            self.summary = None;
            self.run = None;
            self.model = name.clone();
            ctx.link().send_future(async move {
                match gloo::file::futures::read_as_bytes(&gloo::file::Blob::from(file)).await {
                    Ok(bytes) => Msg::ModelBytes { name: name.clone(), bytes, note: format!("{name} (your file)") },
                    Err(e) => Msg::LoadFailed { arch: None, error: format!("cannot read {name}: {e}") },
                }
            });
        } else {
            let _ = link;
            ctx.link().send_future(async move {
                match decode(&file).await {
                    Ok(b) => Msg::ImageReady(b),
                    Err(e) => Msg::Error(format!("{name}: {e}")),
                }
            });
        }
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let bridge = InferenceWorker::spawner()
            .callback(move |out| link.send_message(Msg::Worker(out)))
            .spawn_with_loader("./worker_loader.js");
        // Paste an image from the clipboard anywhere on the page.
        let link = ctx.link().clone();
        let paste = Closure::<dyn FnMut(web_sys::ClipboardEvent)>::new(move |e: web_sys::ClipboardEvent| {
            if let Some(file) = e.clipboard_data().and_then(|d| d.files()).and_then(|f| f.get(0)) {
                link.send_message(Msg::OpenFile(file));
            }
        });
        let _ = imaging::document().add_event_listener_with_callback("paste", paste.as_ref().unchecked_ref());
        let pending_url = url_state::read();
        let dark = web_sys::window()
            .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
            .is_some_and(|m| m.matches());
        let mut app = App {
            bridge,
            model: String::new(),
            summary: None,
            status: None,
            download: None,
            confirm_vgg: false,
            weights_note: String::new(),
            run: None,
            runs_done: 0,
            running: false,
            progress: None,
            bitmap: None,
            input: None,
            selected: None,
            channel: pending_url.channel,
            maps: None,
            branch_maps: Vec::new(),
            shared_scale: false,
            sort_by_mean: false,
            fit: Fit::ResizeAndCenterCrop,
            dark,
            camera: None,
            cameras: Vec::new(),
            video: NodeRef::default(),
            live: false,
            frame_t0: 0.0,
            fps: 0.0,
            error: None,
            webgpu_note: "checking for WebGPU…".into(),
            backend: None,
            backend_choice: BackendChoice::from_key(url_state::read_backend().as_deref()),
            pending_url: pending_url.clone(),
            _paste: Some(paste),
        };
        let model = pending_url.model.filter(|m| MODELS.iter().any(|(k, _)| k == m)).unwrap_or_else(|| "googlenet".into());
        app.load_model(ctx, model);
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Self::Message) -> bool {
        match msg {
            Msg::Worker(FromWorker::Loaded(s)) => {
                self.status = None;
                self.download = None;
                let s = Rc::new(*s);
                let want = self.pending_url.layer.take();
                let first_conv = s.layers.iter().position(|l| l.op.starts_with("Conv"));
                let pick = want.and_then(|n| s.layers.iter().position(|l| l.name == n)).or(first_conv).or(Some(0));
                self.summary = Some(s);
                self.selected = None;
                if let Some(i) = pick {
                    self.select(i);
                }
                if let Some(c) = self.pending_url.channel.take() {
                    self.channel = Some(c);
                }
                if let Err(e) = self.run_bitmap() {
                    self.error = Some(e);
                }
                if self.bitmap.is_none() && self.camera.is_none() {
                    ctx.link().send_message(Msg::Sample("samples/chelsea.png".into()));
                }
            }
            Msg::Worker(FromWorker::Progress { done, total }) => self.progress = Some((done, total)),
            Msg::Worker(FromWorker::Ran(r)) => {
                self.running = false;
                self.progress = None;
                self.run = Some(r);
                self.runs_done += 1;
                self.request_maps();
                if self.live {
                    let t = now_ms();
                    if self.frame_t0 > 0.0 {
                        let inst = 1000.0 / (t - self.frame_t0).max(1.0);
                        self.fps = if self.fps == 0.0 { inst } else { 0.8 * self.fps + 0.2 * inst };
                    }
                    self.frame_t0 = t;
                    ctx.link().send_message(Msg::CameraFrame);
                }
            }
            Msg::Worker(FromWorker::Maps(mut maps)) => {
                let sel = self.selected;
                if let Some(pos) = maps.iter().position(|m| Some(m.layer) == sel) {
                    self.maps = Some(Rc::new(maps.remove(pos)));
                } else {
                    self.maps = None;
                }
                self.branch_maps = maps.into_iter().map(Rc::new).collect();
            }
            Msg::Worker(FromWorker::Backend { name, reason }) => {
                let switched_to_gpu = name.starts_with("WebGPU") && self.run.as_ref().is_some_and(|r| !r.backend.starts_with("WebGPU"));
                self.backend = Some(name);
                self.webgpu_note = reason;
                // The first pass ran on the CPU while the GPU was being set up: run it again there.
                if switched_to_gpu && !self.running && self.camera.is_none() {
                    if let Err(e) = self.run_bitmap() {
                        self.error = Some(e);
                    }
                }
            }
            Msg::Worker(FromWorker::Error(e)) => {
                self.running = false;
                self.progress = None;
                self.status = None;
                self.live = false;
                self.error = Some(e);
            }
            Msg::PickModel(m) => self.load_model(ctx, m),
            Msg::ConfirmDownload => {
                self.confirm_vgg = false;
                let m = self.model.clone();
                if let Some(zoo) = zoo_file(&m) {
                    self.fetch_zoo_model(ctx, m, zoo);
                }
            }
            Msg::UseUntrained => {
                self.confirm_vgg = false;
                self.status = Some(format!("Building {} with seeded random weights…", self.model));
                self.weights_note = "UNTRAINED: built-in architecture with seeded random weights".into();
                self.bridge.send(ToWorker::LoadUntrained { arch: self.model.clone(), backend: self.backend_choice });
            }
            Msg::ModelBytes { name, bytes, note } => {
                self.status = Some(format!("Importing {name} ({})…", bytes_len(&bytes)));
                self.download = None;
                self.weights_note = note;
                self.bridge.send(ToWorker::LoadOnnx { name, bytes, backend: self.backend_choice });
            }
            Msg::DownloadProgress(got, total) => self.download = Some((got, total)),
            Msg::LoadFailed { arch, error } => {
                self.download = None;
                self.status = None;
                self.error = Some(error);
                if let Some(arch) = arch {
                    // Still open: the architecture and its analytics, with untrained weights.
                    self.model = arch;
                    ctx.link().send_message(Msg::UseUntrained);
                }
            }
            Msg::OpenFile(file) => self.open_file(ctx, file),
            Msg::ImageReady(b) => {
                self.bitmap = Some(b);
                if let Err(e) = self.run_bitmap() {
                    self.error = Some(e);
                }
            }
            Msg::Sample(url) => {
                ctx.link().send_future(async move {
                    let noop = |_, _| {};
                    let bytes = match model_source::fetch_with_progress(&url, &noop).await {
                        Ok(b) => b,
                        Err(e) => return Msg::Error(e),
                    };
                    let arr = js_sys::Array::of1(&js_sys::Uint8Array::from(&bytes[..]));
                    let blob = match web_sys::Blob::new_with_u8_array_sequence(&arr) {
                        Ok(b) => b,
                        Err(e) => return Msg::Error(imaging::js_err(e)),
                    };
                    match decode(&blob).await {
                        Ok(b) => Msg::ImageReady(b),
                        Err(e) => Msg::Error(e),
                    }
                });
            }
            Msg::SelectLayer(i) => self.select(i),
            Msg::SelectChannel(c) => {
                self.channel = c;
                if let (Some(s), Some(sel)) = (&self.summary, self.selected) {
                    url_state::write(&UrlState {
                        model: Some(self.model.clone()),
                        layer: Some(s.layers[sel].name.clone()),
                        channel: c,
                        weights: url_state::read().weights,
                    });
                }
            }
            Msg::ToggleShared => {
                // Tiles are coloured by the worker: ask again on the other scale.
                self.shared_scale = !self.shared_scale;
                self.request_maps();
            }
            Msg::ToggleSort => self.sort_by_mean = !self.sort_by_mean,
            Msg::ToggleFit => {
                self.fit = if self.fit == Fit::Squash { Fit::ResizeAndCenterCrop } else { Fit::Squash };
                if let Err(e) = self.run_bitmap() {
                    self.error = Some(e);
                }
            }
            Msg::ToggleTheme => self.dark = !self.dark,
            Msg::SetBackend(b) => {
                // Reload the model so the worker plans it for the chosen backend.
                self.backend_choice = BackendChoice::from_key(Some(&b));
                url_state::write_backend(self.backend_choice.key());
                let m = self.model.clone();
                if MODELS.iter().any(|(k, _)| *k == m) {
                    self.load_model(ctx, m);
                } else {
                    self.error = Some("Backend switched: open the .onnx file again to run it there.".into());
                }
            }
            Msg::Key(e) => {
                let target_is_input = e.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()).is_some();
                if target_is_input {
                    return false;
                }
                let n = self.summary.as_ref().map_or(0, |s| s.layers.len());
                match (e.key().as_str(), self.selected) {
                    ("ArrowDown", Some(i)) if i + 1 < n => {
                        e.prevent_default();
                        self.select(i + 1);
                    }
                    ("ArrowUp", Some(i)) if i > 0 => {
                        e.prevent_default();
                        self.select(i - 1);
                    }
                    _ => return false,
                }
            }
            Msg::CameraStart => {
                let device = None::<String>;
                ctx.link().send_future(async move {
                    match camera::open(device.as_deref()).await {
                        Ok(stream) => Msg::CameraOpened(stream, camera::cameras().await),
                        Err(e) => Msg::Error(e),
                    }
                });
            }
            Msg::PickCamera(id) => {
                if let Some(s) = self.camera.take() {
                    camera::stop(&s);
                }
                ctx.link().send_future(async move {
                    match camera::open(Some(&id)).await {
                        Ok(stream) => Msg::CameraOpened(stream, camera::cameras().await),
                        Err(e) => Msg::Error(e),
                    }
                });
            }
            Msg::CameraOpened(stream, cams) => {
                self.cameras = cams;
                self.camera = Some(stream);
                self.live = true;
                self.frame_t0 = 0.0;
                self.fps = 0.0;
                let link = ctx.link().clone();
                gloo::timers::callback::Timeout::new(300, move || link.send_message(Msg::CameraFrame)).forget();
            }
            Msg::CameraStop => {
                self.live = false;
                if let Some(s) = self.camera.take() {
                    camera::stop(&s);
                }
            }
            Msg::ToggleLive => {
                self.live = !self.live;
                if self.live {
                    ctx.link().send_message(Msg::CameraFrame);
                }
            }
            Msg::CameraFrame => {
                if self.camera.is_some() && !self.running {
                    if let Err(e) = self.run_video_frame() {
                        self.error = Some(e);
                    } else if !self.running && self.live {
                        let link = ctx.link().clone();
                        gloo::timers::callback::Timeout::new(100, move || link.send_message(Msg::CameraFrame)).forget();
                    }
                }
            }
            Msg::ExportPng | Msg::ExportNpy => {
                let (Some(m), Some(s), Some(sel)) = (&self.maps, &self.summary, self.selected) else { return false };
                let Some(data) = &m.data else {
                    self.error = Some("Freeze the camera to export: live mode keeps the values on the worker.".into());
                    return true;
                };
                let name = convlens_core::graph::file_name_for(&s.layers[sel].name);
                let r = if matches!(msg, Msg::ExportNpy) {
                    imaging::npy_bytes(&m.shape, data).and_then(|b| imaging::download(&b, &format!("{name}.npy"), "application/octet-stream"))
                } else {
                    export_grid_png(&m.shape, data).and_then(|b| imaging::download(&b, &format!("{name}.png"), "image/png"))
                };
                if let Err(e) = r {
                    self.error = Some(e);
                }
            }
            Msg::Error(e) => {
                self.error = Some(e);
                self.running = false;
            }
            Msg::DismissError => self.error = None,
        }
        true
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        // Attach the camera stream to the <video> once it exists.
        if let (Some(stream), Some(video)) = (&self.camera, self.video.cast::<HtmlVideoElement>()) {
            if video.src_object().is_none() {
                video.set_src_object(Some(stream));
                let _ = video.play();
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let ondragover = Callback::from(|e: DragEvent| e.prevent_default());
        let ondrop = link.batch_callback(|e: DragEvent| {
            e.prevent_default();
            e.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0)).map(Msg::OpenFile)
        });
        let onfile = link.batch_callback(|e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let f = input.files().and_then(|f| f.get(0));
            input.set_value("");
            f.map(Msg::OpenFile)
        });
        let onmodel = link.callback(|e: Event| Msg::PickModel(e.target_unchecked_into::<web_sys::HtmlSelectElement>().value()));
        let onkey = link.callback(Msg::Key);
        let summary = self.summary.clone();
        let layer = self.selected.and_then(|i| summary.as_ref().map(|s| s.layers[i].clone()));
        let module = layer.as_ref().and_then(|l| l.module).and_then(|m| summary.as_ref().map(|s| s.modules[m].clone()));
        // The worker's latest word on the backend wins over the backend of the last run.
        let backend = self.backend.clone().or_else(|| self.run.as_ref().map(|r| r.backend.clone()));
        html! {
            <div class={classes!("app", if self.dark { "dark" } else { "light" })} {ondragover} {ondrop} onkeydown={onkey} tabindex="0">
                <header class="top">
                    <h1>{ "ConvLens" }<span class="muted small">{ " — inside VGG16 and GoogLeNet" }</span></h1>
                    <label class="control">{ "Model " }
                        <select aria-label="model" onchange={onmodel}>
                            { for MODELS.iter().map(|(k, label)| html! { <option value={*k} selected={self.model == *k}>{ *label }</option> }) }
                            if !MODELS.iter().any(|(k, _)| *k == self.model) && !self.model.is_empty() {
                                <option value={self.model.clone()} selected=true>{ self.model.clone() }</option>
                            }
                        </select>
                    </label>
                    <label class="control file">{ "Open image or .onnx " }
                        <input type="file" data-testid="file-input" aria-label="open an image or an .onnx model" accept="image/*,.onnx" onchange={onfile} />
                    </label>
                    <span class="samples">
                        { for SAMPLES.iter().map(|(label, url)| {
                            let url = url.to_string();
                            html! { <button onclick={link.callback(move |_| Msg::Sample(url.clone()))}>{ *label }</button> }
                        }) }
                    </span>
                    <span class="camera">
                        if self.camera.is_none() {
                            <button data-testid="camera-start" onclick={link.callback(|_| Msg::CameraStart)}>{ "Start camera" }</button>
                        } else {
                            <button onclick={link.callback(|_| Msg::ToggleLive)}>{ if self.live { "Freeze" } else { "Live" } }</button>
                            <button onclick={link.callback(|_| Msg::CameraStop)}>{ "Stop camera" }</button>
                            if self.cameras.len() > 1 {
                                <select aria-label="camera" onchange={link.callback(|e: Event| Msg::PickCamera(e.target_unchecked_into::<web_sys::HtmlSelectElement>().value()))}>
                                    { for self.cameras.iter().map(|(id, label)| html! { <option value={id.clone()}>{ label.clone() }</option> }) }
                                </select>
                            }
                            if self.live { <span class="fps">{ format!("{:.1} fps", self.fps) }</span> }
                        }
                    </span>
                    <span class="badge" data-testid="backend-badge" title={self.webgpu_note.clone()}>
                        { backend.unwrap_or_else(|| "loading…".into()) }
                        <span class="why">{ format!(" · {}", self.webgpu_note) }</span>
                    </span>
                    <label class="control">{ "Backend " }
                        <select aria-label="backend" data-testid="backend-select"
                            onchange={link.callback(|e: Event| Msg::SetBackend(e.target_unchecked_into::<web_sys::HtmlSelectElement>().value()))}>
                            <option value="auto" selected={self.backend_choice == BackendChoice::WebGpu}>{ "WebGPU if available" }</option>
                            <option value="webgpu-f16" selected={self.backend_choice == BackendChoice::WebGpuF16}>{ "WebGPU, f16 weights (half the memory)" }</option>
                            <option value="cpu" selected={self.backend_choice == BackendChoice::Cpu}>{ "CPU (wasm SIMD)" }</option>
                        </select>
                    </label>
                    <button class="theme" aria-label="switch theme" onclick={link.callback(|_| Msg::ToggleTheme)}>{ if self.dark { "☀" } else { "☾" } }</button>
                </header>
                if let Some(e) = &self.error {
                    <div class="error" data-testid="error" role="alert">
                        <span>{ e.clone() }</span>
                        <button aria-label="dismiss" onclick={link.callback(|_| Msg::DismissError)}>{ "×" }</button>
                    </div>
                }
                if self.confirm_vgg {
                    <div class="confirm" role="dialog">
                        <p>{ "VGG16's weights are 553 MB (vgg16-12.onnx). Running it needs about 1.2 GB of memory in this tab: the weights, their import, and ~60 MB of activations." }</p>
                        <button onclick={link.callback(|_| Msg::ConfirmDownload)}>{ "Download 553 MB" }</button>
                        <button onclick={link.callback(|_| Msg::UseUntrained)}>{ "Explore with untrained weights" }</button>
                    </div>
                }
                if let Some(st) = &self.status {
                    <div class="status" aria-live="polite">
                        <span>{ st.clone() }</span>
                        if let Some((got, total)) = self.download {
                            if let Some(t) = total {
                                <progress max={t.to_string()} value={got.to_string()} />
                                <span>{ format!(" {} / {} ({:.0}%)", bytes(got), bytes(t), 100.0 * got as f64 / t.max(1) as f64) }</span>
                            } else {
                                <span>{ format!(" {}", bytes(got)) }</span>
                            }
                        }
                    </div>
                }
                if let Some((done, total)) = self.progress {
                    <div class="status"><span>{ "Running… " }</span><progress max={total.to_string()} value={done.to_string()} /></div>
                }
                if let Some(s) = &summary {
                    <p class={classes!("model-line", s.untrained.then_some("untrained"))}>
                        { format!("{} · {} parameters · {} multiply-adds · preprocessing: {}", s.name, count(s.params), count(s.macs), s.preprocess) }
                        if s.untrained { <strong>{ " · UNTRAINED WEIGHTS" }</strong> }
                        if !self.weights_note.is_empty() { <span class="muted small">{ format!(" · {}", self.weights_note) }</span> }
                        if let Some(r) = &self.run { <span data-backend={r.backend.clone()} data-run={self.runs_done.to_string()}>{ format!(" · last run {:.0} ms", r.total_ms) }</span> }
                    </p>
                }
                <main class="layout">
                    if let Some(s) = &summary {
                        <LayerList summary={s.clone()} selected={self.selected} on_select={link.callback(Msg::SelectLayer)} />
                    }
                    <div class="center">
                        if self.camera.is_some() {
                            <video ref={self.video.clone()} class="camera-view" autoplay=true muted=true playsinline=true aria-label="camera" />
                        }
                        <div class="view-controls">
                            <label><input type="checkbox" checked={self.shared_scale} onchange={link.callback(|_| Msg::ToggleShared)} />{ " one colour scale for all channels" }</label>
                            <label><input type="checkbox" checked={self.sort_by_mean} onchange={link.callback(|_| Msg::ToggleSort)} />{ " sort by mean activation" }</label>
                            <label><input type="checkbox" checked={self.fit == Fit::Squash} onchange={link.callback(|_| Msg::ToggleFit)} />{ " squash instead of centre crop" }</label>
                            <button onclick={link.callback(|_| Msg::ExportPng)} disabled={self.maps.as_ref().is_none_or(|m| m.data.is_none())}>{ "Export PNG" }</button>
                            <button onclick={link.callback(|_| Msg::ExportNpy)} disabled={self.maps.as_ref().is_none_or(|m| m.data.is_none())}>{ "Export .npy" }</button>
                        </div>
                        if let (Some(m), Some(l)) = (&self.maps, &layer) {
                            if m.shape.len() == 4 {
                                <FeatureGrid maps={m.clone()} layer={l.clone()} input={self.input.clone()}
                                    shared_scale={self.shared_scale} sort_by_mean={self.sort_by_mean}
                                    selected_channel={self.channel} on_channel={link.callback(Msg::SelectChannel)} />
                            } else {
                                <section class="panel"><h2>{ format!("{}: {} values (no spatial map)", l.name, m.shape.iter().product::<usize>()) }</h2></section>
                            }
                        } else if summary.is_some() {
                            <section class="panel grid-panel"><p class="muted">{ "Feature maps appear here once an image has run." }</p></section>
                        }
                        if let (Some(m), Some(s)) = (&module, &summary) {
                            <BranchView module={m.clone()} concat_shape={s.layers[m.concat].shape.clone()}
                                maps={self.branch_maps.clone()} on_select={link.callback(Msg::SelectLayer)} />
                        }
                    </div>
                    <div class="right">
                        <Top5 heads={self.run.as_ref().map(|r| r.heads.clone()).unwrap_or_default()}
                            untrained={summary.as_ref().is_some_and(|s| s.untrained)}
                            softmax_applied={self.run.as_ref().is_some_and(|r| r.softmax_applied)} />
                    </div>
                </main>
                if let Some(s) = &summary {
                    <Costs summary={s.clone()} layer_ms={self.run.as_ref().map(|r| r.layer_ms.clone()).unwrap_or_default()}
                        layer_clock={self.run.as_ref().map(|r| r.layer_clock.clone()).unwrap_or_default()}
                        selected={self.selected} on_select={link.callback(Msg::SelectLayer)} />
                }
                <footer class="muted small">{ "Drop an image or an .onnx file anywhere, paste from the clipboard, or use the camera. Weights: ONNX model zoo; sample photos: scikit-image (CC0)." }</footer>
            </div>
        }
    }
}

fn bytes_len(b: &[u8]) -> String {
    bytes(b.len() as u64)
}

/// The whole layer as one PNG grid (each channel on its own scale), drawn on a canvas.
fn export_grid_png(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, String> {
    let [_, c, h, w] = shape[..] else { return Err("not a feature map".into()) };
    let cols = (c as f64).sqrt().ceil() as usize;
    let rows = c.div_ceil(cols);
    let canvas = imaging::new_canvas((cols * (w + 1) + 1) as u32, (rows * (h + 1) + 1) as u32)?;
    let ctx: web_sys::CanvasRenderingContext2d =
        canvas.get_context("2d").map_err(imaging::js_err)?.ok_or("no context")?.dyn_into().map_err(|_| "context")?;
    let tile = imaging::new_canvas(w as u32, h as u32)?;
    for ch in 0..c {
        let plane = &data[ch * h * w..(ch + 1) * h * w];
        let (lo, hi) = convlens_core::viz::value_range(plane);
        imaging::paint_channel(&tile, plane, w, h, lo, hi)?;
        ctx.draw_image_with_html_canvas_element(&tile, (1 + (ch % cols) * (w + 1)) as f64, (1 + (ch / cols) * (h + 1)) as f64)
            .map_err(imaging::js_err)?;
    }
    imaging::canvas_png(&canvas)
}
