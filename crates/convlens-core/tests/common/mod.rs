//! Shared by the integration tests: where the fixtures are, npy loading, named tolerances,
//! and the list of backends every parity test body runs on.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use convlens_core::exec::{cpu_backend, Backend, CpuKind};
use convlens_core::{Graph, Tensor};

/// Any backend vs onnxruntime, per layer: max |diff| / max(1, max |reference|). Summation
/// order differs (onnxruntime's MLAS vs ours), so fp32 rounding of ~1e-7 per add accumulates
/// over thousands of terms and dozens of layers; 1e-4 leaves two orders of margin over what
/// we measure and still catches any indexing or padding mistake (those give errors near 1).
pub const ORT_LAYER_TOL: f32 = 1e-4;
/// Fast path vs the scalar reference on the same op.
pub const FAST_VS_REFERENCE_TOL: f32 = 1e-4;
/// Winograd F(2x2,3x3) vs the reference: the input and output transforms add and subtract
/// up to 9 terms before and after the GEMM, a few more roundings than direct summation;
/// measured worst ~3e-6 relative on random data, so the same 1e-4 holds with margin.
pub const WINOGRAD_TOL: f32 = 1e-4;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn shared_models() -> PathBuf {
    std::env::var_os("CONVLENS_MODELS").map(PathBuf::from).unwrap_or_else(|| workspace().join("../shared/models"))
}

pub fn shared_images() -> PathBuf {
    workspace().join("../shared/images")
}

/// onnxruntime's outputs, made by tests/reference/make_refs.py.
pub fn refs() -> PathBuf {
    let dir = std::env::var_os("CONVLENS_REFS").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/refs"));
    assert!(
        dir.join("squeezenet1.1").is_dir(),
        "no onnxruntime references in {}: run `python3 tests/reference/make_refs.py` (scripts/test.sh does)",
        dir.display()
    );
    dir
}

pub fn load_npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    Tensor::new(shape, npy.into_vec::<f32>().unwrap()).unwrap()
}

pub fn import(path: &Path) -> Graph {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    convlens_core::onnx::import(&bytes, "model").unwrap()
}

/// Every CPU backend, each paired with the tolerance it is held to against onnxruntime.
pub fn backends(graph: &Graph) -> Vec<(Box<dyn Backend>, f32)> {
    vec![
        (cpu_backend(CpuKind::Reference, graph).unwrap(), ORT_LAYER_TOL),
        (cpu_backend(CpuKind::Gemm, graph).unwrap(), ORT_LAYER_TOL),
        (cpu_backend(CpuKind::Simd, graph).unwrap(), ORT_LAYER_TOL),
    ]
}
