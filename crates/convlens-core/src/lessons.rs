//! The seed text's lessons, each measured from a graph rather than typed in: stacked 3x3
//! convs vs one 7x7, VGG16's fc6 share, Inception with and without 1x1 bottlenecks, and
//! global average pooling instead of a fully connected layer.

use crate::analytics::{analyze, human_count, human_macs, ModelStats};
use crate::archs::{Net, Weights};
use crate::error::Result;
use crate::graph::structure::{detect, ModuleKind, Structure};
use crate::graph::{Graph, Op, Preprocess};

#[derive(Clone, Debug, PartialEq)]
pub struct StackVsSingle {
    pub channels: usize,
    pub stacked_receptive_field: usize,
    pub stacked_weights: u64,
    pub single_receptive_field: usize,
    pub single_weights: u64,
}

/// Conv weight tensors (rank 4) only: the lesson's 27C^2 vs 49C^2 leaves biases out.
fn conv_weights(graph: &Graph) -> u64 {
    graph.values.iter().filter(|v| v.is_const && v.shape.len() == 4).map(|v| v.shape.iter().product::<usize>() as u64).sum()
}

/// Three stacked 3x3 convs vs one 7x7, C channels in and out, on a 32x32 map.
pub fn stacked_3x3_vs_7x7(channels: usize) -> Result<StackVsSingle> {
    let build = |k: usize, depth: usize| -> Result<(Graph, ModelStats)> {
        let mut n = Net::new(Weights::None);
        let input = n.b.input("x", vec![1, channels, 32, 32])?;
        let mut x = input;
        for i in 0..depth {
            x = n.conv(&format!("conv{i}"), x, channels, k, 1, k / 2, true)?;
        }
        let g = n.finish("lesson", input, vec![x], Preprocess::imagenet_rgb());
        let s = analyze(&g);
        Ok((g, s))
    };
    let (g3, s3) = build(3, 3)?;
    let (g7, s7) = build(7, 1)?;
    Ok(StackVsSingle {
        channels,
        stacked_receptive_field: s3.layers.last().unwrap().receptive_field.size[0],
        stacked_weights: conv_weights(&g3),
        single_receptive_field: s7.layers.last().unwrap().receptive_field.size[0],
        single_weights: conv_weights(&g7),
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct InceptionCost {
    pub macs: u64,
    pub output_depth: usize,
    pub params: u64,
}

/// The lecture's module on a 28x28x256 input: 1x1 128, 3x3 192, 5x5 96, 3x3 max pool.
/// `bottleneck`: 64-channel 1x1 reductions before the 3x3 and 5x5, and a 64-channel pool projection.
pub fn lecture_inception(bottleneck: bool) -> Result<InceptionCost> {
    let mut n = Net::new(Weights::None);
    let input = n.b.input("x", vec![1, 256, 28, 28])?;
    let b1 = n.conv("1x1", input, 128, 1, 1, 0, true)?;
    let r3 = if bottleneck { n.conv("3x3_reduce", input, 64, 1, 1, 0, true)? } else { input };
    let b3 = n.conv("3x3", r3, 192, 3, 1, 1, true)?;
    let r5 = if bottleneck { n.conv("5x5_reduce", input, 64, 1, 1, 0, true)? } else { input };
    let b5 = n.conv("5x5", r5, 96, 5, 1, 2, true)?;
    let mut bp = n.max_pool("pool", input, 3, 1, 1, false)?;
    if bottleneck {
        bp = n.conv("pool_proj", bp, 64, 1, 1, 0, true)?;
    }
    let out = n.concat("output", vec![b1, b3, b5, bp])?;
    let g = n.finish("lecture inception", input, vec![out], Preprocess::imagenet_rgb());
    let s = analyze(&g);
    Ok(InceptionCost { macs: s.macs, output_depth: g.shape(out)[1], params: s.params })
}

#[derive(Clone, Debug, PartialEq)]
pub struct LayerShare {
    pub layer: String,
    pub params: u64,
    pub total: u64,
}

/// The layer holding the most parameters and its share of the model (VGG16: fc6).
pub fn largest_layer(stats: &ModelStats) -> Option<LayerShare> {
    stats.layers.iter().max_by_key(|l| l.params).map(|l| LayerShare { layer: l.name.clone(), params: l.params, total: stats.params })
}

#[derive(Clone, Debug, PartialEq)]
pub struct PoolingVsFc {
    /// The pooling layer before the classifier and the map it averages (C, H, W).
    pub pool: String,
    pub map: [usize; 3],
    pub classes: usize,
    /// Weights of the classifier as it is (after pooling).
    pub classifier_weights: u64,
    /// Weights a fully connected layer from the unpooled map would need.
    pub fc_instead_weights: u64,
}

/// Average pooling to 1x1 in front of the classifier vs an FC on the full map. GoogLeNet:
/// pool then FC; SqueezeNet: a 1x1 conv makes the classes, then the pool.
pub fn pooling_vs_fc(graph: &Graph) -> Option<PoolingVsFc> {
    let main = *graph.outputs.first()?;
    let producers = graph.producers();
    let mut v = main;
    let mut fc_after: Option<usize> = None;
    while let Some(i) = producers[v] {
        let node = &graph.nodes[i];
        match &node.op {
            Op::Gemm { .. } | Op::MatMul => fc_after = Some(i),
            Op::GlobalAveragePool | Op::AveragePool { .. } => {
                if graph.shape(node.output)[2..].iter().product::<usize>() != 1 {
                    return None;
                }
                let (map_value, classes, classifier_weights) = match fc_after {
                    Some(fc) => {
                        let w = graph.shape(graph.nodes[fc].inputs[1]);
                        let classes = graph.shape(graph.nodes[fc].output)[1];
                        (node.inputs[0], classes, (w[0] * w[1]) as u64)
                    }
                    None => {
                        let conv = &graph.nodes[producers[node.inputs[0]]?];
                        if !matches!(conv.op, Op::Conv { .. }) {
                            return None;
                        }
                        let w = graph.shape(conv.inputs[1]);
                        (conv.inputs[0], w[0], w.iter().product::<usize>() as u64)
                    }
                };
                let s = graph.shape(map_value);
                return Some(PoolingVsFc {
                    pool: node.name.clone(),
                    map: [s[1], s[2], s[3]],
                    classes,
                    classifier_weights,
                    fc_instead_weights: (s[1] * s[2] * s[3] * classes) as u64,
                });
            }
            _ => {}
        }
        v = graph.data_input(node);
    }
    None
}

/// One lesson as a headline and the measured detail behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lesson {
    pub title: String,
    pub detail: String,
}

/// A run of stride-1 3x3 convs, each reading the previous one's output: where this model
/// stacks small kernels instead of one large one (VGG16's conv3_1..conv3_3).
#[derive(Clone, Debug, PartialEq)]
pub struct StackedRun {
    pub layers: Vec<String>,
    /// Input channels of the first conv, output channels of the last.
    pub c_in: usize,
    pub c_out: usize,
    /// What the stack sees of its input, in that input's pixels: 1 + depth * 2.
    pub receptive_field: usize,
    pub weights: u64,
    /// One conv with that receptive field and the same channels.
    pub single_weights: u64,
}

fn is_3x3_stride_1(op: &Op) -> bool {
    matches!(op, Op::Conv { window, group: 1, .. } if window.kernel == [3, 3] && window.strides == [1, 1] && window.dilations == [1, 1])
}

/// The longest run of stacked 3x3 convs in `graph` (at least two).
pub fn longest_3x3_stack(graph: &Graph, stats: &ModelStats) -> Option<StackedRun> {
    let producers = graph.producers();
    let consumers = graph.consumers();
    let mut best: Vec<usize> = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        if !is_3x3_stride_1(&node.op) {
            continue;
        }
        // Start only where the previous layer is not a 3x3 conv itself.
        let prev = producers[graph.data_input(node)];
        if prev.is_some_and(|p| is_3x3_stride_1(&graph.nodes[p].op)) {
            continue;
        }
        let mut run = vec![i];
        let mut cur = i;
        // A fused ReLU sits inside the conv; an unfused one is stepped over.
        loop {
            let mut out = graph.nodes[cur].output;
            if let [c] = consumers[out][..] {
                if matches!(graph.nodes[c].op, Op::Relu) {
                    out = graph.nodes[c].output;
                }
            }
            match consumers[out][..] {
                [c] if is_3x3_stride_1(&graph.nodes[c].op) => {
                    run.push(c);
                    cur = c;
                }
                _ => break,
            }
        }
        // The longest; among those, one with as many channels in as out (the 27C^2 vs 49C^2 case).
        let square = |r: &[usize]| graph.shape(graph.nodes[r[0]].inputs[1])[1] == graph.shape(graph.nodes[*r.last().unwrap()].inputs[1])[0];
        if (run.len(), square(&run)) > (best.len(), !best.is_empty() && square(&best)) {
            best = run;
        }
    }
    if best.len() < 2 {
        return None;
    }
    let weight = |n: usize| graph.shape(graph.nodes[n].inputs[1]).to_vec();
    let (first, last) = (weight(best[0]), weight(*best.last().unwrap()));
    let (c_in, c_out) = (first[1], last[0]);
    let receptive_field = 1 + 2 * best.len();
    Some(StackedRun {
        layers: best.iter().map(|&n| stats.layers[n].name.clone()).collect(),
        c_in,
        c_out,
        receptive_field,
        weights: best.iter().map(|&n| weight(n).iter().product::<usize>() as u64).sum(),
        single_weights: (c_in * c_out * receptive_field * receptive_field) as u64,
    })
}

/// One of this model's Inception modules as it is, and as it would be without its 1x1
/// reductions (each kxk conv on the module's input, the pool's output concatenated as is).
#[derive(Clone, Debug, PartialEq)]
pub struct BottleneckSaving {
    pub module: String,
    pub macs: u64,
    pub depth: usize,
    pub without_macs: u64,
    pub without_depth: usize,
}

pub fn bottleneck_saving(graph: &Graph, stats: &ModelStats, structure: &Structure) -> Option<BottleneckSaving> {
    let m = structure.modules.iter().find(|m| m.kind == ModuleKind::Inception)?;
    let input = graph.shape(m.fork);
    let c_in = input[1];
    let mut macs = 0;
    let mut without_macs = 0;
    let mut depth = 0;
    let mut without_depth = 0;
    for b in &m.branches {
        let out = graph.shape(b.output);
        let (c_out, plane) = (out[1], (out[2] * out[3]) as u64);
        macs += b.macs(stats);
        depth += c_out;
        let convs: Vec<usize> = b.nodes.iter().copied().filter(|&n| matches!(graph.nodes[n].op, Op::Conv { .. })).collect();
        let pooled = b.nodes.iter().any(|&n| matches!(graph.nodes[n].op, Op::MaxPool { .. } | Op::AveragePool { .. }));
        if pooled {
            // No projection: the pool's output, all of the input's channels, goes into the concat.
            without_depth += c_in;
        } else if let Some(&last) = convs.last() {
            let k = graph.shape(graph.nodes[last].inputs[1]);
            without_macs += plane * (c_in * c_out * k[2] * k[3]) as u64;
            without_depth += c_out;
        }
    }
    Some(BottleneckSaving { module: m.name.clone(), macs, depth, without_macs, without_depth })
}

/// The seed's lessons as sentences, each shown only where this model teaches it and measured
/// from its own layers: what the app's lessons panel and `convlens inspect` both show.
/// MobileNet's (and ShuffleNet's) trade, measured on this model: each depthwise conv and the
/// 1x1 conv reading it, against one full conv of the depthwise kernel doing both at once.
pub struct SeparableSaving {
    pub pairs: usize,
    pub first: String,
    pub separable_macs: u64,
    pub full_macs: u64,
}

pub fn depthwise_separable(graph: &Graph, stats: &ModelStats) -> Option<SeparableSaving> {
    let consumers = graph.consumers();
    let (mut pairs, mut first, mut separable_macs, mut full_macs) = (0, None, 0, 0);
    for (i, node) in graph.nodes.iter().enumerate() {
        let Op::Conv { window, group, .. } = &node.op else { continue };
        let c = graph.shape(node.inputs[0])[1];
        if *group < 2 || *group != c || graph.shape(node.inputs[1])[1] != 1 {
            continue;
        }
        // The 1x1 conv that reads it, past an activation.
        let mut v = node.output;
        let mut pointwise = None;
        for _ in 0..2 {
            let [next] = consumers[v][..] else { break };
            match &graph.nodes[next].op {
                Op::Relu | Op::Clip { .. } => v = graph.nodes[next].output,
                Op::Conv { window: w, .. } if w.kernel == [1, 1] => {
                    pointwise = Some(next);
                    break;
                }
                _ => break,
            }
        }
        let Some(p) = pointwise else { continue };
        let out: u64 = graph.shape(graph.nodes[p].output).iter().product::<usize>() as u64;
        pairs += 1;
        first.get_or_insert(i);
        separable_macs += stats.layers[i].macs + stats.layers[p].macs;
        full_macs += out * (c * window.kernel[0] * window.kernel[1]) as u64;
    }
    (pairs > 0).then(|| SeparableSaving { pairs, first: stats.layers[first.unwrap_or(0)].name.clone(), separable_macs, full_macs })
}

/// DenseNet's blocks as found in the graph: layers per block, channels in and out, and the
/// growth rate (the new features' channels, when every layer adds the same).
pub struct DenseBlocks {
    pub blocks: Vec<DenseBlock>,
    pub growth: usize,
}

pub struct DenseBlock {
    pub layers: usize,
    pub c_in: usize,
    pub c_out: usize,
}

pub fn dense_blocks(graph: &Graph, structure: &crate::graph::structure::Structure) -> Option<DenseBlocks> {
    let mut blocks: Vec<DenseBlock> = Vec::new();
    let mut growth = None;
    for m in structure.modules.iter().filter(|m| m.kind == ModuleKind::Dense) {
        let new = graph.shape(m.branches[1].output)[1];
        if *growth.get_or_insert(new) != new {
            return None;
        }
        let c_out = graph.shape(graph.nodes[m.concat].output)[1];
        match blocks.last_mut() {
            Some(b) if m.name.ends_with(&format!(" layer {}", b.layers + 1)) => {
                b.layers += 1;
                b.c_out = c_out;
            }
            _ => blocks.push(DenseBlock { layers: 1, c_in: graph.shape(m.fork)[1], c_out }),
        }
    }
    Some(DenseBlocks { blocks, growth: growth? })
}

/// ShuffleNet's trade, measured on this model: its grouped 1x1 convs against the same convs
/// ungrouped, and how many shuffles move channels between the groups.
pub struct ShuffleSaving {
    pub shuffles: usize,
    pub first: String,
    pub convs: usize,
    pub max_groups: usize,
    pub grouped_macs: u64,
    pub dense_macs: u64,
}

pub fn channel_shuffle(graph: &Graph, stats: &ModelStats) -> Option<ShuffleSaving> {
    let shuffles: Vec<usize> = (0..graph.nodes.len()).filter(|&n| crate::graph::structure::is_channel_shuffle(graph, n)).collect();
    let first = *shuffles.first()?;
    let (mut convs, mut max_groups, mut grouped_macs, mut dense_macs) = (0, 0, 0, 0);
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Op::Conv { window, group, .. } = &node.op {
            let per_group = graph.shape(node.inputs[1])[1];
            if *group > 1 && per_group > 1 && window.kernel == [1, 1] {
                convs += 1;
                max_groups = max_groups.max(*group);
                grouped_macs += stats.layers[i].macs;
                dense_macs += stats.layers[i].macs * *group as u64;
            }
        }
    }
    (convs > 0).then(|| ShuffleSaving { shuffles: shuffles.len(), first: stats.layers[first].name.clone(), convs, max_groups, grouped_macs, dense_macs })
}

pub fn texts(graph: &Graph, stats: &ModelStats) -> Vec<Lesson> {
    let structure = detect(graph);
    let mut out = Vec::new();
    // Where the weights are: a fully connected layer holding a large share (VGG16's fc6).
    if let Some(l) = largest_layer(stats) {
        let node = &graph.nodes[stats.layers.iter().find(|s| s.name == l.layer).map_or(0, |s| s.node)];
        let share = l.params as f64 / l.total.max(1) as f64;
        if matches!(node.op, Op::Gemm { .. } | Op::MatMul) && share >= 0.3 {
            let w = graph.shape(node.inputs[1]);
            out.push(Lesson {
                title: format!("{} holds {:.1}% of the parameters", l.layer, 100.0 * share),
                detail: format!(
                    "{} of this model's {} parameters sit in one fully connected layer ({} x {} weights): an FC layer on a whole spatial map is where the weights go, and the convolutions that do the seeing hold little.",
                    human_count(l.params),
                    human_count(l.total),
                    w[0],
                    w[1]
                ),
            });
        }
    }
    if let Some(r) = longest_3x3_stack(graph, stats) {
        let first = r.layers.first().cloned().unwrap_or_default();
        let last = r.layers.last().cloned().unwrap_or_default();
        out.push(Lesson {
            title: format!("{} stacked 3x3 convs ({first} to {last}) see as far as one {}x{}", r.layers.len(), r.receptive_field, r.receptive_field),
            detail: format!(
                "Each output of {last} sees {}x{} pixels of {first}'s input, as one {}x{} conv would, with {} weights instead of {}{}, and a ReLU after each.",
                r.receptive_field,
                r.receptive_field,
                r.receptive_field,
                r.receptive_field,
                human_count(r.weights),
                human_count(r.single_weights),
                if r.c_in == r.c_out {
                    format!(" ({}C² vs {}C² at C={})", 9 * r.layers.len(), r.receptive_field * r.receptive_field, r.c_in)
                } else {
                    format!(" ({} in, {} out channels)", r.c_in, r.c_out)
                }
            ),
        });
    }
    if let Some(b) = bottleneck_saving(graph, stats, &structure) {
        let lecture = (lecture_inception(false), lecture_inception(true));
        let lecture = match lecture {
            (Ok(n), Ok(w)) => format!(
                " The lecture's module on 28x28x256 goes from {} to {} (the slide says 358M: its six terms add up to {}).",
                human_macs(n.macs),
                human_macs(w.macs),
                human_count(w.macs)
            ),
            _ => String::new(),
        };
        out.push(Lesson {
            title: format!("1x1 bottlenecks cut {} from {} to {}", b.module, human_macs(b.without_macs), human_macs(b.macs)),
            detail: format!(
                "Without its 1x1 reductions (each 3x3 and 5x5 on the module's full input, the pool passed through) {} would cost {} and output depth {}; with them it costs {} and outputs depth {}.{lecture}",
                b.module,
                human_macs(b.without_macs),
                b.without_depth,
                human_macs(b.macs),
                b.depth
            ),
        });
    }
    if let Some(p) = pooling_vs_fc(graph) {
        let pool = graph.nodes.iter().position(|n| n.name == p.pool).map_or(p.pool.clone(), |i| stats.layers[i].name.clone());
        out.push(Lesson {
            title: "Average pooling replaces a huge fully connected layer".into(),
            detail: format!(
                "{} averages the {}x{}x{} map before the classifier: {} weights, where an FC layer on the full map would need {}.",
                pool,
                p.map[1],
                p.map[2],
                p.map[0],
                human_count(p.classifier_weights),
                human_count(p.fc_instead_weights)
            ),
        });
    }
    if let Some(s) = depthwise_separable(graph, stats) {
        out.push(Lesson {
            title: format!("{} depthwise separable convs cost {} instead of {}", s.pairs, human_macs(s.separable_macs), human_macs(s.full_macs)),
            detail: format!(
                "A depthwise conv ({} first) filters each channel on its own, and the 1x1 conv after it mixes the channels: {:.1}x fewer multiply-adds than full convs of the same kernel from the same inputs to the same outputs would need, at the price of filtering and mixing in two steps.",
                s.first,
                s.full_macs as f64 / s.separable_macs.max(1) as f64
            ),
        });
    }
    if let Some(s) = channel_shuffle(graph, stats) {
        out.push(Lesson {
            title: format!("{} channel shuffles let grouped 1x1 convs cost {} instead of {}", s.shuffles, human_macs(s.grouped_macs), human_macs(s.dense_macs)),
            detail: format!(
                "This model's {} grouped 1x1 convs (up to {} groups) each see only their group's channels, which cuts their multiply-adds by the group count; alone, each group would then only ever see its own channels. The shuffle after them ({}: a reshape to [groups, channels/groups], the two axes swapped, and back) deals every group's channels out to all groups, so the next grouped conv mixes them. No weights, no multiply-adds: a permutation of the channels.",
                s.convs, s.max_groups, s.first
            ),
        });
    }
    if let Some(d) = dense_blocks(graph, &structure) {
        let blocks: Vec<String> = d.blocks.iter().map(|b| format!("{} layers, {} to {} channels", b.layers, b.c_in, b.c_out)).collect();
        out.push(Lesson {
            title: format!("{} dense blocks: each layer adds {} channels and reads all before it", d.blocks.len(), d.growth),
            detail: format!(
                "In a dense block every layer's input is the concatenation of the block's input and every earlier layer's new features, and it adds only {} (the growth rate) of its own: {}. Features are reused instead of recomputed, so each layer stays narrow; between blocks a 1x1 conv and a pooling shrink the map.",
                d.growth,
                blocks.join("; ")
            ),
        });
    }
    // Residual blocks: what the skip path does, counted from this model's own blocks.
    let blocks: Vec<_> = structure.modules.iter().filter(|m| m.kind == ModuleKind::Residual).collect();
    if !blocks.is_empty() {
        let identity = blocks.iter().filter(|m| m.branches.get(1).is_some_and(|b| b.nodes.is_empty())).count();
        let deepest = blocks.iter().map(|m| m.branches[0].nodes.iter().filter(|&&n| matches!(graph.nodes[n].op, Op::Conv { .. })).count()).max().unwrap_or(0);
        out.push(Lesson {
            title: format!("{} residual blocks add their input back: F(x) + x", blocks.len()),
            detail: format!(
                "Each block's convolutions (up to {deepest} in a row) learn only a change F(x) to what comes in, and the skip path adds x back: {}. On the way back the skip carries the gradient past the convolutions unchanged, which is why such deep stacks still train.",
                if identity == blocks.len() {
                    format!("in all {identity} blocks unchanged")
                } else {
                    format!("in {identity} of the {} blocks unchanged, in the others through a 1x1 projection where the shape changes", blocks.len())
                }
            ),
        });
    }
    out
}
