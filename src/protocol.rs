//! Typed messages between the UI thread and the inference worker.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Import an .onnx file's bytes, then plan it for `backend`. `split_relus`: as
    /// `SplitRelus`, from the start.
    /// `load` numbers the page's loads: it comes back in `ModelSummary::load`, so the page can
    /// drop the answer to a load it has since replaced.
    LoadOnnx {
        load: u64,
        name: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        backend: BackendChoice,
        split_relus: bool,
    },
    /// Fetch a model file here in the worker (so its bytes never pass through the page or
    /// the message channel), then import and plan it as `LoadOnnx`. Answered by `Download`
    /// while it arrives, then `Fetched` (or `FetchFailed`), then `Loaded`.
    Fetch { load: u64, source: ModelSource, backend: BackendChoice, split_relus: bool },
    /// A built-in architecture with seeded random weights (labelled untrained everywhere).
    LoadUntrained { load: u64, arch: String, backend: BackendChoice, split_relus: bool },
    /// Run every ReLU the importer fused into its Conv/Gemm as its own layer (true), so the
    /// conv's output before the ReLU can be shown, or fused again (false); answered by
    /// `Loaded` with the new layer list.
    SplitRelus(bool),
    /// Run on a decoded photo or camera frame: the worker resizes and crops it (or squashes
    /// it, `squash`) with the core's filter, as the CLI does. `time_layers`: time each layer
    /// even where that costs (a GPU without timestamp queries submits layer by layer); live
    /// mode asks only for the total.
    /// `id` comes back in the answer, so the page knows which picture a result belongs to.
    Run { id: u64, frame: Frame, squash: bool, time_layers: bool },
    /// Run on a live camera frame sent by reference: the `VideoFrame` rides beside this message
    /// (`worker_codec::attach`, key `frame`) and the worker cuts the network's view out of it as
    /// the page would have (centre crop, or squash when `squash`). Answered as `Run`, with the
    /// view in `RunSummary::camera_crop`, or by `FrameRefused`.
    RunCamera { id: u64, frame: u64, squash: bool, time_layers: bool },
    /// Send the last run's maps of these layers (node indices) as colour-mapped tiles at
    /// most `max_side` px a side (one colour scale for all channels when `shared`), and
    /// their raw values when `values` (hover readout, export; live mode goes without).
    Maps { layers: Vec<usize>, max_side: usize, shared: bool, values: bool },
    /// Why the last pass gave `class` on output `head`: a heatmap by `method` ("cam", "gradcam",
    /// "saliency", "guided", "occlusion"), Grad-CAM at `layer` (a node index; None: the last
    /// conv block), with a deletion curve of `deletion_steps` (0: none). Answered by `Explained`.
    Explain { id: u64, head: usize, class: usize, method: String, layer: Option<usize>, deletion_steps: usize },
    /// What channel `channel` of layer `layer` (a node index) looks for: an input optimized over
    /// `steps` steps (core::visualize, seeded) at `size` px a side (0: the model's input size,
    /// also where a reshape before the layer fixes it), answered by `Visualized` every few steps.
    Visualize { id: u64, layer: usize, channel: usize, steps: usize, size: usize },
    /// Stops visualization `id` after its current step.
    StopVisualize { id: u64 },
    /// The user's photos that excite each channel most (core::top_examples), on a CPU engine of
    /// the worker's own beside the passes. Answered by `FromWorker::Index`.
    Index(IndexCmd),
    /// How pixels become the loaded model's input: a key of `Preprocess::CHOICES` (the file
    /// did not say, or said wrong). Answered by `Preprocessed`; the next passes use it.
    Preprocess(String),
    /// Sent first: the BroadcastChannel on which a panicking worker says why before it dies,
    /// so the page can restart it (named per page, so other tabs do not hear it).
    /// `threads`: how many threads the kernels may use (the threaded build starts helpers).
    Init { panic_channel: String, threads: usize },
    /// Panics the worker (crash-test builds only: the recovery's end-to-end test).
    #[cfg(feature = "crash-test")]
    Crash,
    /// Takes this many bytes of the worker's memory and keeps them (crash-test builds only: a
    /// device with little memory, for the out-of-memory end-to-end test).
    #[cfg(feature = "crash-test")]
    Ballast(u64),
}

/// A decoded image at its own size, RGBA row by row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    #[serde(with = "serde_bytes")]
    pub rgba: Vec<u8>,
}

/// What the user picked in the backend switch (kept in `?backend=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    /// Whatever is fast here: WebGPU on a hardware adapter, never on a software or fallback one
    /// (SwiftShader runs a pass 10-100x slower than the wasm path); where the adapter does not
    /// say what it is, one pass is timed on each and the faster kept.
    #[default]
    Auto,
    /// The wasm SIMD CPU path only.
    Cpu,
    /// The CPU path with fully connected layers' weights in half precision, rounded as the
    /// file streams in: VGG16 holds 306 MB of weights instead of 553 (accuracy:
    /// docs/BENCHMARKS.md). Every other layer, and every sum, stays f32.
    CpuF16,
    /// WebGPU on whatever adapter the browser gives, software ones included.
    WebGpu,
    /// As WebGpu, with conv/FC weights stored as f16 where the adapter has shader-f16: half
    /// the GPU memory (VGG16: 277 MB instead of 553), values within 1e-2 of f32.
    WebGpuF16,
}

impl BackendChoice {
    /// The `?backend=` value.
    pub fn key(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Cpu => "cpu",
            BackendChoice::CpuF16 => "cpu-f16",
            BackendChoice::WebGpu => "webgpu",
            BackendChoice::WebGpuF16 => "webgpu-f16",
        }
    }

    pub fn from_key(k: Option<&str>) -> BackendChoice {
        match k {
            Some("cpu") => BackendChoice::Cpu,
            Some("cpu-f16") => BackendChoice::CpuF16,
            Some("webgpu") => BackendChoice::WebGpu,
            Some("webgpu-f16") => BackendChoice::WebGpuF16,
            _ => BackendChoice::Auto,
        }
    }

    /// How the importer holds the weights for this backend.
    pub fn precision(self) -> convlens_core::onnx::WeightPrecision {
        match self {
            BackendChoice::CpuF16 => convlens_core::onnx::WeightPrecision::FcF16,
            _ => convlens_core::onnx::WeightPrecision::F32,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FromWorker {
    Loaded(Box<ModelSummary>),
    Progress { done: usize, total: usize },
    Ran(RunSummary),
    Maps(Vec<LayerMaps>),
    Explained(Explained),
    Visualized(Visualized),
    Index(IndexReply),
    /// Which backend runs the model from now on, and why (e.g. why not WebGPU).
    Backend { name: String, reason: String },
    /// The worker took `Init` and can report a panic.
    Ready,
    /// The loaded model with the preprocessing the user picked.
    Preprocessed(Box<ModelSummary>),
    /// Answers `Init`: how many threads the kernels have, and why only one when more were
    /// asked for; whether camera frames may come by reference (`RunCamera`), or why not; whether
    /// this build's kernels have relaxed SIMD.
    Threads { threads: usize, why: Option<String>, camera_frames: Result<(), String>, relaxed_simd: bool },
    /// `RunCamera` `id` could not be read here (why): the page sends pixels from then on.
    FrameRefused { id: u64, why: String },
    /// A pass (`run`: its id) or maps (None) not computed: no model was loaded, as while a new
    /// one replaces the old (`App::on_skipped` tells that from a lost model).
    Skipped { run: Option<u64>, why: String },
    Error(String),
    /// Bytes of load `load`'s file received so far (of `total` when the server said).
    Download { load: u64, got: u64, total: Option<u64> },
    /// Load `load`'s file is here and being imported: `model` is the key of the model it is
    /// (the asked one, or the fallback that opened instead), with the places that failed first.
    Fetched { load: u64, model: String, file: String, from: String, verified: bool, cached: bool, reasons: Vec<String> },
    /// Load `load`'s file could not be had: one reason per place tried, URL first.
    FetchFailed { load: u64, reasons: Vec<String> },
}

/// Where the worker gets a model file from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelSource {
    /// A URL as given (`?weights=`, or a blob: URL of a file the user opened), unchecked.
    Url { url: String, name: String },
    /// A zoo or catalogue file: the served models/ folder, the cache, then its mirrors in turn
    /// (sha256 checked, then cached). Where it cannot be had, the first of `fall_back` that
    /// this page already has (served or cached) opens instead.
    Zoo { file: convlens_core::catalog::ModelFile, fall_back: Vec<convlens_core::catalog::ModelFile> },
}

/// A feature visualization as it forms (every few steps) and when it is done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Visualized {
    pub id: u64,
    pub step: usize,
    pub steps: usize,
    /// side x side RGBA.
    pub side: usize,
    #[serde(with = "serde_bytes")]
    pub rgba: Vec<u8>,
    /// The channel's mean (before its ReLU where it has one: `before_relu`), at the start and now.
    pub before_relu: bool,
    pub objective_start: f32,
    pub objective: f32,
    pub done: bool,
    pub stopped: bool,
    pub ms: f64,
    /// Where its passes run (the model's engine: WebGPU, or the wasm CPU path).
    pub engine: String,
    pub error: Option<String>,
}

/// A heatmap for one class, or why there is none (e.g. CAM on a model without a pooled head).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explained {
    pub id: u64,
    pub method: String,
    pub head: usize,
    pub class: usize,
    /// [h, w] row-major; the layer's size (CAM, Grad-CAM) or the input's.
    pub h: usize,
    pub w: usize,
    pub heatmap: Vec<f32>,
    /// The tensor CAM or Grad-CAM weighed.
    pub layer: Option<String>,
    pub ms: f64,
    /// The class probability as pixels are deleted most-important first, and its area.
    pub deletion: Vec<f32>,
    pub deletion_auc: Option<f32>,
    /// Where the backward pass ran ("backward on the GPU", or on the CPU and why); None
    /// for the methods without one.
    pub backward: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub name: String,
    pub op: String,
    pub shape: Vec<usize>,
    pub params: u64,
    pub macs: u64,
    pub activation_bytes: u64,
    pub rf_size: [usize; 2],
    pub rf_stride: [usize; 2],
    pub rf_start: [isize; 2],
    pub rf_global: bool,
    /// Index into `modules` when this layer is inside one.
    pub module: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BranchInfo {
    pub label: String,
    pub layers: Vec<usize>,
    /// Layer whose output is the branch's contribution to the concat.
    pub output_layer: Option<usize>,
    pub shape: Vec<usize>,
    pub macs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub name: String,
    pub kind: String,
    pub concat: usize,
    pub branches: Vec<BranchInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadInfo {
    pub name: String,
    pub auxiliary: bool,
    pub layers: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lesson {
    pub title: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// The `load` of the message that loaded this model.
    pub load: u64,
    pub name: String,
    pub untrained: bool,
    pub preprocess: String,
    /// Its key in `Preprocess::CHOICES` (`?prep=`), when it is one of them.
    pub preprocess_key: Option<String>,
    /// The file did not say: the app asks the user to confirm or pick.
    pub preprocess_guessed: bool,
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub bgr: bool,
    pub input_side: usize,
    pub layers: Vec<LayerInfo>,
    pub modules: Vec<ModuleInfo>,
    pub heads: Vec<HeadInfo>,
    pub params: u64,
    pub macs: u64,
    pub activation_bytes: u64,
    pub weight_bytes: u64,
    pub lessons: Vec<Lesson>,
    pub backend: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadResult {
    pub name: String,
    /// Which graph output this head is (what `Explain::head` names).
    pub output: usize,
    pub auxiliary: bool,
    /// (class index, probability), best first.
    pub top: Vec<(usize, f32)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The `Run` this answers.
    pub id: u64,
    pub heads: Vec<HeadResult>,
    /// Per layer, empty when not measured.
    pub layer_ms: Vec<f64>,
    /// How `layer_ms` was measured (CPU clock, GPU timestamps, one submission per layer).
    pub layer_clock: String,
    pub total_ms: f64,
    /// The worker's crop, resize and normalization of the frame before the pass.
    pub preprocess_ms: f64,
    pub backend: String,
    pub softmax_applied: bool,
    /// What the kernels' thread pool did in this pass (all zero on one thread or a GPU).
    pub pool: convlens_core::par::PoolStats,
    /// The picture the pass saw, when the worker cut it from a camera frame (`RunCamera`): the
    /// page shows it under the maps.
    pub camera_crop: Option<Frame>,
    /// The worker's WebAssembly memory after the pass: the most its heap has held since it
    /// started (wasm memory only grows), which is where a model's weights live. 0 natively.
    pub worker_heap_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerMaps {
    pub layer: usize,
    /// The worker's time to draw this layer's tiles (and read its values when asked).
    pub ms: f64,
    pub shape: Vec<usize>,
    pub tiles: LayerTiles,
    /// Raw activations, only when asked for.
    #[serde(with = "f32_bytes")]
    pub data: Option<Vec<f32>>,
}

/// A layer's values as one run of little-endian bytes on the wire: the default codec writes and
/// reads an f32 at a time, and a layer is up to millions of them, decoded on the page's main
/// thread after every pass.
mod f32_bytes {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    /// The values' own bytes where the machine is little-endian (wasm always is): one copy, not
    /// four bytes at a time (a 64-channel 111x111 layer is 3 MB, sent after every photo).
    pub fn serialize<S: Serializer>(v: &Option<Vec<f32>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) if cfg!(target_endian = "little") => s.serialize_some(serde_bytes::Bytes::new(bytemuck::cast_slice::<f32, u8>(v))),
            Some(v) => s.serialize_some(serde_bytes::Bytes::new(&v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>())),
            None => s.serialize_none(),
        }
    }

    struct Values;

    impl<'de> Visitor<'de> for Values {
        type Value = Option<Vec<f32>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a layer's values as little-endian f32 bytes")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_bytes(self)
        }
        // Read where the message's bytes lie (bincode lends them): one copy into the values.
        fn visit_bytes<E: Error>(self, b: &[u8]) -> Result<Self::Value, E> {
            if b.len() % 4 != 0 {
                return Err(E::custom(format!("{} bytes are not whole f32 values", b.len())));
            }
            if cfg!(target_endian = "little") {
                return Ok(Some(bytemuck::pod_collect_to_vec::<u8, f32>(b)));
            }
            Ok(Some(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
        d.deserialize_option(Values)
    }
}

/// `convlens_core::viz::Tiles` on the wire: drawn on the GPU when the pass ran there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerTiles {
    pub tile_h: usize,
    pub tile_w: usize,
    /// Layer pixels per tile pixel, per side.
    pub factor: usize,
    /// One tile_h x tile_w RGBA tile per channel, channel after channel.
    #[serde(with = "serde_bytes")]
    pub rgba: Vec<u8>,
    /// Per channel (min, max, mean) at full resolution.
    pub stats: Vec<[f32; 3]>,
    pub shared: Option<(f32, f32)>,
    pub drawn_on_gpu: bool,
}

impl LayerTiles {
    pub fn new(t: convlens_core::viz::Tiles, drawn_on_gpu: bool) -> LayerTiles {
        LayerTiles { tile_h: t.tile_h, tile_w: t.tile_w, factor: t.factor, rgba: t.rgba, stats: t.stats, shared: t.shared, drawn_on_gpu }
    }

    /// Channel `ch`'s RGBA pixels.
    pub fn tile(&self, ch: usize) -> &[u8] {
        let n = self.tile_h * self.tile_w * 4;
        self.rgba.get(ch * n..(ch + 1) * n).unwrap_or(&[])
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum IndexCmd {
    /// One photo: its name, pixels, and the JPEG of the crop the network sees (kept with it).
    Photo {
        name: String,
        frame: Frame,
        #[serde(with = "serde_bytes")]
        thumb: Vec<u8>,
    },
    /// An index file (`convlens index`'s, or one saved here) for the loaded model.
    Load(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The index as a file.
    Save,
    /// A channel's ranked photos; `layer` is a node index of the loaded graph.
    Top { layer: usize, channel: usize },
    /// Forget the index, here and in this browser's storage.
    Clear,
    /// Keep the index in this browser's storage (IndexedDB), for this model: after a batch of
    /// photos, or an index file opened.
    Keep,
    /// The index this browser kept for the loaded model, if any: answered by `Restored`.
    Restore,
}

/// A ranked photo of a channel: its thumbnail and the unit's receptive field on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExampleHit {
    pub name: String,
    /// The channel's largest value on this photo.
    pub score: f32,
    /// JPEG of the network's crop.
    #[serde(with = "serde_bytes")]
    pub thumb: Vec<u8>,
    /// (top, left, bottom, right) in the crop's pixels, bottom and right exclusive.
    pub patch: [usize; 4],
    /// The crop's side.
    pub side: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IndexReply {
    /// A photo is in (or, with `error`, was skipped): photos indexed this session so far.
    Added { name: String, indexed: usize, error: Option<String>, ms: f64, engine: String },
    /// An index was opened: its photos and settings.
    Opened { photos: usize, k: usize, model: String },
    Saved(#[serde(with = "serde_bytes")] Vec<u8>),
    Top { layer: usize, channel: usize, hits: Vec<ExampleHit> },
    Cleared,
    /// `Keep` done: the photos and the bytes stored.
    Kept { photos: usize, bytes: usize },
    /// `Restore` done: the photos of the kept index now in use (0: none was kept).
    Restored { photos: usize },
    Error(String),
}
