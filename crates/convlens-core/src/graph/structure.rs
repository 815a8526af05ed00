//! Architecture found in any graph, not looked up by name: every Concat whose inputs fork from
//! one tensor is a module whose branches are the chains from the fork to the Concat
//! (Inception, Fire); the classifier head; GoogLeNet-style auxiliary heads.

use super::{Graph, Op, ValueId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// Four branches: 1x1, reduce->3x3, reduce->5x5, pool->proj.
    Inception,
    /// A 1x1 squeeze feeding parallel 1x1 and 3x3 expands.
    Fire,
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
    /// Index of the Concat node that joins the branches.
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

/// A readable name for a node: the file's node name, or when that is generic (Caffe2 exports
/// say "n12"), the name of its weight without the exporter's suffix ("inception_3a/1x1").
pub fn display_name(graph: &Graph, node: usize) -> String {
    let n = &graph.nodes[node];
    let weight = n.inputs.iter().find(|&&v| graph.value(v).is_const && graph.shape(v).len() >= 2);
    let generic = n.name.is_empty() || (n.name.starts_with('n') && n.name[1..].chars().all(|c| c.is_ascii_digit()));
    match weight {
        Some(&w) if generic => {
            let name = &graph.value(w).name;
            ["_w_0", "_weight", "_W", "_w", "_bnfolded"].iter().fold(name.as_str(), |s, suf| s.strip_suffix(suf).unwrap_or(s)).to_string()
        }
        _ => n.name.clone(),
    }
}

fn kernel_label(graph: &Graph, node: usize) -> Option<String> {
    match &graph.nodes[node].op {
        Op::Conv { window, .. } => Some(format!("{}x{}", window.kernel[0], window.kernel[1])),
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
    let consumers = graph.consumers();
    let producers = graph.producers();
    let mut modules = Vec::new();
    let mut counts = [0usize; 3];
    for (ci, concat) in graph.nodes.iter().enumerate() {
        if !matches!(concat.op, Op::Concat { .. }) || concat.inputs.len() < 2 {
            continue;
        }
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
        let kind = if branches.len() == 4 && labels.contains(&"pool->proj") && labels.contains(&"1x1") {
            ModuleKind::Inception
        } else if labels == ["1x1", "3x3"] && fork_is_1x1 {
            ModuleKind::Fire
        } else {
            ModuleKind::Other
        };
        let slot = match kind {
            ModuleKind::Inception => 0,
            ModuleKind::Fire => 1,
            ModuleKind::Other => 2,
        };
        counts[slot] += 1;
        // Weighted layers carry the meaningful names (pools in Caffe2 exports are just "n23").
        let named: Vec<String> = branches
            .iter()
            .flat_map(|b| b.nodes.iter().copied())
            .filter(|&n| graph.nodes[n].inputs.iter().any(|&v| graph.value(v).is_const))
            .map(|n| display_name(graph, n))
            .collect();
        let prefix = common_prefix(&named);
        let name = if !prefix.is_empty() {
            prefix
        } else {
            format!("{} {}", ["inception", "fire", "module"][slot], counts[slot])
        };
        modules.push(Module { name, kind, fork, concat: ci, branches });
    }
    Structure { modules, heads: heads(graph, &consumers, &producers) }
}

/// Walks back from each graph output through the layers that no longer have a spatial map.
fn heads(graph: &Graph, consumers: &[Vec<usize>], producers: &[Option<usize>]) -> Vec<Head> {
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
            nodes.iter().filter(|&&n| graph.nodes[n].inputs.iter().any(|&v| graph.value(v).is_const)).map(|&n| display_name(graph, n)).collect();
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
