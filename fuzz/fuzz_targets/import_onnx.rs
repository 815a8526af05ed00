//! Any bytes into the ONNX importer (whole, and streamed), and whatever imports into the analytics, structure
//! detection, lessons, unfusing and FC preparation: an error is fine, a panic, overflow or
//! out-of-memory is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The streaming importer the browser feeds chunk by chunk: errors fine, no panic.
    let mut stream = convlens_core::onnx::StreamImport::with_total(data.len() as u64);
    if data.chunks(7).all(|c| stream.push(c).is_ok()) {
        let _ = convlens_core::onnx::import_stream(stream, "fuzz");
    }
    if let Ok(graph) = convlens_core::onnx::import(data, "fuzz") {
        let stats = convlens_core::analytics::analyze(&graph);
        let _ = convlens_core::graph::structure::detect(&graph);
        let _ = convlens_core::lessons::texts(&graph, &stats);
        let _ = graph.unfused();
        for node in &graph.nodes {
            let _ = convlens_core::prep::fc_weights(&graph, node);
        }
    }
});
