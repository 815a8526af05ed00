//! ConvLens inference core: bytes in, tensors out. No threads, no filesystem, so the same
//! code runs natively (CLI, tests) and in the browser (wasm32 with simd128).
//!
//! - `onnx`: the importer (ONNX protobuf to graph IR)
//! - `graph`: the IR, shape inference and structure detection (modules, branches, heads)
//! - `kernels`: scalar reference kernels and the fast CPU path (packed GEMM, SIMD, Winograd)
//! - `exec`: backends and the session that runs a graph layer by layer
//! - `analytics`: per-layer parameters, multiply-adds, memory, receptive fields
//! - `archs`: built-in VGG16, GoogLeNet and SqueezeNet definitions
//! - `half`: weights held in half precision (the f16 option for FC layers)
//! - `prep`: op preparation the CPU and GPU engines share (FC layout, BatchNorm affine)
//! - `preprocess`: pixels to input tensors per model family

pub mod analytics;
pub mod archs;
pub mod catalog;
pub mod classify;
pub mod error;
pub mod exec;
pub mod frame_view;
pub mod grad;
pub mod graph;
pub mod half;
pub mod image_check;
pub mod kernels;
pub mod lessons;
pub mod onnx;
pub mod par;
pub mod prep;
pub mod preprocess;
pub mod tensor;
pub mod top_examples;
pub mod visualize;
pub mod viz;

pub use error::{Error, Result};
pub use graph::Graph;
pub use tensor::Tensor;

/// The 1000 ImageNet class names, in index order: split once (the page's top-5 asks on every
/// render, and splitting the list each time cost ~0.9 ms of main-thread work a pass).
pub fn imagenet_labels() -> &'static [&'static str] {
    static LABELS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    LABELS.get_or_init(|| include_str!("../data/imagenet-labels.txt").lines().collect())
}
