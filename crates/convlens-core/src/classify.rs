//! What a finished pass says: the top classes of every classifier head, as probabilities
//! whether the head ends in a Softmax or gives logits.

use std::collections::HashMap;

use crate::exec::output_kind_of;
use crate::graph::structure::Structure;
use crate::graph::{Graph, OutputKind, ValueId};
use crate::tensor::{softmax_in_place, top_k, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub struct HeadTop {
    /// "main classifier", "aux1", ..., or "output K" for an output no head was found for.
    pub name: String,
    pub auxiliary: bool,
    pub output: ValueId,
    /// The head gave logits and softmax was applied here.
    pub softmax_applied: bool,
    /// (class index, probability), best first.
    pub top: Vec<(usize, f32)>,
}

/// The `k` best classes of each graph output found in `values` that has at least two values.
pub fn heads_top_k(graph: &Graph, structure: &Structure, values: &HashMap<ValueId, Tensor>, k: usize) -> Vec<HeadTop> {
    let mut heads = Vec::new();
    for (i, &o) in graph.outputs.iter().enumerate() {
        let Some(t) = values.get(&o).filter(|t| t.len() >= 2) else { continue };
        let mut probs = t.data.clone();
        let logits = output_kind_of(graph, o) == OutputKind::Logits;
        if logits {
            softmax_in_place(&mut probs);
        }
        let head = structure.heads.iter().find(|h| h.output == o);
        heads.push(HeadTop {
            name: head.map_or_else(|| format!("output {i}"), |h| h.name.clone()),
            auxiliary: head.is_some_and(|h| h.auxiliary),
            output: o,
            softmax_applied: logits,
            top: top_k(&probs, k),
        });
    }
    heads
}
