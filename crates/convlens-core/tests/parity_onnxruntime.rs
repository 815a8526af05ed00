//! Every layer of every test model, on every CPU backend, against onnxruntime's outputs.

mod common;

use std::path::Path;

use common::*;
use convlens_core::exec::{run, Keep};
use convlens_core::graph::file_name_for;
use convlens_core::tensor::top_k;

/// Runs `case` of `model` on all backends and compares every layer onnxruntime dumped (as
/// imported: a Conv's output that a fused ReLU reads is checked by `run --dump`'s test).
/// Returns how many layers were compared, so callers can insist it was not vacuous.
fn compare_all_layers(model: &Path, refs_dir: &Path) -> usize {
    let graph = import(model);
    let x = load_npy(&refs_dir.join("input.npy"));
    let mut compared = 0;
    for (mut backend, tol) in backends(&graph) {
        let out = run(&graph, backend.as_mut(), &x, &Keep::All, &mut |_, _| {}).unwrap();
        let mut got = |v| out.get(v).unwrap().clone();
        compared = assert_layers_close(&graph, &mut got, &mut |v| reference(&graph, refs_dir, v), tol, &backend.name());
    }
    compared
}

#[test]
fn squeezenet_every_layer_matches_onnxruntime() {
    let n = compare_all_layers(&shared_models().join("squeezenet1.1.onnx"), &refs().join("squeezenet1.1/seeded"));
    // 26 conv+relu, 3 maxpool, 8 concat, dropout, avgpool, flatten
    assert!(n >= 35, "only {n} layers compared");
}

#[test]
fn googlenet_every_layer_matches_onnxruntime() {
    let model = shared_models().join("googlenet-synthetic.onnx");
    for case in ["seeded", "photo_chelsea"] {
        let n = compare_all_layers(&model, &refs().join("googlenet-synthetic").join(case));
        assert!(n >= 80, "only {n} layers compared");
    }
}

#[test]
fn vgg16_zoo_layout_every_layer_matches_onnxruntime() {
    let n = compare_all_layers(&refs().join("vgg16-seeded.onnx"), &refs().join("vgg16-seeded/seeded"));
    assert!(n >= 13 + 5 + 3 + 2, "only {n} layers compared");
}

/// Real weights: the same input tensor gives onnxruntime's top-5, in order.
#[test]
fn squeezenet_top5_on_photos_matches_onnxruntime() {
    let graph = import(&shared_models().join("squeezenet1.1.onnx"));
    let dir = refs().join("squeezenet1.1");
    let mut photos = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let case = entry.unwrap().path();
        if !case.file_name().unwrap().to_string_lossy().starts_with("photo_") {
            continue;
        }
        let x = load_npy(&case.join("input.npy"));
        let want = load_npy(&case.join(format!("{}.npy", file_name_for(&graph.value(graph.outputs[0]).name))));
        for (mut backend, _) in backends(&graph) {
            let out = run(&graph, backend.as_mut(), &x, &Keep::Outputs, &mut |_, _| {}).unwrap();
            let got = out.get(graph.outputs[0]).unwrap();
            let ids = |v: &[f32]| top_k(v, 5).into_iter().map(|(i, _)| i).collect::<Vec<_>>();
            assert_eq!(ids(&got.data), ids(&want.data), "{} top-5 on {}", backend.name(), case.display());
        }
        photos += 1;
    }
    assert!(photos >= 4, "only {photos} photos in the references");
}

/// Op semantics the zoo models leave untested (groups, dilation, SAME padding, BatchNorm
/// folding, ceil-mode pools, broadcasting, Gemm flags, opset-13 Softmax, Squeeze/Unsqueeze).
#[test]
fn ops_zoo_every_layer_matches_onnxruntime() {
    let n = compare_all_layers(&refs().join("ops-zoo.onnx"), &refs().join("ops-zoo/seeded"));
    assert!(n >= 18, "only {n} layers compared");
}
