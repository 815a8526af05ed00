//! ONNX import: protobuf bytes (decoded by prost) into the graph IR, constants folded,
//! BatchNormalization folded into its Conv, ReLU fused into its Conv/Gemm, every shape checked.
//!
//! `ops.rs` is the table of accepted ops (arity, attributes, one import function each);
//! `constants.rs` reads tensors, `attrs.rs` attributes, `reshape.rs` reshape targets,
//! `fuse.rs` the fusions.

/// The ONNX protobuf schema as prost types (public so tests and tools can build models).
#[allow(clippy::all, missing_docs)]
pub mod proto;

mod attrs;
mod constants;
mod fuse;
mod ops;
mod reshape;
mod stream;

pub use stream::{StreamImport, WeightPrecision};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prost::Message;

use crate::error::{Error, Result};
use crate::graph::builder::GraphBuilder;
use crate::graph::{Graph, Preprocess, ValueId};
use attrs::Attrs;
use constants::{tensor_const, Const, ConstData};
use ops::{Imported, NodeCx};
pub use ops::supported_ops;
use proto::{ModelProto, NodeProto};

/// Ops that only quantized (int8) models use: refused with one clear message.
const QUANTIZED_OPS: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "QLinearAdd",
    "QLinearMul",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
    "QLinearConcat",
    "ConvInteger",
    "MatMulInteger",
];

/// Recognises the model family from names the exporters leave, to pick preprocessing; where
/// they say nothing, ImageNet's mean/std, marked as a guess (the app asks).
pub fn recognise_preprocess(input_name: &str, names: &[&str]) -> Preprocess {
    // BVLC models converted through Caffe2 carry Caffe blob names: data_0, conv1/7x7_s2_w_0, ...
    let caffe = input_name.ends_with("data_0") || names.iter().any(|n| n.ends_with("_w_0") || n.ends_with("_b_0"));
    // PyTorch (torchvision: features.0.weight, onnx::Conv_123) and MXNet Gluon
    // (vgg0_conv0_weight, resnetv17_dense0_bias) exports: ImageNet's mean and std on RGB.
    let torch = names.iter().any(|n| n.ends_with(".weight") || n.ends_with(".bias") || n.starts_with("onnx::"));
    let gluon = names.iter().any(|n| (n.ends_with("_weight") || n.ends_with("_gamma")) && n.split('_').next().is_some_and(|s| s.ends_with(|c: char| c.is_ascii_digit())));
    if caffe {
        Preprocess::caffe_bgr()
    } else if torch || gluon {
        Preprocess::imagenet_rgb()
    } else {
        Preprocess { guessed: true, ..Preprocess::imagenet_rgb() }
    }
}

/// Parses and imports an ONNX model from its bytes.
pub fn import(bytes: &[u8], fallback_name: &str) -> Result<Graph> {
    if bytes.is_empty() {
        return Err(Error::NotOnnx("the file is empty".into()));
    }
    let model = ModelProto::decode(bytes)
        .map_err(|e| Error::NotOnnx(format!("cannot decode protobuf ({e}); truncated or not an .onnx file?")))?;
    import_model(model, HashMap::new(), HashMap::new(), fallback_name)
}

/// `import` with the weights held in `precision` (the whole file goes through the streaming
/// importer, which rounds FC weights as they are read).
pub fn import_with(bytes: &[u8], fallback_name: &str, precision: WeightPrecision) -> Result<Graph> {
    if precision == WeightPrecision::F32 {
        return import(bytes, fallback_name);
    }
    let mut s = StreamImport::with_total(bytes.len() as u64).precision(precision);
    s.push(bytes)?;
    import_stream(s, fallback_name)
}

/// The file a `StreamImport` was fed, as `import` reads it whole.
pub fn import_stream(stream: StreamImport, fallback_name: &str) -> Result<Graph> {
    let streamed = stream.finish()?;
    import_model(streamed.model, streamed.floats, streamed.halves, fallback_name)
}

/// A file (of `size` bytes when known) read in chunks into a `StreamImport`: the weights are
/// never in memory twice.
pub fn import_reader(mut r: impl std::io::Read, size: Option<u64>, fallback_name: &str, precision: WeightPrecision) -> Result<Graph> {
    let mut s = size.map_or_else(StreamImport::new, StreamImport::with_total).precision(precision);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Input(format!("cannot read the file: {e}"))),
        };
        s.push(&buf[..n])?;
    }
    import_stream(s, fallback_name)
}

/// `floats`: float initializers whose data was taken aside while streaming (their
/// TensorProtos lack raw_data), moved into the graph without a copy; `halves`: the same,
/// rounded to half precision as they streamed (the f16 option).
fn import_model(model: ModelProto, mut floats: HashMap<String, Vec<f32>>, mut halves: HashMap<String, Vec<u16>>, fallback_name: &str) -> Result<Graph> {
    let graph = model
        .graph
        .as_ref()
        .filter(|g| !g.node.is_empty())
        .ok_or_else(|| Error::NotOnnx("a valid protobuf, but it holds no ONNX graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
        .map(|o| o.version())
        .unwrap_or(1);

    let mut consts: HashMap<String, Const> = HashMap::new();
    for init in &graph.initializer {
        let c = match (floats.remove(init.name()), halves.remove(init.name())) {
            (Some(v), _) => constants::streamed_const(init, v)?,
            (None, Some(h)) => constants::streamed_half(init, h)?,
            (None, None) => tensor_const(init)?,
        };
        consts.insert(init.name().to_string(), c);
    }

    // The one real input: a graph input without an initializer (IR 3 lists weights as inputs too).
    let real_inputs: Vec<_> = graph.input.iter().filter(|i| !consts.contains_key(i.name())).collect();
    let input_info = match real_inputs.as_slice() {
        [one] => *one,
        [] => return Err(Error::Unsupported("the model has no image input".into())),
        many => {
            let names: Vec<_> = many.iter().map(|i| i.name()).collect();
            return Err(Error::Unsupported(format!("the model has {} inputs ({names:?}); ConvLens needs one image input", many.len())));
        }
    };
    let input_shape = input_shape(input_info)?;

    let nodes = topo_sort(&graph.node, &consts, input_info.name())?;
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in &nodes {
        for i in &n.input {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *uses.entry(o.name()).or_default() += 1;
    }

    let mut b = GraphBuilder::new();
    let input = b.input(input_info.name(), input_shape)?;
    let mut imp = Importer { b, consts, opset, uses, synthesized: 0, computed: HashSet::new() };
    for node in &nodes {
        imp.node(node)?;
    }

    let mut outputs = Vec::new();
    for o in &graph.output {
        let id = imp
            .b
            .lookup(o.name())
            .ok_or_else(|| Error::NotOnnx(format!("graph output '{}' is never produced", o.name())))?;
        outputs.push(id);
    }
    let names: Vec<&str> = graph.initializer.iter().map(|i| i.name()).chain(nodes.iter().flat_map(|n| n.output.iter().map(|s| s.as_str()))).collect();
    let preprocess = recognise_preprocess(input_info.name(), &names);
    let name = Some(graph.name()).filter(|n| !n.is_empty()).unwrap_or(fallback_name);
    let mut g = imp.b.finish(name, input, outputs, preprocess, false);
    g.keep_half_only_for_fc();
    Ok(g)
}

fn input_shape(info: &proto::ValueInfoProto) -> Result<Vec<usize>> {
    use proto::tensor_shape_proto::dimension::Value as Dim;
    use proto::type_proto::Value as Ty;
    let shape = match info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(Ty::TensorType(t)) => {
            // 0: the file did not say; 1: float32.
            if t.elem_type() > 1 {
                let ty = proto::tensor_proto::DataType::try_from(t.elem_type()).map_or_else(|_| format!("type {}", t.elem_type()), |d| format!("{d:?}"));
                return Err(Error::Unsupported(format!("input '{}' is {ty}: ConvLens feeds float32 tensors (an image after preprocessing)", info.name())));
            }
            t.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    // Symbolic dims of an image input: batch 1, 3 channels, 224x224, the size every supported
    // CNN was trained at; of any other input, 1. Fixed dims are the file's, batch included.
    let defaults: &[usize] = if shape.len() == 4 { &[1, 3, 224, 224] } else { &[] };
    if shape.is_empty() || shape.len() > 6 {
        return Err(Error::Unsupported(format!("input '{}' has rank {}: ConvLens takes tensors of rank 1 to 6", info.name(), shape.len())));
    }
    let mut out = Vec::new();
    for (i, d) in shape.iter().enumerate() {
        out.push(match d.value {
            Some(Dim::DimValue(0)) => return Err(Error::Unsupported(format!("input '{}' has a dimension of 0: an empty tensor has nothing to look at", info.name()))),
            Some(Dim::DimValue(v)) if v > 0 => v as usize,
            _ => defaults.get(i).copied().unwrap_or(1),
        });
    }
    if out.len() == 4 && (out[2] > 4096 || out[3] > 4096) {
        return Err(Error::TooLarge(format!("input '{}' is {}x{}", info.name(), out[2], out[3])));
    }
    crate::tensor::numel(&out)?;
    Ok(out)
}

/// Nodes in an order where each input is produced before it is read (ONNX requires it,
/// but not every exporter obeys).
fn topo_sort<'a>(nodes: &'a [NodeProto], consts: &HashMap<String, Const>, input: &str) -> Result<Vec<&'a NodeProto>> {
    let mut known: HashSet<&str> = consts.keys().map(|k| k.as_str()).collect();
    known.insert(input);
    known.insert("");
    let mut done = vec![false; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    loop {
        let mut progressed = false;
        for (i, n) in nodes.iter().enumerate() {
            if !done[i] && n.input.iter().all(|x| known.contains(x.as_str())) {
                done[i] = true;
                progressed = true;
                order.push(n);
                known.extend(n.output.iter().map(|s| s.as_str()));
            }
        }
        if order.len() == nodes.len() {
            return Ok(order);
        }
        if !progressed {
            let stuck = nodes.iter().zip(&done).find(|(_, d)| !**d).map(|(n, _)| n).unwrap();
            let missing: Vec<_> = stuck.input.iter().filter(|x| !known.contains(x.as_str())).collect();
            return Err(Error::node(stuck.name(), stuck.op_type(), format!("reads {missing:?}, which nothing produces")));
        }
    }
}
struct Importer<'a> {
    b: GraphBuilder,
    consts: HashMap<String, Const>,
    opset: i64,
    uses: HashMap<&'a str, usize>,
    /// Values ConstantOfShape has made so far: a few bytes of file can ask for gigabytes.
    synthesized: usize,
    /// Constants computed by the file's nodes rather than given as initializers.
    computed: HashSet<String>,
}

impl Importer<'_> {
    /// A runtime value for `name`, turning a constant into a graph weight on first use.
    pub(super) fn value(&mut self, name: &str, node: &NodeProto) -> Result<ValueId> {
        if let Some(id) = self.b.lookup(name) {
            return Ok(id);
        }
        // Moved out of the constant table, not cloned: the graph owns the only copy of the weights.
        match self.consts.remove(name) {
            Some(c) => {
                let data = match c.data {
                    ConstData::F32(v) => v,
                    ConstData::I64(v) => Arc::new(v.iter().map(|&x| x as f32).collect()),
                    // Finite by construction (the stream refused the rest).
                    ConstData::F16(bits) => return self.b.half_constant(name, crate::half::HalfTensor { shape: c.shape, bits: Arc::unwrap_or_clone(bits) }),
                };
                if data.iter().any(|x| !x.is_finite()) {
                    return Err(Error::node(node.name(), node.op_type(), format!("weight '{name}' contains NaN or infinity")));
                }
                let id = self.b.constant(name, c.shape, Some(data))?;
                if self.computed.contains(name) {
                    self.b.mark_folded(id);
                }
                Ok(id)
            }
            None => Err(Error::node(node.name(), node.op_type(), format!("input '{name}' is not defined"))),
        }
    }

    fn const_input(&self, node: &NodeProto, idx: usize) -> Option<&Const> {
        node.input.get(idx).and_then(|n| self.consts.get(n))
    }

    fn all_const(&self, node: &NodeProto) -> bool {
        node.input.iter().filter(|i| !i.is_empty()).all(|i| self.consts.contains_key(i))
    }

    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.consts.get(name).map(|c| c.shape.clone()).or_else(|| self.b.lookup(name).map(|id| self.b.shape(id).to_vec()))
    }

    /// The shape of the node's input `i`, which the arity check guarantees is named.
    fn shape_of_input(&self, cx: &NodeCx, i: usize) -> Result<Vec<usize>> {
        let name = cx.inputs.get(i).copied().unwrap_or("");
        self.shape_of(name).ok_or_else(|| cx.err(format!("input {i} ('{name}') is missing")))
    }

    fn node(&mut self, node: &NodeProto) -> Result<()> {
        let op = node.op_type();
        let name = if node.name().is_empty() { node.output.first().map(|s| s.as_str()).unwrap_or("?") } else { node.name() };
        if !node.domain().is_empty() && node.domain() != "ai.onnx" {
            return Err(Error::node(name, op, format!("custom op domain '{}' is not supported", node.domain())));
        }
        if QUANTIZED_OPS.contains(&op) {
            return Err(Error::Unsupported(format!(
                "quantized (int8) model: node '{name}' uses {op}; ConvLens runs float32 models, load the fp32 file (e.g. googlenet-12.onnx instead of googlenet-12-int8.onnx)"
            )));
        }
        let Some(spec) = ops::spec(op) else {
            let supported: Vec<&str> = supported_ops().collect();
            return Err(Error::node(name, op, format!("unsupported op {op} (supported: {})", supported.join(", "))));
        };
        ops::check_arity(spec, node, name)?;
        let cx = NodeCx {
            node,
            attrs: Attrs::new(node, spec.attrs)?,
            name,
            inputs: node.input.iter().map(|s| s.as_str()).collect(),
            out_name: &node.output[0],
        };
        let (run_op, shape) = match (spec.import)(self, &cx)? {
            Imported::Folded => {
                if self.consts.contains_key(cx.out_name) {
                    self.computed.insert(cx.out_name.to_string());
                }
                return Ok(());
            }
            Imported::Node(op) => (op, None),
            Imported::Shaped(op, shape) => (op, Some(shape)),
            Imported::Reads(run_op, ins) => {
                self.b.node_with_shape(name, op, run_op, ins, cx.out_name, None)?;
                return Ok(());
            }
        };
        // Reshape-like ops read only their data; the rest read every input the file gave.
        let reads = if shape.is_some() { &cx.inputs[..1] } else { &cx.inputs[..] };
        let mut ins = Vec::with_capacity(reads.len());
        for inp in reads.iter().filter(|i| !i.is_empty()) {
            ins.push(self.value(inp, node)?);
        }
        self.b.node_with_shape(name, op, run_op, ins, cx.out_name, shape)?;
        Ok(())
    }
}
