//! The explorer: owns the state, talks to the inference worker, lays out the panels. State is
//! split by concern, each with its messages and handlers in its own file: `model` (what is
//! loaded), `input` (the photo and the passes over it), `explore` (what is shown), `live` (the
//! webcam); the backend choice and the error banner live here.

mod examples;
mod explain;
mod explore;
mod input;
mod live;
mod model;
pub(crate) mod visualize;
mod worker_link;

use gloo::worker::WorkerBridge;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::components::branch_view::BranchView;
use crate::components::costs::Costs;
use crate::components::feature_grid::FeatureGrid;
use crate::components::header::{Header, HeaderAction};
use crate::components::layer_list::LayerList;
use crate::components::status_bar::{LastRun, StatusBar};
use crate::components::top5::Top5;
use crate::imaging;
use crate::protocol::{BackendChoice, FromWorker};
use crate::url_state;
use crate::worker::InferenceWorker;
use convlens_core::preprocess::Fit;
use examples::{ExamplesMsg, ExamplesState};
use explain::{ExplainMsg, ExplainState};
use explore::{ViewMsg, ViewState};
use input::{InputMsg, RunState};
use live::{CameraMsg, CameraState};
use model::{ModelMsg, ModelState};
use visualize::{VisMsg, VisState};

/// Bundled sample photos (scikit-image's data folder, CC0): see www/samples/LICENSE.txt.
const SAMPLES: &[(&str, &str)] = &[("cat", "samples/chelsea.png"), ("coffee", "samples/coffee.png"), ("moped", "samples/motorcycle_left.png")];
const MODELS: &[(&str, &str)] = &[("googlenet", "GoogLeNet (Inception v1)"), ("vgg16", "VGG16"), ("squeezenet", "SqueezeNet 1.1")];

pub enum Msg {
    Worker(FromWorker),
    Model(ModelMsg),
    Input(InputMsg),
    View(ViewMsg),
    Explain(ExplainMsg),
    Vis(VisMsg),
    Examples(ExamplesMsg),
    Camera(CameraMsg),
    SetBackend(String),
    SetThreads(usize),
    /// The worker panicked (its message); it is restarted.
    WorkerCrashed(String),
    /// The threaded worker spawned n-th has not answered `Init` in time.
    ThreadsSilent(u32),
    Error(String),
    DismissError,
    DismissNotice,
    /// How pixels become the model's input (a key of `Preprocess::CHOICES`).
    SetPreprocess(String),
}

/// A calm line under the top bar (not an error): what the app did instead of what was asked,
/// and the reasons, one per line (e.g. per mirror that failed).
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub text: String,
    pub details: Vec<String>,
    /// Offer to try again (a download that broke).
    pub retry: bool,
}

impl Notice {
    pub fn new(text: impl Into<String>) -> Self {
        Notice { text: text.into(), details: Vec::new(), retry: false }
    }
}

/// What the worker runs on: the user's choice (kept in `?backend=`) and the worker's report.
/// The kernels' threads: what the page planned, and what the worker started.
struct ThreadState {
    plan: worker_link::ThreadPlan,
    have: Option<usize>,
    /// Whether the running worker's kernels have relaxed SIMD, once it said.
    relaxed_simd: Option<bool>,
    /// `?threads=N`, kept in the URL.
    asked: Option<usize>,
    /// Workers spawned so far: a late timeout for an earlier one is ignored.
    spawned: u32,
    /// The counts the picker offers (the browser's cores do not change while the page is open).
    choices: Vec<usize>,
}

struct BackendState {
    choice: BackendChoice,
    /// The backend the worker reported; WebGPU unless unavailable or `?backend=cpu`.
    name: Option<String>,
    note: String,
}

pub struct App {
    bridge: WorkerBridge<InferenceWorker>,
    /// For timers set outside `update` (the delayed "Running…").
    link: yew::html::Scope<App>,
    model: ModelState,
    run: RunState,
    view: ViewState,
    explain: ExplainState,
    vis: VisState,
    examples: ExamplesState,
    camera: CameraState,
    backend: BackendState,
    error: Option<String>,
    notice: Option<Notice>,
    crash: worker_link::CrashListener,
    threads: ThreadState,
    /// Crash-test builds: panic the worker once the first model has loaded.
    #[cfg(feature = "crash-test")]
    crash_pending: bool,
    _paste: Option<Closure<dyn FnMut(web_sys::ClipboardEvent)>>,
    /// Arrow keys and Escape from page load, wherever the focus is (form controls keep theirs).
    _keys: Option<Closure<dyn FnMut(web_sys::KeyboardEvent)>>,
    on: Handlers,
}

/// The children's callbacks, made once: Yew compares a callback by address, so one made in
/// `view` re-renders its component on every render of the page (the costs table, the layer
/// list and the top-5 each pass, several times), main-thread work that shares the cores with
/// the pass.
struct Handlers {
    select_layer: Callback<usize>,
    pick_class: Callback<(usize, usize)>,
    header: Callback<HeaderAction>,
    dismiss_error: Callback<()>,
    dismiss_notice: Callback<()>,
    retry: Callback<()>,
    download: Callback<()>,
    untrained: Callback<()>,
    preprocess: Callback<String>,
}

impl Handlers {
    fn new(link: &yew::html::Scope<App>) -> Self {
        Handlers {
            select_layer: link.callback(|i| Msg::View(ViewMsg::SelectLayer(i))),
            pick_class: link.callback(|(h, c)| Msg::Explain(ExplainMsg::Pick(h, c))),
            header: link.callback(App::on_header),
            dismiss_error: link.callback(|_| Msg::DismissError),
            dismiss_notice: link.callback(|_| Msg::DismissNotice),
            retry: link.callback(|_| Msg::Model(ModelMsg::Retry)),
            download: link.callback(|_| Msg::Model(ModelMsg::ConfirmDownload)),
            untrained: link.callback(|_| Msg::Model(ModelMsg::UseUntrained)),
            preprocess: link.callback(Msg::SetPreprocess),
        }
    }
}

const THEME_KEY: &str = "convlens-theme";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The theme the user last picked, else the system's.
fn initial_dark() -> bool {
    match storage().and_then(|s| s.get_item(THEME_KEY).ok().flatten()).as_deref() {
        Some("dark") => true,
        Some("light") => false,
        _ => web_sys::window().and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten()).is_some_and(|m| m.matches()),
    }
}

pub(crate) fn remember_theme(dark: bool) {
    if let Some(s) = storage() {
        let _ = s.set_item(THEME_KEY, if dark { "dark" } else { "light" });
    }
}

pub(crate) fn now_ms() -> f64 {
    thread_local! {
        // Looked up once: it is read several times a live frame.
        static PERFORMANCE: Option<web_sys::Performance> = web_sys::window().and_then(|w| w.performance());
    }
    PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now()))
}

impl App {
    fn on_worker(&mut self, ctx: &Context<Self>, msg: FromWorker) {
        match msg {
            FromWorker::Loaded(s) => {
                self.on_loaded(ctx, *s);
                #[cfg(feature = "crash-test")]
                self.maybe_crash_for_test();
            }
            FromWorker::Ready => {}
            FromWorker::Preprocessed(s) => self.on_preprocessed(*s),
            FromWorker::FrameRefused { id, why } => self.on_frame_refused(ctx, id, why),
            FromWorker::Skipped { run, why } => self.on_skipped(ctx, run, why),
            FromWorker::Threads { threads, why, camera_frames, relaxed_simd } => {
                self.set_frame_path(camera_frames);
                self.threads.have = Some(threads);
                self.threads.relaxed_simd = Some(relaxed_simd);
                if let Some(why) = why {
                    self.threads.plan.why_one = Some(why);
                }
            }
            FromWorker::Progress { done, total } => self.run.progress = Some((done, total)),
            FromWorker::Ran(r) => self.on_ran(ctx, r),
            FromWorker::Maps(maps) => self.on_maps(ctx, maps),
            FromWorker::Explained(e) => self.on_explained(e),
            FromWorker::Visualized(v) => self.on_visualized(v),
            FromWorker::Index(r) => self.on_index_reply(ctx, r),
            FromWorker::Backend { name, reason } => {
                let switched_to_gpu = name.starts_with("WebGPU") && self.run.last.as_ref().is_some_and(|r| !r.backend.starts_with("WebGPU"));
                self.backend.name = Some(name);
                self.backend.note = reason;
                // The first pass ran on the CPU while the GPU was being set up: run it again there.
                if switched_to_gpu && !self.run.running && self.camera.stream.is_none() {
                    self.rerun_image();
                }
            }
            FromWorker::Download { load, got, total } if load == self.model.seq => self.on_model(ctx, ModelMsg::DownloadProgress(got, total)),
            FromWorker::Fetched { load, model, file, from, verified, cached, reasons } if load == self.model.seq => {
                self.on_model(ctx, ModelMsg::Fetched { model, file, from, verified, cached, reasons })
            }
            FromWorker::FetchFailed { load, reasons } if load == self.model.seq => self.on_model(ctx, ModelMsg::FetchFailed(reasons)),
            // An older load's, replaced since.
            FromWorker::Download { .. } | FromWorker::Fetched { .. } | FromWorker::FetchFailed { .. } => {}
            FromWorker::Error(e) => {
                self.run.running = false;
                self.run.progress = None;
                self.model.status = None;
                self.camera.live = false;
                self.error = Some(e);
            }
        }
    }

    fn set_backend(&mut self, ctx: &Context<Self>, key: String) {
        // Reload the model so the worker plans it for the chosen backend.
        self.backend.choice = BackendChoice::from_key(Some(&key));
        self.write_url();
        if self.is_zoo_model() {
            self.load_model(ctx, self.model.name.clone());
        } else {
            self.error = Some("Backend switched: open the .onnx file again to run it there.".into());
        }
    }

    fn on_header(action: HeaderAction) -> Msg {
        match action {
            HeaderAction::PickModel(m) => Msg::Model(ModelMsg::Pick(m)),
            HeaderAction::OpenFile(f) => Msg::Input(InputMsg::OpenFile(f)),
            HeaderAction::Sample(url) => Msg::Input(InputMsg::Sample(url)),
            HeaderAction::CameraStart => Msg::Camera(CameraMsg::Start),
            HeaderAction::CameraStop => Msg::Camera(CameraMsg::Stop),
            HeaderAction::PickCamera(id) => Msg::Camera(CameraMsg::Pick(id)),
            HeaderAction::ToggleLive => Msg::Camera(CameraMsg::ToggleLive),
            HeaderAction::SetBackend(b) => Msg::SetBackend(b),
            HeaderAction::SetThreads(n) => Msg::SetThreads(n),
            HeaderAction::ToggleTheme => Msg::View(ViewMsg::ToggleTheme),
        }
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let crash = worker_link::CrashListener::new(ctx);
        let url = url_state::read();
        let asked = url.threads;
        let threads = ThreadState { plan: worker_link::ThreadPlan::new(asked, url.simd), have: None, relaxed_simd: None, asked, spawned: 0, choices: worker_link::ThreadPlan::choices() };
        let bridge = worker_link::spawn(ctx, &crash, &threads.plan);
        #[cfg(feature = "crash-test")]
        if let Some(bytes) = worker_link::ballast_requested() {
            bridge.send(crate::protocol::ToWorker::Ballast(bytes));
        }
        // Paste an image from the clipboard anywhere on the page.
        let link = ctx.link().clone();
        let paste = Closure::<dyn FnMut(web_sys::ClipboardEvent)>::new(move |e: web_sys::ClipboardEvent| {
            if let Some(file) = e.clipboard_data().and_then(|d| d.files()).and_then(|f| f.get(0)) {
                link.send_message(Msg::Input(InputMsg::OpenFile(file)));
            }
        });
        let _ = imaging::document().add_event_listener_with_callback("paste", paste.as_ref().unchecked_ref());
        let link = ctx.link().clone();
        let keys = Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(move |e: web_sys::KeyboardEvent| link.send_message(Msg::View(ViewMsg::Key(e))));
        let _ = imaging::document().add_event_listener_with_callback("keydown", keys.as_ref().unchecked_ref());
        let mut url = url_state::read();
        let mut notice = None;
        let zoo = |m: &str| MODELS.iter().any(|(k, _)| *k == m);
        let mut awaiting_local = None;
        match url.model.clone() {
            // A link made with a file from the sharer's disk: say so, and apply its view when
            // the user opens a file of that name.
            Some(file) if url.local || !zoo(&file) => {
                notice = Some(Notice::new(format!(
                    "This link was made with {file}, a model file on the sharer's computer: a link cannot carry it. Open or drop {file} here to see that view; meanwhile GoogLeNet is shown."
                )));
                awaiting_local = Some(url.clone());
                url.layer = None;
                url.channel = None;
            }
            _ => {}
        }
        let explicit = url.model.as_deref().is_some_and(|m| zoo(m) || url.catalog.is_some());
        let mut app = App {
            bridge,
            link: ctx.link().clone(),
            model: ModelState {
                pending_url: url.clone(),
                awaiting_local,
                may_fall_back: !explicit,
                catalog: convlens_core::catalog::merged(&[]),
                catalog_url: url.catalog.clone(),
                ..Default::default()
            },
            run: RunState { fit: if url.squash { Fit::Squash } else { Fit::ResizeAndCenterCrop }, ..Default::default() },
            view: ViewState {
                dark: initial_dark(),
                shared_scale: url.shared_scale,
                sort_by_mean: url.sort_by_mean,
                split_relus: url.split_relus,
                ..Default::default()
            },
            explain: ExplainState::default(),
            vis: VisState::default(),
            examples: ExamplesState::default(),
            camera: CameraState::default(),
            backend: BackendState { choice: BackendChoice::from_key(url.backend.as_deref()), name: None, note: "checking for WebGPU…".into() },
            error: None,
            notice,
            crash,
            threads,
            #[cfg(feature = "crash-test")]
            crash_pending: worker_link::crash_requested(),
            _paste: Some(paste),
            _keys: Some(keys),
            on: Handlers::new(ctx.link()),
        };
        // A catalogue's model is known only once the catalogues are read.
        let model = url.model.filter(|m| zoo(m) || url.catalog.is_some()).unwrap_or_else(|| "googlenet".into());
        app.read_catalogues(ctx, model);
        app.watch_threads(ctx);
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Self::Message) -> bool {
        let mut render = true;
        match msg {
            Msg::Worker(m) => {
                let ran = matches!(m, FromWorker::Ran(_));
                self.on_worker(ctx, m);
                render = !(ran && self.run.drawn_with_maps);
            }
            Msg::Model(m) => self.on_model(ctx, m),
            Msg::Input(InputMsg::StillRunning { id, say_so }) => {
                // Nothing to draw when that pass has ended (the usual case): no re-render.
                render = self.run.running && self.run.sent == id && self.run.progress.is_none();
                if render && say_so {
                    self.run.progress = Some((0, 1));
                }
            }
            Msg::Input(m) => {
                let seen = self.seen();
                self.on_input(ctx, m);
                render = !self.picture_in_flight(seen);
            }
            Msg::View(m) => render = self.on_view(m),
            Msg::Explain(m) => self.on_explain(m),
            Msg::Vis(m) => self.on_vis(m),
            Msg::Examples(m) => self.on_examples(ctx, m),
            Msg::Camera(m) => {
                let seen = self.seen();
                self.on_camera(ctx, m);
                render = !self.picture_in_flight(seen);
            }
            Msg::SetBackend(b) => self.set_backend(ctx, b),
            Msg::WorkerCrashed(why) => self.on_worker_crashed(ctx, why),
            Msg::ThreadsSilent(n) => self.on_threads_silent(ctx, n),
            Msg::SetThreads(n) => self.set_threads(ctx, n),
            Msg::Error(e) => {
                self.error = Some(e);
                self.run.running = false;
            }
            Msg::DismissError => self.error = None,
            Msg::DismissNotice => self.notice = None,
            Msg::SetPreprocess(key) => self.set_preprocess(key),
        }
        // The enlarged channel's ranked photos, once there is an index.
        self.ask_top();
        render
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        self.attach_camera();
        if std::mem::take(&mut self.view.scroll_to_selected) {
            explore::scroll_selected_into_view();
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let ondragover = link.batch_callback(|e: DragEvent| {
            e.prevent_default();
            Some(Msg::View(ViewMsg::Dragging(true)))
        });
        // Leaving the window (no element entered) ends the drag cue.
        let ondragleave = link.batch_callback(|e: DragEvent| e.related_target().is_none().then_some(Msg::View(ViewMsg::Dragging(false))));
        let ondrop = link.batch_callback(|e: DragEvent| {
            e.prevent_default();
            let files: Vec<web_sys::File> = e.data_transfer().and_then(|d| d.files()).map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default();
            let mut msgs = vec![Msg::View(ViewMsg::Dragging(false))];
            // Several photos at once are a collection to rank; one file is a photo, a model or an index.
            let photos = files.iter().filter(|f| f.type_().starts_with("image/")).count();
            if photos > 1 {
                msgs.push(Msg::Examples(ExamplesMsg::Add(files)));
            } else if let Some(f) = files.into_iter().next() {
                msgs.push(if f.name().ends_with(".idx") { Msg::Examples(ExamplesMsg::Open(f)) } else { Msg::Input(InputMsg::OpenFile(f)) });
            }
            msgs
        });
        let summary = self.model.summary.clone();
        let run = self.run.last.as_ref();
        let (layer_ms, layer_clock) = self.shown_layer_ms(run);
        // The worker's latest word on the backend wins over the backend of the last run.
        let backend = self.backend.name.clone().or_else(|| run.map(|r| r.backend.clone()));
        html! {
            <div class={classes!("app", if self.view.dark { "dark" } else { "light" })} {ondragover} {ondragleave} {ondrop}>
                <Header models={std::rc::Rc::new(self.model.choices())} samples={SAMPLES} model={self.model.name.clone()} camera_on={self.camera.stream.is_some()}
                    live={self.camera.live} fps={self.camera.fps} stages={self.camera.stages.label()} frames={self.camera.frames.describe()} cameras={self.camera.cameras.clone()} {backend}
                    backend_note={self.backend.note.clone()} threads={self.threads.plan.label(self.threads.have)} simd={self.threads.plan.simd_label(self.threads.relaxed_simd)} thread_choices={self.threads.choices.clone()} threads_wanted={self.threads.plan.wanted} backend_choice={self.backend.choice} dark={self.view.dark}
                    on_action={self.on.header.clone()} />
                <StatusBar error={self.error.clone()} notice={self.notice.clone()} confirm_vgg={self.model.confirm_vgg} status={self.model.status.clone()}
                    download={self.model.download} progress={self.run.progress} summary={summary.clone()}
                    weights_note={self.model.weights_note.clone()} last_run={run.map(|r| LastRun { backend: r.backend.clone(), ms: r.total_ms, runs: self.run.runs_done, pool: r.pool, heap: r.worker_heap_bytes, picture_ms: (!self.camera.live).then_some(r.preprocess_ms) })}
                    local_file={!self.is_zoo_model() && self.model.weights_url.is_none()}
                    on_dismiss={self.on.dismiss_error.clone()} on_dismiss_notice={self.on.dismiss_notice.clone()}
                    on_retry={self.on.retry.clone()}
                    on_download={self.on.download.clone()}
                    on_untrained={self.on.untrained.clone()}
                    on_preprocess={self.on.preprocess.clone()} />
                <main class="layout">
                    if let Some(s) = &summary {
                        <LayerList summary={s.clone()} selected={self.view.selected} on_select={self.on.select_layer.clone()} />
                    }
                    { self.center(ctx) }
                    <div class="right">
                        <Top5 heads={run.map(|r| r.heads.clone()).unwrap_or_default()} untrained={summary.as_ref().is_some_and(|s| s.untrained)}
                            softmax_applied={run.is_some_and(|r| r.softmax_applied)} stale={self.answer_is_stale()}
                            picked={self.explain.target} on_pick={self.on.pick_class.clone()} />
                        { self.explain_panel(ctx) }
                    </div>
                </main>
                if let Some(s) = &summary {
                    <Costs summary={s.clone()} {layer_ms} {layer_clock}
                        selected={self.view.selected} on_select={self.on.select_layer.clone()} />
                }
                <footer class="muted small">{ "Drop an image or an .onnx file anywhere, paste from the clipboard, or use the camera. Weights: ONNX model zoo; sample photos: scikit-image (CC0)." }</footer>
                if self.view.dragging {
                    <div class="drop-cue" aria-hidden="true"><span>{ "Drop a photo or an .onnx model anywhere" }</span></div>
                }
            </div>
        }
    }
}

impl App {
    /// The heatmap for the class clicked in the top-5, when there is one.
    fn explain_panel(&self, ctx: &Context<Self>) -> Html {
        let Some((_, class)) = self.explain.target else { return html! {} };
        let link = ctx.link();
        let label = convlens_core::imagenet_labels().get(class).copied().unwrap_or("?").to_string();
        let e = &self.explain;
        html! {
            <crate::components::explain_panel::ExplainPanel {label} method={e.method.clone()} opacity={e.opacity} at_selected_layer={e.at_selected_layer}
                result={e.result.clone()} running={e.running} forward_ms={self.run.last.as_ref().map(|r| r.total_ms)} input={self.run.input.clone()} canvas={e.canvas.clone()}
                on_method={link.callback(|m| Msg::Explain(ExplainMsg::Method(m)))} on_opacity={link.callback(|o| Msg::Explain(ExplainMsg::Opacity(o)))}
                on_selected_layer={link.callback(|b| Msg::Explain(ExplainMsg::AtSelectedLayer(b)))} on_close={link.callback(|_| Msg::Explain(ExplainMsg::Close))}
                on_png={link.callback(|_| Msg::Explain(ExplainMsg::ExportPng))} on_raw_png={link.callback(|_| Msg::Explain(ExplainMsg::ExportRawPng))} on_npy={link.callback(|_| Msg::Explain(ExplainMsg::ExportNpy))} />
        }
    }

    /// The middle column: camera, view controls, the selected layer's maps, its module's branches.
    fn center(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let v = &self.view;
        let summary = &self.model.summary;
        let layer = v.selected.and_then(|i| summary.as_ref().map(|s| s.layers[i].clone()));
        let module = layer.as_ref().and_then(|l| l.module).and_then(|m| summary.as_ref().map(|s| s.modules[m].clone()));
        let no_values = v.maps.as_ref().is_none_or(|m| m.data.is_none());
        let layer_index = v.selected.unwrap_or(0);
        let not_a_map = v.maps.as_ref().is_none_or(|m| m.shape.len() != 4);
        let view_msg = |m: fn() -> ViewMsg| link.callback(move |_: Event| Msg::View(m()));
        html! {
            <div class="center">
                if self.camera.stream.is_some() {
                    <video ref={self.camera.video.clone()} class="camera-view" autoplay=true muted=true playsinline=true aria-label="camera" />
                }
                <div class="view-controls">
                    <label><input type="checkbox" data-testid="shared-scale" checked={v.shared_scale} onchange={view_msg(|| ViewMsg::ToggleShared)} />{ " one colour scale for all channels" }</label>
                    <label><input type="checkbox" data-testid="sort-mean" checked={v.sort_by_mean} onchange={view_msg(|| ViewMsg::ToggleSort)} />{ " sort by mean activation" }</label>
                    <label><input type="checkbox" data-testid="split-relus" checked={v.split_relus} onchange={view_msg(|| ViewMsg::ToggleSplitRelus)} />{ " convs before their ReLU" }</label>
                    <label><input type="checkbox" data-testid="squash" checked={self.run.fit == Fit::Squash} onchange={link.callback(|_| Msg::Input(InputMsg::ToggleFit))} />{ " squash instead of centre crop" }</label>
                    <button onclick={link.callback(|_: MouseEvent| Msg::View(ViewMsg::ExportPng))} disabled={no_values || not_a_map}
                        title={if not_a_map { "this layer is not a spatial map" } else { "every channel as one PNG grid" }}>{ "Export PNG" }</button>
                    <button onclick={link.callback(|_: MouseEvent| Msg::View(ViewMsg::ExportNpy))} disabled={no_values}>{ "Export .npy" }</button>
                </div>
                if summary.is_some() {
                    { self.examples_bar(ctx) }
                }
                if let (Some(m), Some(l)) = (&v.maps, &layer) {
                    if m.shape.len() == 4 {
                        <FeatureGrid maps={m.clone()} layer={l.clone()} input={self.run.input.clone()} examples={self.top_photos()}
                            shared_scale={v.shared_scale} sort_by_mean={v.sort_by_mean}
                            selected_channel={v.channel} on_channel={link.callback(|c| Msg::View(ViewMsg::SelectChannel(c)))}
                            on_visualize={link.callback(move |c| Msg::Vis(VisMsg::Start(layer_index, c)))} />
                    } else {
                        <section class="panel"><h2>{ format!("{}: {} values (no spatial map)", l.name, m.shape.iter().product::<usize>()) }</h2></section>
                    }
                } else if summary.is_some() {
                    <section class="panel grid-panel"><p class="muted">{ "Feature maps appear here once an image has run." }</p></section>
                }
                if let Some((layer, channel)) = self.vis.target.clone() {
                    <crate::components::vis_panel::VisPanel {layer} {channel} latest={self.vis.latest.clone()}
                        on_stop={link.callback(|_| Msg::Vis(VisMsg::Stop))} on_close={link.callback(|_| Msg::Vis(VisMsg::Close))}
                        on_png={link.callback(|_| Msg::Vis(VisMsg::ExportPng))} />
                }
                if let (Some(m), Some(s)) = (&module, summary) {
                    <BranchView module={m.clone()} concat_shape={s.layers[m.concat].shape.clone()}
                        maps={v.branch_maps.clone()} on_select={self.on.select_layer.clone()}
                        visuals={if self.vis.branch_module == Some(m.concat) { self.branch_visuals() } else { Vec::new() }}
                        visual_targets={if self.vis.branch_module == Some(m.concat) { self.vis.branches.clone() } else { Vec::new() }} on_visualize={link.callback(|_| Msg::Vis(VisMsg::Branches))} />
                }
            </div>
        }
    }
}
