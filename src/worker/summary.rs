//! The worker's answers as the UI receives them: a model's layers, modules, heads, costs and
//! lessons; a pass's top classes and timings.

use convlens_core::analytics::analyze;
use convlens_core::classify::heads_top_k;
use convlens_core::exec::output_kind;
use convlens_core::graph::structure::Structure;
use convlens_core::graph::OutputKind;
use convlens_core::{lessons, Graph};
use convlens_engine::Pass;

use crate::protocol::*;

/// Everything the UI shows about a model before it runs: layers, modules, heads, costs, lessons.
pub fn model_summary(graph: &Graph, st: &Structure, backend: &str) -> ModelSummary {
    let stats = analyze(graph);
    let producers = graph.producers();
    let layers = stats
        .layers
        .iter()
        .map(|l| LayerInfo {
            name: l.name.clone(),
            op: l.op_type.clone(),
            shape: l.output_shape.clone(),
            params: l.params,
            macs: l.macs,
            activation_bytes: l.activation_bytes,
            rf_size: l.receptive_field.size,
            rf_stride: l.receptive_field.stride,
            rf_start: l.receptive_field.start,
            rf_global: l.receptive_field.global,
            module: st.modules.iter().position(|m| m.concat == l.node || m.branches.iter().any(|b| b.nodes.contains(&l.node))),
        })
        .collect();
    let modules = st
        .modules
        .iter()
        .map(|m| ModuleInfo {
            name: m.name.clone(),
            kind: format!("{:?}", m.kind),
            concat: m.concat,
            branches: m
                .branches
                .iter()
                .map(|b| BranchInfo {
                    label: b.label.clone(),
                    layers: b.nodes.clone(),
                    output_layer: producers[b.output],
                    shape: graph.shape(b.output).to_vec(),
                    macs: b.macs(&stats),
                })
                .collect(),
        })
        .collect();
    let heads = st.heads.iter().map(|h| HeadInfo { name: h.name.clone(), auxiliary: h.auxiliary, layers: h.nodes.clone() }).collect();
    let p = &graph.preprocess;
    let mut s = ModelSummary {
        load: 0,
        name: graph.name.clone(),
        untrained: graph.untrained,
        preprocess: p.family.clone(),
        scale: p.scale,
        mean: p.mean,
        std: p.std,
        bgr: p.bgr,
        input_side: graph.shape(graph.input).get(2).copied().unwrap_or(224),
        layers,
        modules,
        heads,
        params: stats.params,
        macs: stats.macs,
        activation_bytes: stats.activation_bytes,
        weight_bytes: stats.weight_bytes,
        lessons: lessons::texts(graph, &stats).into_iter().map(|l| Lesson { title: l.title, detail: l.detail }).collect(),
        backend: backend.to_string(),
        preprocess_key: None,
        preprocess_guessed: false,
    };
    set_preprocess(&mut s, p);
    s
}

/// The summary's preprocessing fields from `p` (the file's, or the user's pick).
pub fn set_preprocess(s: &mut ModelSummary, p: &convlens_core::graph::Preprocess) {
    s.preprocess = p.family.clone();
    (s.scale, s.mean, s.std, s.bgr) = (p.scale, p.mean, p.std, p.bgr);
    s.preprocess_key = p.key().map(str::to_string);
    s.preprocess_guessed = p.guessed;
}

/// Top-5 of every head of a finished pass, and its timings (`id` is the caller's to set).
pub fn run_summary(graph: &Graph, structure: &Structure, pass: &Pass, backend: String) -> RunSummary {
    let heads = heads_top_k(graph, structure, &pass.outputs, 5)
        .into_iter()
        .map(|h| HeadResult { name: h.name, output: graph.outputs.iter().position(|&o| o == h.output).unwrap_or(0), auxiliary: h.auxiliary, top: h.top })
        .collect();
    RunSummary {
        id: 0,
        heads,
        layer_ms: pass.layer_ms.clone(),
        layer_clock: pass.clock.to_string(),
        total_ms: pass.total_ms,
        preprocess_ms: 0.0,
        backend,
        softmax_applied: output_kind(graph) == OutputKind::Logits,
        pool: Default::default(),
        camera_crop: None,
        worker_heap_bytes: heap_bytes(),
    }
}

/// The size of this module's linear memory, in bytes.
fn heap_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size::<0>() as u64 * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    0
}
