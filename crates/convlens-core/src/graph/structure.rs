//! Architecture found in any graph, not looked up by name: every Concat whose inputs fork from
//! one tensor is a module whose branches are the chains from the fork to the Concat
//! (Inception, Fire), and every Add of two such chains a residual block (ResNet: the residual
//! branch beside the skip path); the classifier head; GoogLeNet-style auxiliary heads.

use super::{Graph, Op, ValueId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// Four branches: 1x1, reduce->3x3, reduce->5x5, pool->proj.
    Inception,
    /// A 1x1 squeeze feeding parallel 1x1 and 3x3 expands.
    Fire,
    /// F(x) + x: a residual branch and the skip path (identity or a 1x1 projection), added.
    Residual,
    /// A DenseNet layer: its input kept and new features computed from it, concatenated; the
    /// layers of a dense block follow one another, each reading everything before it.
    Dense,
    /// ShuffleNet's downsampling unit: grouped convs around a channel shuffle beside an
    /// average-pooled shortcut, concatenated (its other units are `Residual`).
    Shuffle,
    Other,
}

#[derive(Clone, Debug)]
pub struct Branch {
    /// From the kernels found, e.g. "1x1", "3x3 reduce->3x3", "pool->proj".
    pub label: String,
    /// Node indices from the fork to the concat, in order.
    pub nodes: Vec<usize>,
    /// The tensor this branch contributes to the concat.
    pub output: ValueId,
}

impl Branch {
    /// Multiply-adds of the branch's layers.
    pub fn macs(&self, stats: &crate::analytics::ModelStats) -> u64 {
        self.nodes.iter().map(|&n| stats.layers[n].macs).sum()
    }
}

#[derive(Clone, Debug)]
pub struct Module {
    pub name: String,
    pub kind: ModuleKind,
    /// The tensor every branch starts from.
    pub fork: ValueId,
    /// Index of the node that joins the branches: a Concat, or a residual block's Add.
    pub concat: usize,
    pub branches: Vec<Branch>,
}

#[derive(Clone, Debug)]
pub struct Head {
    pub name: String,
    pub nodes: Vec<usize>,
    pub output: ValueId,
    pub auxiliary: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Structure {
    pub modules: Vec<Module>,
    pub heads: Vec<Head>,
}

impl Structure {
    /// The module a node belongs to (as a branch member or as its concat).
    pub fn module_of(&self, node: usize) -> Option<&Module> {
        self.modules.iter().find(|m| m.concat == node || m.branches.iter().any(|b| b.nodes.contains(&node)))
    }
}

fn is_generic(name: &str) -> bool {
    name.is_empty() || (name.starts_with('n') && name.len() > 1 && name[1..].chars().all(|c| c.is_ascii_digit()))
}

/// A weighted node's name from its weight (or its bias, where the weight is a folded copy
/// named by the exporter, "r142"), without the exporter's suffix ("inception_3a/1x1").
fn weight_name(graph: &Graph, node: usize) -> Option<String> {
    let n = &graph.nodes[node];
    if !n.inputs.iter().any(|&v| graph.value(v).is_const && graph.shape(v).len() >= 2) {
        return None;
    }
    let meaningful = |name: &str| !name.trim_start_matches(|c: char| c.is_ascii_alphabetic()).chars().all(|c| c.is_ascii_digit());
    n.inputs.iter().filter(|&&v| graph.value(v).is_const).map(|&v| graph.value(v).name.as_str()).find(|name| meaningful(name)).map(|name| {
        ["_bnfolded", "_w_0", "_b_0", "_weight", "_bias", "_W", "_B", "_w", "_b"].iter().fold(name, |s, suf| s.strip_suffix(suf).unwrap_or(s)).to_string()
    })
}

/// A readable name for every node: the file's node name, or where that is generic (Caffe2
/// exports say "n12"), one made from the node's weight ("inception_3a/1x1") or, for nodes
/// without weights, from its op and place, the way the BVLC prototxt named them: a module's
/// concat is "inception_3a/output" and its pool "inception_3a/pool", other pools "pool1",
/// "pool2" in order, LRNs "norm1", a split-out ReLU "conv1/7x7_s2/relu". Names are unique.
pub fn display_names(graph: &Graph) -> Vec<String> {
    let consumers = graph.consumers();
    let producers = graph.producers();
    let mut names: Vec<Option<String>> =
        graph.nodes.iter().enumerate().map(|(i, n)| if is_generic(&n.name) { weight_name(graph, i) } else { Some(n.name.clone()) }).collect();
    let mut taken: std::collections::HashSet<String> = names.iter().flatten().cloned().collect();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let prefix_of = |name: &str| name.rfind('/').filter(|&i| i > 0).map(|i| name[..i].to_string());
    for i in 0..graph.nodes.len() {
        if names[i].is_some() {
            continue;
        }
        let node = &graph.nodes[i];
        let input_name = |v: ValueId| producers[v].and_then(|p| names[p].clone());
        let data = graph.data_input(node);
        // A pool on a branch of a module: its only reader is a weighted layer whose siblings
        // read the same input.
        let branch_prefix = || {
            let [reader] = consumers[node.output][..] else { return None };
            let reader_prefix = prefix_of(names[reader].as_deref().or(weight_name(graph, reader).as_deref())?)?;
            let siblings = consumers[data].iter().filter(|&&s| s != i).filter_map(|&s| weight_name(graph, s).or_else(|| names[s].clone()));
            siblings.filter_map(|s| prefix_of(&s)).any(|p| p == reader_prefix).then_some(reader_prefix)
        };
        let mut numbered = |key: &str| {
            let k = counts.entry(key.to_string()).or_default();
            *k += 1;
            format!("{key}{k}")
        };
        let base = match &node.op {
            Op::Concat { .. } => {
                let inputs: Vec<String> = node.inputs.iter().filter_map(|&v| input_name(v)).collect();
                match common_prefix(&inputs) {
                    p if !p.is_empty() && inputs.len() == node.inputs.len() => format!("{p}/output"),
                    _ => numbered("concat"),
                }
            }
            Op::MaxPool { .. } | Op::AveragePool { .. } => match branch_prefix() {
                Some(p) => format!("{p}/pool"),
                None => numbered("pool"),
            },
            Op::GlobalAveragePool => numbered("pool"),
            Op::Lrn { .. } => numbered("norm"),
            Op::Relu => match input_name(data) {
                Some(p) => format!("{p}/relu"),
                None => numbered("relu"),
            },
            Op::Gemm { .. } | Op::MatMul => numbered("fc"),
            // Softmax, Dropout, Flatten, Add, ...: the op as the file spelled it.
            _ => numbered(&node.op_type.split('+').next().unwrap_or("layer").to_lowercase()),
        };
        let mut name = base.clone();
        let mut k = 2;
        while taken.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(name.clone());
        names[i] = Some(name);
    }
    names.into_iter().map(|n| n.unwrap_or_default()).collect()
}

/// One node's readable name (see `display_names`, which names a whole graph at once).
pub fn display_name(graph: &Graph, node: usize) -> String {
    display_names(graph).swap_remove(node)
}

/// ShuffleNet's channel shuffle: [N, g, C/g, H, W] with its two group axes swapped (between a
/// Reshape from and a Reshape back to NCHW).
pub fn is_channel_shuffle(graph: &Graph, node: usize) -> bool {
    let n = &graph.nodes[node];
    matches!(&n.op, Op::Transpose { perm } if perm[..] == [0, 2, 1, 3, 4]) && graph.shape(n.inputs[0]).len() == 5
}

fn kernel_label(graph: &Graph, node: usize) -> Option<String> {
    match &graph.nodes[node].op {
        Op::Conv { window, group, .. } => {
            let k = format!("{}x{}", window.kernel[0], window.kernel[1]);
            let per_group = graph.shape(graph.nodes[node].inputs[1]).get(1).copied().unwrap_or(0);
            Some(match group {
                1 => k,
                _ if per_group == 1 => format!("{k} depthwise"),
                g => format!("{k} g{g}"),
            })
        }
        Op::Transpose { .. } if is_channel_shuffle(graph, node) => Some("shuffle".into()),
        Op::MaxPool { .. } | Op::AveragePool { .. } => Some("pool".into()),
        _ => None,
    }
}

fn branch_label(graph: &Graph, nodes: &[usize]) -> String {
    let parts: Vec<String> = nodes.iter().filter_map(|&n| kernel_label(graph, n)).collect();
    match parts.iter().map(|s| s.as_str()).collect::<Vec<_>>()[..] {
        [] => "identity".into(),
        ["1x1", k] if k != "1x1" && k != "pool" => format!("{k} reduce->{k}"),
        ["pool", "1x1"] => "pool->proj".into(),
        _ => parts.join("->"),
    }
}

fn common_prefix(names: &[String]) -> String {
    let Some(first) = names.first() else { return String::new() };
    let mut len = first.len();
    for n in names {
        len = len.min(first.bytes().zip(n.bytes()).take_while(|(a, b)| a == b).count());
    }
    // Cut at the last '/' so "inception_3a/3x3" and "inception_3a/1x1" give "inception_3a".
    match first[..len].rfind('/') {
        Some(i) if i > 0 => first[..i].to_string(),
        _ => String::new(),
    }
}

pub fn detect(graph: &Graph) -> Structure {
    let names = display_names(graph);
    let consumers = graph.consumers();
    let producers = graph.producers();
    let mut modules = Vec::new();
    let mut counts = [0usize; 6];
    // The dense block being walked: (its number, the last layer's concat output, layers so far).
    let mut dense: Option<(usize, ValueId, usize)> = None;
    // A scope every weighted layer shares ("gpu_0" in Caffe2 exports) names no module.
    let weighted: Vec<String> = (0..graph.nodes.len()).filter(|&n| graph.nodes[n].inputs.iter().any(|&v| graph.value(v).is_const)).map(|n| names[n].clone()).collect();
    let scope = common_prefix(&weighted);
    for (ci, concat) in graph.nodes.iter().enumerate() {
        let joins = match concat.op {
            Op::Concat { .. } => concat.inputs.len() >= 2,
            Op::Add => concat.inputs.iter().filter(|&&v| !graph.value(v).is_const).count() == 2,
            _ => false,
        };
        if !joins {
            continue;
        }
        let residual = matches!(concat.op, Op::Add);
        let mut branches = Vec::new();
        let mut forks = Vec::new();
        for &out in &concat.inputs {
            let mut chain = Vec::new();
            let mut cur = out;
            let fork = loop {
                if consumers[cur].len() > 1 {
                    break cur;
                }
                let Some(p) = producers[cur] else { break cur };
                let data: Vec<ValueId> = graph.nodes[p].inputs.iter().copied().filter(|&v| !graph.value(v).is_const).collect();
                if data.len() != 1 {
                    break cur;
                }
                chain.push(p);
                cur = data[0];
            };
            chain.reverse();
            forks.push(fork);
            branches.push(Branch { label: branch_label(graph, &chain), nodes: chain, output: out });
        }
        if forks.iter().any(|&f| f != forks[0]) {
            continue;
        }
        let fork = forks[0];
        let labels: Vec<&str> = branches.iter().map(|b| b.label.as_str()).collect();
        let fork_is_1x1 = producers[fork].is_some_and(|p| kernel_label(graph, p).as_deref() == Some("1x1"));
        let kind = if residual {
            // The longer chain is the residual branch; the other is the skip path.
            branches.sort_by_key(|b| std::cmp::Reverse(b.nodes.len()));
            branches[0].label = format!("residual {}", branches[0].label);
            branches[1].label = if branches[1].nodes.is_empty() { "skip (identity)".into() } else { format!("skip ({} projection)", branches[1].label) };
            ModuleKind::Residual
        } else if branches.len() == 4 && labels.contains(&"pool->proj") && labels.contains(&"1x1") {
            ModuleKind::Inception
        } else if labels == ["1x1", "3x3"] && fork_is_1x1 {
            ModuleKind::Fire
        } else {
            ModuleKind::Other
        };
        // ShuffleNet's units: a residual (or, downsampling, a concatenated pooled) shortcut
        // beside grouped convs around a channel shuffle.
        let shuffles = branches.iter().any(|b| b.nodes.iter().any(|&n| is_channel_shuffle(graph, n)));
        let kind = if shuffles && kind == ModuleKind::Other { ModuleKind::Shuffle } else { kind };
        // DenseNet: the concat keeps its input (an empty branch) beside new features from it.
        let kind = if kind == ModuleKind::Other && branches.len() == 2 && branches.iter().any(|b| b.nodes.is_empty()) {
            ModuleKind::Dense
        } else {
            kind
        };
        let mut dense_name = None;
        if kind == ModuleKind::Dense {
            branches.sort_by_key(|b| b.nodes.len());
            branches[0].label = "input, kept".into();
            branches[1].label = format!("new features {}", branches[1].label);
            let (block, layer) = match dense {
                Some((b, last, n)) if last == fork => (b, n + 1),
                _ => (dense.map_or(1, |(b, _, _)| b + 1), 1),
            };
            dense = Some((block, concat.output, layer));
            dense_name = Some(format!("dense block {block} layer {layer}"));
        }
        if kind == ModuleKind::Shuffle {
            branches.sort_by_key(|b| std::cmp::Reverse(b.nodes.len()));
            branches[0].label = format!("residual {}", branches[0].label);
            for b in &mut branches[1..] {
                b.label = format!("shortcut ({}, concatenated)", b.label);
            }
        }
        let slot = match kind {
            _ if shuffles => 4,
            ModuleKind::Inception => 0,
            ModuleKind::Fire => 1,
            ModuleKind::Other => 2,
            ModuleKind::Residual => 3,
            ModuleKind::Shuffle => 4,
            ModuleKind::Dense => 5,
        };
        counts[slot] += 1;
        // Weighted layers carry the meaningful names (pools in Caffe2 exports are just "n23").
        let named: Vec<String> = branches
            .iter()
            .flat_map(|b| b.nodes.iter().copied())
            .filter(|&n| graph.nodes[n].inputs.iter().any(|&v| graph.value(v).is_const))
            .map(|n| names[n].clone())
            .collect();
        let prefix = common_prefix(&named);
        // Exporters' residual blocks share only a scope ("gpu_0/res2_0_branch2a"): numbered instead.
        let name = if let Some(n) = dense_name {
            n
        } else if !prefix.is_empty() && prefix != scope && kind != ModuleKind::Residual && !shuffles {
            prefix
        } else {
            format!("{} {}", ["inception", "fire", "module", "residual block", "shuffle unit", "dense layer"][slot], counts[slot])
        };
        modules.push(Module { name, kind, fork, concat: ci, branches });
    }
    Structure { modules, heads: heads(graph, &names, &consumers, &producers) }
}

/// Walks back from each graph output through the layers that no longer have a spatial map.
fn heads(graph: &Graph, display: &[String], consumers: &[Vec<usize>], producers: &[Option<usize>]) -> Vec<Head> {
    let mut heads = Vec::new();
    for (k, &out) in graph.outputs.iter().enumerate() {
        let auxiliary = k > 0;
        let mut nodes = Vec::new();
        let mut cur = out;
        while let Some(p) = producers[cur] {
            let node = &graph.nodes[p];
            let spatial = graph.shape(node.output).get(2..).map_or(1, |s| s.iter().product::<usize>());
            // The main head stops at the last spatial map; an auxiliary head runs back to the trunk.
            if !auxiliary && spatial > 1 {
                break;
            }
            nodes.push(p);
            if auxiliary && consumers[graph.data_input(node)].len() > 1 {
                break;
            }
            cur = graph.data_input(node);
        }
        nodes.reverse();
        if nodes.is_empty() {
            continue;
        }
        let names: Vec<String> =
            nodes.iter().filter(|&&n| graph.nodes[n].inputs.iter().any(|&v| graph.value(v).is_const)).map(|&n| display[n].clone()).collect();
        let prefix = common_prefix(&names);
        let name = match (auxiliary, prefix.is_empty()) {
            (false, _) => "classifier".to_string(),
            (true, false) => format!("auxiliary classifier {prefix}"),
            (true, true) => format!("auxiliary classifier {k}"),
        };
        heads.push(Head { name, nodes, output: out, auxiliary });
    }
    heads
}
