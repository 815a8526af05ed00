//! The graph IR: values (activations or constant weights) and nodes in topological order,
//! with every shape known, so kernels, analytics and the explorer never re-derive them.

pub mod builder;
pub mod shapes;
pub mod structure;


use std::borrow::Cow;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::half::HalfTensor;
use crate::tensor::Tensor;

pub type ValueId = usize;

#[derive(Clone, Debug)]
pub struct Value {
    pub name: String,
    pub shape: Vec<usize>,
    /// Constant data (weights, folded constants). `None` for activations, and for the
    /// weights of a built-in architecture loaded for analytics only.
    pub data: Option<Arc<Tensor>>,
    /// A weight held in half precision instead (the f16 option; then `data` is `None`): only
    /// ever an FC layer's weights, which `kernels::fc` reads as they are.
    pub half: Option<Arc<HalfTensor>>,
    pub is_const: bool,
}

impl Value {
    pub fn activation(name: impl Into<String>, shape: Vec<usize>) -> Self {
        Value { name: name.into(), shape, data: None, half: None, is_const: false }
    }
}

/// 2-D window geometry shared by Conv and the pools; pads are [top, left, bottom, right].
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
}

impl Window {
    pub fn effective_kernel(&self) -> [usize; 2] {
        [
            (self.kernel[0] - 1) * self.dilations[0] + 1,
            (self.kernel[1] - 1) * self.dilations[1] + 1,
        ]
    }

    /// Output size of one spatial axis, floor or ceil as ONNX defines it; with ceil, a last
    /// window that would start inside the bottom/right padding is dropped.
    pub fn out_dim(&self, axis: usize, input: usize, ceil: bool) -> Result<usize> {
        let padded = input + self.pads[axis] + self.pads[axis + 2];
        let k = self.effective_kernel()[axis];
        if padded < k {
            return Err(Error::Shape(format!("window {k} larger than padded input {padded}")));
        }
        let s = self.strides[axis];
        let span = padded - k;
        let mut out = if ceil { span.div_ceil(s) + 1 } else { span / s + 1 };
        if ceil && (out - 1) * s >= input + self.pads[axis] {
            out -= 1;
        }
        Ok(out)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// inputs: x, w [M, C/group, kh, kw], optional bias [M]
    Conv { window: Window, group: usize, relu: bool },
    Relu,
    /// Values held to [min, max] (MobileNet v2's ReLU6 is Clip(0, 6)).
    Clip { min: f32, max: f32 },
    MaxPool { window: Window, ceil: bool },
    AveragePool { window: Window, ceil: bool, count_include_pad: bool },
    GlobalAveragePool,
    Lrn { size: usize, alpha: f32, beta: f32, bias: f32 },
    Concat { axis: usize },
    /// Y = alpha * A' * B' + beta * C, A' and B' optionally transposed.
    Gemm { alpha: f32, beta: f32, trans_a: bool, trans_b: bool, relu: bool },
    MatMul,
    /// Element-wise, numpy broadcasting.
    Add,
    /// Element-wise product, numpy broadcasting (a per-channel scale in exported BatchNorms).
    Mul,
    /// Flatten, Reshape, Squeeze, Unsqueeze: data unchanged, output shape already inferred.
    Reshape,
    /// Dropout at inference, Identity.
    Identity,
    /// Axes permuted, any rank: output axis i is input axis perm[i] (ShuffleNet's channel
    /// shuffle: [N, g, C/g, H, W] with perm [0, 2, 1, 3, 4]).
    Transpose { perm: Vec<usize> },
    /// opset < 13: input coerced to 2-D at `axis`; opset >= 13: along `axis` alone.
    Softmax { axis: usize, coerce_2d: bool },
    /// Left only when it cannot be folded into a preceding Conv.
    /// inputs: x, scale, bias, mean, var
    BatchNorm { epsilon: f32 },
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    /// The op as the file spelled it (e.g. "Flatten" for what runs as `Op::Reshape`).
    pub op_type: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
    /// A ReLU the importer fused into this Conv/Gemm. This node no longer writes the value the
    /// ReLU read; `Graph::unfused` brings it back for whoever must see every original tensor.
    pub fused_relu: Option<FusedRelu>,
}

/// What a fused ReLU was called in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedRelu {
    /// The ReLU node's name.
    pub node: String,
    /// The pre-activation value's name (the Conv/Gemm output the ReLU read).
    pub input: String,
}

/// How pixels become the input tensor for a model family.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    pub family: String,
    /// Multiply 0..255 pixel values by this first (1/255 for [0,1] models).
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Channel order the model wants: false = RGB, true = BGR.
    pub bgr: bool,
    /// The file gave no sign of its family: this is the default, and the user should be asked.
    pub guessed: bool,
}

impl Preprocess {
    /// Every contract a user can pick: (key for `?prep=`, what it is).
    pub const CHOICES: [(&'static str, &'static str); 5] = [
        ("imagenet", "ImageNet mean/std, RGB in [0,1] (PyTorch, MXNet)"),
        ("caffe", "Caffe: BGR, 0..255 minus the channel mean (BVLC, Caffe2)"),
        ("inception", "RGB scaled to [-1, 1] (TensorFlow/Keras Inception, MobileNet)"),
        ("unit", "RGB in [0, 1], no mean"),
        ("raw", "RGB 0..255 as is"),
    ];

    pub fn from_key(key: &str) -> Option<Self> {
        let rgb = |family: &str, scale: f32, mean: f32, std: f32| Preprocess { family: family.into(), scale, mean: [mean; 3], std: [std; 3], bgr: false, guessed: false };
        Some(match key {
            "imagenet" => Self::imagenet_rgb(),
            "caffe" => Self::caffe_bgr(),
            "inception" => rgb(Self::CHOICES[2].1, 1.0 / 255.0, 0.5, 0.5),
            "unit" => rgb(Self::CHOICES[3].1, 1.0 / 255.0, 0.0, 1.0),
            "raw" => rgb(Self::CHOICES[4].1, 1.0, 0.0, 1.0),
            _ => return None,
        })
    }

    /// The key of the contract this is.
    pub fn key(&self) -> Option<&'static str> {
        Self::CHOICES.iter().map(|(k, _)| *k).find(|k| Self::from_key(k).is_some_and(|p| Preprocess { guessed: self.guessed, ..p } == *self))
    }

    pub fn imagenet_rgb() -> Self {
        Preprocess {
            family: Self::CHOICES[0].1.into(),
            scale: 1.0 / 255.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            bgr: false,
            guessed: false,
        }
    }

    pub fn caffe_bgr() -> Self {
        Preprocess {
            family: Self::CHOICES[1].1.into(),
            scale: 1.0,
            mean: [123.68, 116.779, 103.939],
            std: [1.0, 1.0, 1.0],
            bgr: true,
            guessed: false,
        }
    }
}

/// What the output of the classifier means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    Logits,
    Probabilities,
}

#[derive(Clone, Debug)]
pub struct Graph {
    pub name: String,
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub input: ValueId,
    pub outputs: Vec<ValueId>,
    pub preprocess: Preprocess,
    /// True when weights are seeded random rather than trained: shown wherever results are.
    pub untrained: bool,
    /// Constants that nodes of the file computed (a Constant, a Reshape of weights), folded at
    /// import: outputs of the file's graph that no node here writes.
    pub folded: Vec<ValueId>,
}

impl Graph {
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id]
    }

    pub fn shape(&self, id: ValueId) -> &[usize] {
        &self.values[id].shape
    }

    pub fn find_value(&self, name: &str) -> Option<ValueId> {
        self.values.iter().position(|v| v.name == name)
    }

    /// The node whose output or name is `name`.
    pub fn find_node(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .or_else(|| self.nodes.iter().position(|n| self.values[n.output].name == name))
    }

    /// Constant data of a value as f32 (a half-precision weight widened, exactly), or an error
    /// naming what is missing.
    pub fn const_data(&self, id: ValueId) -> Result<Cow<'_, Tensor>> {
        let v = &self.values[id];
        match (&v.data, &v.half) {
            (Some(t), _) => Ok(Cow::Borrowed(t)),
            (None, Some(h)) => Ok(Cow::Owned(h.to_f32())),
            (None, None) => Err(Error::Input(format!("'{}' has no weights loaded (analytics-only model)", v.name))),
        }
    }

    /// Weights held in half precision, by value: how many and their bytes.
    pub fn half_weights(&self) -> (usize, usize) {
        self.values.iter().filter_map(|v| v.half.as_ref()).fold((0, 0), |(n, b), h| (n + h.bits.len(), b + 2 * h.bits.len()))
    }

    /// Widens every half-precision weight that something other than a fully connected layer
    /// reads back to f32: only `kernels::fc` (and the GPU's FC upload, and the FC backward)
    /// reads halves directly, anything else would widen them on every pass.
    pub fn keep_half_only_for_fc(&mut self) {
        let consumers = self.consumers();
        for v in 0..self.values.len() {
            if self.values[v].half.is_none() {
                continue;
            }
            let only_fc = !consumers[v].is_empty()
                && consumers[v].iter().all(|&i| self.nodes[i].inputs.get(1) == Some(&v) && crate::prep::is_fc(self, &self.nodes[i]));
            if !only_fc {
                let h = self.values[v].half.take().expect("checked");
                self.values[v].data = Some(Arc::new(h.to_f32()));
            }
        }
    }

    /// The first input that is not a constant: the tensor a layer transforms.
    pub fn data_input(&self, node: &Node) -> ValueId {
        node.inputs.iter().copied().find(|&i| !self.values[i].is_const).unwrap_or(node.inputs[0])
    }

    /// For each value, the indices of the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut c = vec![Vec::new(); self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                if !c[v].contains(&i) {
                    c[v].push(i);
                }
            }
        }
        c
    }

    /// For each value, the node that produces it.
    pub fn producers(&self) -> Vec<Option<usize>> {
        let mut p = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            p[n.output] = Some(i);
        }
        p
    }

    /// The side of the one square RGB image input (224 for the zoo's CNNs); an error naming
    /// the shape for any other input.
    pub fn image_side(&self) -> Result<usize> {
        match self.shape(self.input) {
            [1, 3, h, w] if h == w => Ok(*h),
            s => Err(Error::Unsupported(format!("input shape {s:?}: ConvLens needs one square RGB image input"))),
        }
    }

    /// This graph with every fused ReLU split back into its Conv/Gemm and a Relu node, so every
    /// tensor of the file's graph exists again under its own name (`run --dump`, the explorer's
    /// pre-activation view). Weights are shared, not copied. A folded BatchNorm stays folded: its
    /// Conv's own output was never computed from the file's weights.
    pub fn unfused(&self) -> Graph {
        let mut g = self.clone();
        g.nodes.clear();
        for n in &self.nodes {
            let Some(f) = &n.fused_relu else {
                g.nodes.push(n.clone());
                continue;
            };
            let mut op = n.op.clone();
            match &mut op {
                Op::Conv { relu, .. } | Op::Gemm { relu, .. } => *relu = false,
                _ => {
                    g.nodes.push(n.clone());
                    continue;
                }
            }
            let pre = g.values.len();
            g.values.push(Value::activation(f.input.clone(), self.values[n.output].shape.clone()));
            let op_type = n.op_type.strip_suffix("+Relu").unwrap_or(&n.op_type).to_string();
            g.nodes.push(Node { name: n.name.clone(), op_type, op, inputs: n.inputs.clone(), output: pre, fused_relu: None });
            g.nodes.push(Node { name: f.node.clone(), op_type: "Relu".into(), op: Op::Relu, inputs: vec![pre], output: n.output, fused_relu: None });
        }
        g
    }

    /// The part of this graph that computes `value`, its only output, for an input of `side` x
    /// `side` pixels (None: as it is), every shape inferred again. Value ids stay as they are, so
    /// `value` names the same tensor. What feature visualization runs: the forward pass stops at
    /// the layer, and layers before a fixed-size head (GoogLeNet's 7x7 average pool, an FC)
    /// take any input size. A Reshape on the way keeps the file's target, so resizing through one
    /// is refused.
    pub fn up_to(&self, value: ValueId, side: Option<usize>) -> Result<Graph> {
        let producers = self.producers();
        let mut needed = vec![false; self.values.len()];
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut needed[v], true) {
                continue;
            }
            if let Some(p) = producers[v] {
                stack.extend(self.nodes[p].inputs.iter().copied());
            }
        }
        let mut g = self.clone();
        g.nodes = self.nodes.iter().filter(|n| needed[n.output]).cloned().collect();
        g.outputs = vec![value];
        let Some(side) = side.filter(|&s| s != self.image_side().unwrap_or(0)) else { return Ok(g) };
        let s = &mut g.values[g.input].shape;
        if s.len() != 4 {
            return Err(Error::Unsupported(format!("input shape {s:?}: only an image input can be resized")));
        }
        (s[2], s[3]) = (side, side);
        for i in 0..g.nodes.len() {
            let node = &g.nodes[i];
            let ins: Vec<&[usize]> = node.inputs.iter().map(|&v| g.values[v].shape.as_slice()).collect();
            let shape = match node.op {
                Op::Identity => ins[0].to_vec(),
                Op::Reshape => return Err(Error::Unsupported(format!("'{}' reshapes to the file's fixed shape: this layer cannot take a {side} px input", node.name))),
                _ => shapes::infer(&node.op, &ins).map_err(|e| Error::node(&node.name, &node.op_type, format!("at {side} px: {e}")))?,
            };
            crate::tensor::numel(&shape)?;
            let out = node.output;
            g.values[out].shape = shape;
        }
        Ok(g)
    }

    pub fn has_weights(&self) -> bool {
        self.values.iter().all(|v| !v.is_const || v.data.is_some() || v.half.is_some())
    }
}

/// A tensor name as a file name: '/' and ':' become '_' (as `convlens run --dump` writes them).
pub fn file_name_for(name: &str) -> String {
    name.replace(['/', ':'], "_")
}
