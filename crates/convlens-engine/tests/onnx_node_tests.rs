//! ONNX's own backend node tests for every op of the import table, on every engine.
//!
//! `tests/reference/make_node_tests.py` writes the cases (model, input, the ONNX reference's
//! outputs) into `target/refs/node`. A case passes when every engine's outputs are within
//! `ORT_LAYER_TOL` of the expected ones; a case listed in `REFUSED` must be refused at import
//! with a message naming why (and the test fails if it starts to pass, so the list stays true).

use std::path::Path;
use std::sync::Arc;

use convlens_core::exec::Keep;
use convlens_core::tensor::rel_error;
use convlens_engine::{Engine, EngineKind};
use convlens_gpu::{Timing, WeightPrecision};
use convlens_testkit::*;

/// The engines a node test runs on (f16 weights are a precision choice, checked on the CNNs).
const KINDS: [EngineKind; 4] = [EngineKind::Reference, EngineKind::Gemm, EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32)];

/// What is out of ConvLens's scope, by case name prefix, and words the refusal must contain.
/// ConvLens computes in float32 on NCHW images: integer tensors, training-mode outputs, 1-D and
/// 3-D windows and empty tensors are refused with a message, not run.
const REFUSED: &[(&str, &str)] = &[
    ("test_add_int", "data type"),
    ("test_add_uint", "data type"),
    ("test_mul_int", "data type"),
    ("test_mul_uint", "data type"),
    ("test_add_int8", "quantized"),
    ("test_add_uint8", "quantized"),
    ("test_mul_int8", "quantized"),
    ("test_mul_uint8", "quantized"),
    ("test_clip_default_int8_min", "quantized"),
    ("test_clip_default_int8_max", "quantized"),
    ("test_clip_default_int8_inbounds", "is Int8"),
    ("test_maxpool_2d_uint8", "is Uint8"),
    ("test_constantofshape_", "is Int64"),
    ("test_training_dropout", "data type Bool"),
    ("test_dropout_default_mask", "mask output"),
    ("test_batchnorm_example_training_mode", "training-mode"),
    ("test_batchnorm_epsilon_training_mode", "training-mode"),
    ("test_maxpool_with_argmax", "Indices output"),
    ("test_averagepool_1d", "only 2-D pooling"),
    ("test_maxpool_1d", "only 2-D pooling"),
    ("test_averagepool_3d", "only 2-D pooling"),
    ("test_maxpool_3d", "only 2-D pooling"),
    ("test_averagepool_2d_dilations", "dilated AveragePool"),
    ("test_reshape_allowzero_reordered", "empty tensor"),
    ("test_identity_sequence", "not tensors"),
    ("test_identity_opt", "not tensors"),
];

enum Outcome {
    Passed,
    Refused(String),
    Wrong(String),
}

fn run_case(dir: &Path) -> Outcome {
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    let graph = match convlens_core::onnx::import(&bytes, "node") {
        Ok(g) => Arc::new(g),
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let x = match try_load_npy(&dir.join("input.npy")) {
        Ok(x) => x,
        Err(e) => return Outcome::Wrong(format!("imported, but its input is {e}")),
    };
    for kind in KINDS {
        let engine = match Engine::new_blocking(graph.clone(), kind, true) {
            Ok(e) => e,
            Err(e) => return Outcome::Wrong(format!("{}: {e}", kind.key())),
        };
        if let Err(e) = engine.forward_blocking(&x, &Keep::All, Timing::Off) {
            return Outcome::Wrong(format!("{}: {e}", kind.key()));
        }
        let got = match engine.read_blocking(&graph.outputs) {
            Ok(g) => g,
            Err(e) => return Outcome::Wrong(format!("{}: read: {e}", kind.key())),
        };
        for (k, id) in graph.outputs.iter().enumerate() {
            let want = load_npy(&dir.join(format!("output_{k}.npy")));
            let g = &got[id];
            if g.data.len() != want.data.len() || g.shape.iter().product::<usize>() != want.shape.iter().product::<usize>() {
                return Outcome::Wrong(format!("{}: output {k} shape {:?}, expected {:?}", kind.key(), g.shape, want.shape));
            }
            let err = rel_error(&g.data, &want.data);
            if err > ORT_LAYER_TOL {
                return Outcome::Wrong(format!("{}: output {k} off by {err:e}", kind.key()));
            }
        }
    }
    Outcome::Passed
}

#[test]
fn onnx_node_tests_on_every_engine() {
    let root = refs().join("node");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    // The cases were made for the ops the importer takes: a new op gets its node tests too.
    let mut made_for: Vec<&str> = manifest["ops"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    let mut table: Vec<&str> = convlens_core::onnx::supported_ops().collect();
    made_for.sort_unstable();
    table.sort_unstable();
    assert_eq!(made_for, table, "OPS in tests/reference/make_node_tests.py differs from the import table");
    let (mut passed, mut refused, mut failures) = (0, 0, Vec::new());
    for case in manifest["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let outcome = if let Some(why) = case.get("skipped") { Outcome::Refused(format!("not made: {why}")) } else { run_case(&root.join(name)) };
        // The longest matching prefix: test_add_int8 is refused as quantized, test_add_int16 by type.
        let expected = REFUSED.iter().filter(|(prefix, _)| name.starts_with(prefix)).max_by_key(|(prefix, _)| prefix.len());
        match (outcome, expected) {
            (Outcome::Passed, None) => passed += 1,
            (Outcome::Passed, Some(_)) => failures.push(format!("{name}: passes now; take it off REFUSED")),
            (Outcome::Refused(msg), Some((_, word))) if msg.contains(word) => refused += 1,
            (Outcome::Refused(msg), _) => failures.push(format!("{name}: refused: {msg}")),
            (Outcome::Wrong(msg), _) => failures.push(format!("{name}: {msg}")),
        }
    }
    eprintln!("ONNX node tests: {passed} pass on every engine, {refused} refused as out of scope, {} fail", failures.len());
    // Not vacuous: most of ONNX's cases for these ops, and the batch-of-3 CNN, ran.
    assert!(passed >= 130, "only {passed} cases passed");
    assert!(failures.is_empty(), "{} node tests fail:\n{}", failures.len(), failures.join("\n"));
}
