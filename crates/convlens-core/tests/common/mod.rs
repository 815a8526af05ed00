//! Shared by the core's integration tests: the fixtures, npy loading, named tolerances and the
//! compare loop come from `convlens-testkit`; the list of CPU backends every parity body runs
//! on is the core's own.
#![allow(dead_code, unused_imports)]

pub use convlens_testkit::*;

use convlens_core::exec::{cpu_backend, Backend, CpuKind};
use convlens_core::Graph;

/// Every CPU backend, each paired with the tolerance it is held to against onnxruntime.
pub fn backends(graph: &Graph) -> Vec<(Box<dyn Backend>, f32)> {
    vec![
        (cpu_backend(CpuKind::Reference, graph).unwrap(), ORT_LAYER_TOL),
        (cpu_backend(CpuKind::Gemm, graph).unwrap(), ORT_LAYER_TOL),
        (cpu_backend(CpuKind::Simd, graph).unwrap(), ORT_LAYER_TOL),
    ]
}
