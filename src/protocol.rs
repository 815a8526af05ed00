//! Typed messages between the UI thread and the inference worker.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Import an .onnx file's bytes; `webgpu`: also plan it on WebGPU when the browser has it.
    LoadOnnx { name: String, bytes: Vec<u8>, webgpu: bool },
    /// A built-in architecture with seeded random weights (labelled untrained everywhere).
    LoadUntrained { arch: String, webgpu: bool },
    /// Run on an input_side x input_side RGB8 image (already resized and cropped).
    /// `time_layers`: time each layer even where that costs (a GPU without timestamp
    /// queries submits layer by layer); live mode asks only for the total.
    Run { rgb: Vec<u8>, time_layers: bool },
    /// Send the last run's activation of these layers (node indices).
    Maps { layers: Vec<usize> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FromWorker {
    Loaded(Box<ModelSummary>),
    Progress { done: usize, total: usize },
    Ran(RunSummary),
    Maps(Vec<LayerMaps>),
    /// Which backend runs the model from now on, and why (e.g. why not WebGPU).
    Backend { name: String, reason: String },
    Error(String),
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
    pub name: String,
    pub untrained: bool,
    pub preprocess: String,
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
    pub auxiliary: bool,
    /// (class index, probability), best first.
    pub top: Vec<(usize, f32)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub heads: Vec<HeadResult>,
    /// Per layer, empty when not measured.
    pub layer_ms: Vec<f64>,
    /// How `layer_ms` was measured (CPU clock, GPU timestamps, one submission per layer).
    pub layer_clock: String,
    pub total_ms: f64,
    pub backend: String,
    pub softmax_applied: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerMaps {
    pub layer: usize,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}
