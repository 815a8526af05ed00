//! What each layer costs and sees, computed from the graph alone (no weights needed):
//! parameters, multiply-adds, activation memory, theoretical receptive field.

use std::collections::HashSet;

use crate::graph::{Graph, Op};

/// Theoretical receptive field of one output pixel on the input image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceptiveField {
    /// Side of the input region (rows, cols) one output pixel depends on.
    pub size: [usize; 2],
    /// Input pixels between neighbouring output pixels.
    pub stride: [usize; 2],
    /// Offset of output pixel (0,0)'s region from the input's top-left, in input pixels
    /// (negative where it reaches into padding).
    pub start: [isize; 2],
    /// After global pooling or a fully connected layer: every input pixel.
    pub global: bool,
}

impl ReceptiveField {
    const INPUT: ReceptiveField = ReceptiveField { size: [1, 1], stride: [1, 1], start: [0, 0], global: false };

    /// The input region (top, left, bottom, right; exclusive) output pixel (y, x) sees,
    /// clipped to the input; for global fields, the whole input.
    pub fn region(&self, y: usize, x: usize, input_hw: [usize; 2]) -> [usize; 4] {
        if self.global {
            return [0, 0, input_hw[0], input_hw[1]];
        }
        let top = self.start[0] + (y * self.stride[0]) as isize;
        let left = self.start[1] + (x * self.stride[1]) as isize;
        let clip = |v: isize, hi: usize| v.clamp(0, hi as isize) as usize;
        [
            clip(top, input_hw[0]),
            clip(left, input_hw[1]),
            clip(top + self.size[0] as isize, input_hw[0]),
            clip(left + self.size[1] as isize, input_hw[1]),
        ]
    }
}

#[derive(Clone, Debug)]
pub struct LayerStats {
    pub node: usize,
    pub name: String,
    pub op_type: String,
    pub output_shape: Vec<usize>,
    /// Weights and biases this layer owns (each constant counted once per model).
    pub params: u64,
    /// Multiply-accumulates of Conv, Gemm and MatMul (what papers count as "multiply-adds").
    pub macs: u64,
    /// Elements in the output activation.
    pub activations: u64,
    /// Bytes of the output activation in f32.
    pub activation_bytes: u64,
    pub receptive_field: ReceptiveField,
}

#[derive(Clone, Debug)]
pub struct ModelStats {
    pub layers: Vec<LayerStats>,
    pub params: u64,
    pub macs: u64,
    /// Sum over layers: what keeping every activation for the explorer costs.
    pub activation_bytes: u64,
    /// All weights as held: 4 bytes each, 2 where the f16 FC option rounded them.
    pub weight_bytes: u64,
}

impl ModelStats {
    pub fn layer(&self, name: &str) -> Option<&LayerStats> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// 1234567 -> "1.2 M": counts of parameters and multiply-adds as the CLI and the app print them.
pub fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Multiply-adds written one way everywhere: "9.0 M MACs".
pub fn human_macs(n: u64) -> String {
    format!("{} MACs", human_count(n))
}

/// Multiply-adds of one node producing `out_elems` values.
fn macs_of(graph: &Graph, node: &crate::graph::Node, out_elems: u64) -> u64 {
    match &node.op {
        Op::Conv { .. } => {
            // Weight is [M, C/group, kh, kw]: each output sums C/group*kh*kw products.
            let w = graph.shape(node.inputs[1]);
            out_elems * (w[1] * w[2] * w[3]) as u64
        }
        Op::Gemm { trans_a, .. } => {
            let a = graph.shape(node.inputs[0]);
            let k = if *trans_a { a[0] } else { a[1] };
            out_elems * k as u64
        }
        Op::MatMul => out_elems * graph.shape(node.inputs[0]).last().copied().unwrap_or(1) as u64,
        // Multiply-adds of the convolutions and matrix products, as the papers count them.
        Op::Relu
        | Op::MaxPool { .. }
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool
        | Op::Lrn { .. }
        | Op::Concat { .. }
        | Op::Add
        | Op::Mul
        | Op::Reshape
        | Op::Identity
        | Op::Transpose { .. }
        | Op::Clip { .. }
        | Op::Softmax { .. }
        | Op::BatchNorm { .. } => 0,
    }
}

pub fn analyze(graph: &Graph) -> ModelStats {
    let mut rf = vec![ReceptiveField::INPUT; graph.values.len()];
    let mut counted: HashSet<usize> = HashSet::new();
    let mut layers = Vec::with_capacity(graph.nodes.len());
    let names = crate::graph::structure::display_names(graph);
    for (i, node) in graph.nodes.iter().enumerate() {
        let out_shape = graph.shape(node.output).to_vec();
        let out_elems: u64 = out_shape.iter().product::<usize>() as u64;
        let mut params = 0u64;
        for &v in &node.inputs {
            if graph.value(v).is_const && counted.insert(v) {
                params += graph.shape(v).iter().product::<usize>() as u64;
            }
        }
        let macs = macs_of(graph, node, out_elems);
        let data_inputs: Vec<usize> = node.inputs.iter().copied().filter(|&v| !graph.value(v).is_const).collect();
        let mut field = data_inputs
            .iter()
            .map(|&v| rf[v])
            .max_by_key(|f| (f.global, f.size[0] * f.size[1]))
            .unwrap_or(ReceptiveField::INPUT);
        match &node.op {
            Op::Conv { window, .. } | Op::MaxPool { window, .. } | Op::AveragePool { window, .. } if !field.global => {
                let k = window.effective_kernel();
                for a in 0..2 {
                    field.size[a] += (k[a] - 1) * field.stride[a];
                    field.start[a] -= (window.pads[a] * field.stride[a]) as isize;
                    field.stride[a] *= window.strides[a];
                }
            }
            Op::GlobalAveragePool | Op::Gemm { .. } | Op::MatMul => field.global = true,
            Op::Reshape if out_shape.len() < 4 => field.global = true,
            // Windows over an already global field, and ops that look at one position.
            Op::Conv { .. }
            | Op::MaxPool { .. }
            | Op::AveragePool { .. }
            | Op::Reshape
            | Op::Relu
            | Op::Lrn { .. }
            | Op::Concat { .. }
            | Op::Add
            | Op::Mul
            | Op::Identity
            | Op::Transpose { .. }
            | Op::Clip { .. }
            | Op::Softmax { .. }
            | Op::BatchNorm { .. } => {}
        }
        rf[node.output] = field;
        layers.push(LayerStats {
            node: i,
            name: names[i].clone(),
            op_type: node.op_type.clone(),
            output_shape: out_shape,
            params,
            macs,
            activations: out_elems,
            activation_bytes: out_elems * 4,
            receptive_field: field,
        });
    }
    let weight_bytes = graph.values.iter().filter(|v| v.is_const).map(|v| v.shape.iter().product::<usize>() as u64 * if v.half.is_some() { 2 } else { 4 }).sum();
    ModelStats {
        params: layers.iter().map(|l| l.params).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        activation_bytes: layers.iter().map(|l| l.activation_bytes).sum(),
        weight_bytes,
        layers,
    }
}
