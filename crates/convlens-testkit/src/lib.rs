//! What every test crate shares: where the fixtures are (`../shared`, onnxruntime's references
//! in `target/refs`), npy reading, the named tolerances, and the one loop that compares every
//! layer of a pass with a reference. Tests only; the product never links it.

use std::path::{Path, PathBuf};

use convlens_core::graph::{file_name_for, ValueId};
use convlens_core::tensor::rel_error;
use convlens_core::{Graph, Tensor};

/// Any engine vs onnxruntime, per layer: max |diff| / max(1, max |reference|). Summation order
/// differs (onnxruntime's MLAS, our GEMM, the GPU's tiles), so fp32 rounding of ~1e-7 per add
/// accumulates over thousands of terms and dozens of layers; 1e-4 leaves two orders of margin
/// over what we measure and still catches any indexing or padding mistake (those give ~1).
pub const ORT_LAYER_TOL: f32 = 1e-4;
/// Fast path vs the scalar reference on the same op.
pub const FAST_VS_REFERENCE_TOL: f32 = 1e-4;
/// Winograd F(2x2,3x3) vs the reference: the input and output transforms add and subtract up
/// to 9 terms before and after the GEMM; measured worst ~3e-6 relative, so 1e-4 holds.
pub const WINOGRAD_TOL: f32 = 1e-4;
/// GPU vs onnxruntime: lavapipe's and SwiftShader's exp/pow differ from libm in the last bits;
/// the same budget as the CPU paths.
pub const GPU_LAYER_TOL: f32 = 1e-4;
/// f16 weights: each weight rounds to 11 significant bits (relative 2^-11 ~ 4.9e-4), and the
/// errors of thousands of products add up in quadrature through every layer; measured worst
/// 2.5e-3 (SqueezeNet relu24) and 1.1e-3 (GoogLeNet) on lavapipe, so 1e-2 leaves 4x.
pub const GPU_F16_LAYER_TOL: f32 = 1e-2;
/// The CPU with FC weights in half precision (`--fc-f16`, the app's "CPU, f16 FC weights")
/// against onnxruntime's f32: only the FC layers' weights round (relative 2^-11 each), their
/// products and sums stay f32, and the errors of 25088 (VGG16's fc6) products add in
/// quadrature; measured worst 3.8e-4 (VGG16 fc8) and 3.7e-4 (AlexNet fc7), so 2e-3 leaves 5x
/// and still fails a wrong row or a mis-widened half (errors ~1).
pub const CPU_F16_FC_TOL: f32 = 2e-3;

/// A backward op against central differences of its forward, both in f64, step 1e-5: the
/// truncation error is ~h^2 = 1e-10 of the second derivative and rounding ~1e-16/h = 1e-11,
/// so 1e-6 of the gradient's scale is far above both and far below any indexing mistake (~1).
pub const GRAD_CHECK_TOL: f64 = 1e-6;
/// Whole-network gradients, as the relative L2 error ||a - b|| / ||b||. A CPU engine's f32
/// gradients against the scalar reference engine's (both f32): activations differ by summation
/// order (~1e-6), and a unit within that of a ReLU's or max pool's kink routes its gradient the
/// other way, moving a few pixels' gradient; measured 0 (SqueezeNet) and 3.9e-3 (GoogLeNet
/// graph) at the input. A wrong index, stride or routing moves all of it (error ~1).
pub const GRAD_F32_TOL: f32 = 2e-2;
/// The f32 reference backward against the f64 one, same measure: 1.9e-3 (SqueezeNet) and
/// 2.9e-3 (GoogLeNet graph), from the same kinks.
pub const GRAD_F64_VS_F32_TOL: f32 = 2e-2;
/// The GPU with f16 weights against the f32 reference, same measure: activations already
/// differ by up to 1e-2 of their scale (GPU_F16_LAYER_TOL), so many more units sit across a
/// ReLU's or max pool's kink and route their gradient the other way, and every backward
/// product rounds its weight too. Measured at the input on lavapipe: 7.3e-2 (SqueezeNet) and
/// 1.05e-1 (GoogLeNet graph); a wrong index or routing gives ~1 or more.
pub const GPU_F16_GRAD_TOL: f32 = 2.5e-1;

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
    try_load_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A float32, C-order .npy file, or why not (for tests that list every failure before failing).
pub fn try_load_npy(path: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| e.to_string())?;
    if npy.order() != npyz::Order::C {
        return Err("column-major .npy; save it with np.ascontiguousarray".into());
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let data = npy.into_vec::<f32>().map_err(|e| format!("not float32: {e}"))?;
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

pub fn import(path: &Path) -> Graph {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    convlens_core::onnx::import(&bytes, "model").unwrap()
}

/// `import` with the weights held in `precision` (the f16 FC option).
pub fn import_with(path: &Path, precision: convlens_core::onnx::WeightPrecision) -> Graph {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    convlens_core::onnx::import_with(&bytes, "model", precision).unwrap()
}

/// `graph` with every half-precision weight widened back to f32 (exactly): what the f32
/// kernels compute on the rounded weights.
pub fn widened(graph: &Graph) -> Graph {
    let mut g = graph.clone();
    for v in &mut g.values {
        if let Some(h) = v.half.take() {
            v.data = Some(std::sync::Arc::new(h.to_f32()));
        }
    }
    g
}

/// onnxruntime's dump of `value` in `case_dir`, when it made one.
pub fn reference(graph: &Graph, case_dir: &Path, value: ValueId) -> Option<Tensor> {
    let path = case_dir.join(format!("{}.npy", file_name_for(&graph.value(value).name)));
    path.exists().then(|| load_npy(&path))
}

/// The one compare-every-layer loop: each node output that `want` has a reference for must be
/// within `tol` of it (relative to the layer's scale). `who` names the engine in a failure.
/// Returns how many layers were compared, so callers can insist it was not vacuous.
pub fn assert_layers_close(
    graph: &Graph,
    got: &mut dyn FnMut(ValueId) -> Tensor,
    want: &mut dyn FnMut(ValueId) -> Option<Tensor>,
    tol: f32,
    who: &str,
) -> usize {
    let mut compared = 0;
    for node in &graph.nodes {
        let Some(w) = want(node.output) else { continue };
        let g = got(node.output);
        let name = &graph.value(node.output).name;
        assert_eq!(g.shape, w.shape, "{who}: layer {name} shape");
        let err = rel_error(&g.data, &w.data);
        if std::env::var_os("CONVLENS_PRINT_ERRORS").is_some() {
            eprintln!("{who}: {name}: {err:e}");
        }
        assert!(err <= tol, "{who} on {}: layer {name} off by {err:e} (tolerance {tol:e})", graph.name);
        compared += 1;
    }
    compared
}
