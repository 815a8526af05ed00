//! Built-in architecture definitions, usable without any weights file: for analytics (no
//! weights allocated) or with seeded He-normal weights, always flagged as untrained.

mod googlenet;
mod squeezenet;
mod vgg16;

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::graph::builder::GraphBuilder;
use crate::graph::{Graph, Op, Preprocess, ValueId, Window};

pub use googlenet::googlenet;
pub use squeezenet::squeezenet1_1;
pub use vgg16::vgg16;

/// Weights for a built-in definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// Shapes only: analytics, no memory for weights.
    None,
    /// He-normal weights from this seed: runnable, meaningless outputs ("untrained").
    Seeded(u64),
}

pub const BUILTIN_NAMES: &[&str] = &["googlenet", "vgg16", "squeezenet"];

/// A built-in architecture by name.
pub fn builtin(name: &str, weights: Weights) -> Result<Graph> {
    match name {
        "googlenet" => googlenet(weights, true),
        "vgg16" => vgg16(weights),
        "squeezenet" => squeezenet1_1(weights),
        other => Err(Error::Input(format!("no built-in architecture '{other}' (have: {})", BUILTIN_NAMES.join(", ")))),
    }
}

/// Layer-by-layer construction with the conventions of the papers (square kernels, ReLU after
/// every conv unless said otherwise).
pub struct Net {
    pub b: GraphBuilder,
    rng: Option<StdRng>,
}

pub fn window(k: usize, stride: usize, pad: usize) -> Window {
    Window { kernel: [k, k], strides: [stride, stride], pads: [pad; 4], dilations: [1, 1] }
}

impl Net {
    pub fn new(weights: Weights) -> Self {
        let rng = match weights {
            Weights::None => None,
            Weights::Seeded(s) => Some(StdRng::seed_from_u64(s)),
        };
        Net { b: GraphBuilder::new(), rng }
    }

    fn weight(&mut self, name: &str, shape: Vec<usize>, fan_in: usize) -> Result<ValueId> {
        let data = self.rng.as_mut().map(|rng| {
            let n: usize = shape.iter().product();
            let dist = Normal::new(0.0f32, (2.0 / fan_in as f32).sqrt()).unwrap();
            Arc::new((0..n).map(|_| dist.sample(rng)).collect::<Vec<f32>>())
        });
        self.b.constant(name, shape, data)
    }

    fn zeros(&mut self, name: &str, n: usize) -> Result<ValueId> {
        let data = self.rng.as_ref().map(|_| Arc::new(vec![0.0f32; n]));
        self.b.constant(name, vec![n], data)
    }

    pub fn conv(&mut self, name: &str, x: ValueId, out: usize, k: usize, stride: usize, pad: usize, relu: bool) -> Result<ValueId> {
        let c = self.b.shape(x)[1];
        let w = self.weight(&format!("{name}_w"), vec![out, c, k, k], c * k * k)?;
        let bias = self.zeros(&format!("{name}_b"), out)?;
        let op_type = if relu { "Conv+Relu" } else { "Conv" };
        self.b.node(name, op_type, Op::Conv { window: window(k, stride, pad), group: 1, relu }, vec![x, w, bias], name)
    }

    pub fn max_pool(&mut self, name: &str, x: ValueId, k: usize, stride: usize, pad: usize, ceil: bool) -> Result<ValueId> {
        self.b.node(name, "MaxPool", Op::MaxPool { window: window(k, stride, pad), ceil }, vec![x], name)
    }

    pub fn avg_pool(&mut self, name: &str, x: ValueId, k: usize, stride: usize, ceil: bool) -> Result<ValueId> {
        let op = Op::AveragePool { window: window(k, stride, 0), ceil, count_include_pad: false };
        self.b.node(name, "AveragePool", op, vec![x], name)
    }

    pub fn global_avg_pool(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        self.b.node(name, "GlobalAveragePool", Op::GlobalAveragePool, vec![x], name)
    }

    pub fn lrn(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        self.b.node(name, "LRN", Op::Lrn { size: 5, alpha: 1e-4, beta: 0.75, bias: 1.0 }, vec![x], name)
    }

    pub fn concat(&mut self, name: &str, xs: Vec<ValueId>) -> Result<ValueId> {
        self.b.node(name, "Concat", Op::Concat { axis: 1 }, xs, name)
    }

    pub fn flatten(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        let s = self.b.shape(x);
        let shape = vec![s[0], s[1..].iter().product()];
        self.b.node_with_shape(name, "Flatten", Op::Reshape, vec![x], name, Some(shape))
    }

    pub fn dropout(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        self.b.node(name, "Dropout", Op::Identity, vec![x], name)
    }

    pub fn fc(&mut self, name: &str, x: ValueId, out: usize, relu: bool) -> Result<ValueId> {
        let k = self.b.shape(x)[1];
        let w = self.weight(&format!("{name}_w"), vec![out, k], k)?;
        let bias = self.zeros(&format!("{name}_b"), out)?;
        let op = Op::Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true, relu };
        self.b.node(name, if relu { "Gemm+Relu" } else { "Gemm" }, op, vec![x, w, bias], name)
    }

    pub fn softmax(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        self.b.node(name, "Softmax", Op::Softmax { axis: 1, coerce_2d: false }, vec![x], name)
    }

    pub fn finish(self, name: &str, input: ValueId, outputs: Vec<ValueId>, preprocess: Preprocess) -> Graph {
        let untrained = true;
        self.b.finish(name, input, outputs, preprocess, untrained)
    }
}
