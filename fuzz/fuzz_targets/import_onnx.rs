//! Any bytes into the ONNX importer, and whatever imports into the analytics and structure
//! detection: an error is fine, a panic, overflow or out-of-memory is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = convlens_core::onnx::import(data, "fuzz") {
        let _ = convlens_core::analytics::analyze(&graph);
        let _ = convlens_core::graph::structure::detect(&graph);
    }
});
