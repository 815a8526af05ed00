//! The seed text's lessons, each measured from a graph rather than typed in: stacked 3x3
//! convs vs one 7x7, VGG16's fc6 share, Inception with and without 1x1 bottlenecks, and
//! global average pooling instead of a fully connected layer.

use crate::analytics::{analyze, human_count, ModelStats};
use crate::archs::{Net, Weights};
use crate::error::Result;
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

/// The seed's lessons as sentences, from this model's own numbers where it has them: what the
/// app's lessons panel and `convlens inspect` both show.
pub fn texts(graph: &Graph, stats: &ModelStats) -> Vec<Lesson> {
    let mut out = Vec::new();
    if let Some(l) = largest_layer(stats) {
        out.push(Lesson {
            title: format!("{} holds {:.1}% of the parameters", l.layer, 100.0 * l.params as f64 / l.total as f64),
            detail: format!(
                "{} of {} parameters sit in one layer. In VGG16 that layer is fc6 (7x7x512 inputs x 4096 outputs): fully connected layers on a spatial map are where the weights go.",
                human_count(l.params),
                human_count(l.total)
            ),
        });
    }
    if let Ok(s) = stacked_3x3_vs_7x7(64) {
        out.push(Lesson {
            title: "Three stacked 3x3 convs see as far as one 7x7".into(),
            detail: format!(
                "Receptive field {}x{} either way, but {} weights (27C^2) instead of {} (49C^2) at C=64, and two more ReLUs in between.",
                s.stacked_receptive_field, s.stacked_receptive_field, s.stacked_weights, s.single_weights
            ),
        });
    }
    if let (Ok(n), Ok(b)) = (lecture_inception(false), lecture_inception(true)) {
        out.push(Lesson {
            title: format!("1x1 bottlenecks cut an Inception module from {}MACs to {}MACs", human_count(n.macs), human_count(b.macs)),
            detail: format!(
                "The lecture's module on 28x28x256 (1x1 128, 3x3 192, 5x5 96, pool) costs {} multiply-adds and outputs depth {}; 64-channel 1x1 reductions before the 3x3 and 5x5 and after the pool bring it to {} and depth {}.",
                n.macs, n.output_depth, b.macs, b.output_depth
            ),
        });
    }
    if let Some(p) = pooling_vs_fc(graph) {
        out.push(Lesson {
            title: "Average pooling replaces a huge fully connected layer".into(),
            detail: format!(
                "{} averages the {}x{}x{} map before the classifier: {} weights, where an FC layer on the full map would need {}.",
                p.pool,
                p.map[1],
                p.map[2],
                p.map[0],
                human_count(p.classifier_weights),
                human_count(p.fc_instead_weights)
            ),
        });
    }
    out
}
