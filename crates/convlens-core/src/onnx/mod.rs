//! ONNX import: protobuf bytes (decoded by prost) into the graph IR, constants folded,
//! BatchNormalization folded into its Conv, ReLU fused into its Conv/Gemm, every shape checked.

/// The ONNX protobuf schema as prost types (public so tests and tools can build models).
#[allow(clippy::all, missing_docs)]
pub mod proto;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prost::Message;

use crate::error::{Error, Result};
use crate::graph::builder::GraphBuilder;
use crate::graph::{Graph, Op, Preprocess, ValueId, Window};
use crate::tensor::numel;
use proto::tensor_proto::DataType;
use proto::{AttributeProto, ModelProto, NodeProto, TensorProto};

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

pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "Relu",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "LRN",
    "Concat",
    "Gemm",
    "MatMul",
    "Add",
    "Flatten",
    "Reshape",
    "Dropout",
    "Identity",
    "Softmax",
    "BatchNormalization",
    "Constant",
    "ConstantOfShape",
    "Unsqueeze",
    "Squeeze",
];

/// Attributes that old exporters (Caffe2, early opsets) write and that change nothing at inference.
const IGNORED_ATTRS: &[&str] = &["is_test", "ratio", "seed", "momentum", "spatial", "broadcast", "consumed_inputs", "training_mode"];

#[derive(Clone, Debug)]
enum ConstData {
    /// Shared, so folding a Reshape or handing weights to the graph copies no floats.
    F32(Arc<Vec<f32>>),
    I64(Vec<i64>),
}

#[derive(Clone, Debug)]
struct Const {
    shape: Vec<usize>,
    data: ConstData,
}

impl Const {
    fn as_i64(&self) -> Vec<i64> {
        match &self.data {
            ConstData::I64(v) => v.clone(),
            ConstData::F32(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }

    fn as_f32(&self) -> Arc<Vec<f32>> {
        match &self.data {
            ConstData::F32(v) => Arc::clone(v),
            ConstData::I64(v) => Arc::new(v.iter().map(|&x| x as f32).collect()),
        }
    }
}

fn dims(t: &TensorProto) -> Result<Vec<usize>> {
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| Error::NotOnnx(format!("tensor '{}' has negative dim {d}", t.name()))))
        .collect::<Result<Vec<_>>>()?;
    numel(&shape)?;
    Ok(shape)
}

fn tensor_const(t: &TensorProto) -> Result<Const> {
    let shape = dims(t)?;
    let n = numel(&shape)?;
    if t.data_location == Some(proto::tensor_proto::DataLocation::External as i32) {
        return Err(Error::Unsupported(format!(
            "tensor '{}' keeps its data in an external file; export the model with weights inside the .onnx",
            t.name()
        )));
    }
    let bad_len = |got: usize| {
        Error::NotOnnx(format!("tensor '{}' of shape {shape:?} holds {got} values (truncated or corrupt file?)", t.name()))
    };
    let raw = t.raw_data.as_deref().unwrap_or(&[]);
    let data = match DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined) {
        DataType::Float => {
            let v: Vec<f32> = if !raw.is_empty() {
                if raw.len() != n * 4 {
                    return Err(bad_len(raw.len() / 4));
                }
                raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            } else {
                t.float_data.clone()
            };
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            ConstData::F32(Arc::new(v))
        }
        DataType::Double => {
            let v: Vec<f32> = if !raw.is_empty() {
                if raw.len() != n * 8 {
                    return Err(bad_len(raw.len() / 8));
                }
                raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32).collect()
            } else {
                t.double_data.iter().map(|&x| x as f32).collect()
            };
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            ConstData::F32(Arc::new(v))
        }
        DataType::Int64 => {
            let v: Vec<i64> = if !raw.is_empty() {
                if raw.len() != n * 8 {
                    return Err(bad_len(raw.len() / 8));
                }
                raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
            } else {
                t.int64_data.clone()
            };
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            ConstData::I64(v)
        }
        DataType::Int32 => {
            let v: Vec<i64> = if !raw.is_empty() {
                if raw.len() != n * 4 {
                    return Err(bad_len(raw.len() / 4));
                }
                raw.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64).collect()
            } else {
                t.int32_data.iter().map(|&x| x as i64).collect()
            };
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            ConstData::I64(v)
        }
        DataType::Int8 | DataType::Uint8 => {
            return Err(Error::Unsupported(format!(
                "tensor '{}' is int8/uint8: quantized models are not supported; use the fp32 model",
                t.name()
            )))
        }
        other => {
            return Err(Error::Unsupported(format!("tensor '{}' has data type {other:?}; only float32 weights are supported", t.name())))
        }
    };
    Ok(Const { shape, data })
}

struct Attrs<'a> {
    node: &'a NodeProto,
    by_name: HashMap<&'a str, &'a AttributeProto>,
}

impl<'a> Attrs<'a> {
    fn new(node: &'a NodeProto, known: &[&str]) -> Result<Self> {
        let mut by_name = HashMap::new();
        for a in &node.attribute {
            let name = a.name();
            if !known.contains(&name) && !IGNORED_ATTRS.contains(&name) {
                return Err(Error::node(node.name(), node.op_type(), format!("unsupported attribute '{name}'")));
            }
            by_name.insert(name, a);
        }
        Ok(Attrs { node, by_name })
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::node(self.node.name(), self.node.op_type(), msg)
    }

    fn int(&self, name: &str, default: i64) -> i64 {
        self.by_name.get(name).and_then(|a| a.i).unwrap_or(default)
    }

    fn float(&self, name: &str, default: f32) -> f32 {
        self.by_name.get(name).and_then(|a| a.f).unwrap_or(default)
    }

    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.by_name.get(name).map(|a| a.ints.clone())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.by_name.get(name).and_then(|a| a.s.as_ref()).map(|s| String::from_utf8_lossy(s).into_owned())
    }

    fn usizes(&self, name: &str, len: usize, default: usize) -> Result<Vec<usize>> {
        match self.ints(name) {
            None => Ok(vec![default; len]),
            Some(v) if v.len() == len && v.iter().all(|&x| x >= 0) => Ok(v.iter().map(|&x| x as usize).collect()),
            Some(v) => Err(self.err(format!("attribute '{name}' = {v:?}: expected {len} non-negative values"))),
        }
    }

    /// Window geometry with ONNX's auto_pad, pads, strides and dilations.
    fn window(&self, kernel: [usize; 2], input_hw: [usize; 2]) -> Result<Window> {
        if kernel.contains(&0) {
            return Err(self.err(format!("kernel_shape {kernel:?} has a zero")));
        }
        let s = self.usizes("strides", 2, 1)?;
        let d = self.usizes("dilations", 2, 1)?;
        if s.contains(&0) || d.contains(&0) {
            return Err(self.err("strides and dilations must be positive"));
        }
        let mut window = Window { kernel, strides: [s[0], s[1]], pads: [0; 4], dilations: [d[0], d[1]] };
        let auto_pad = self.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
        match auto_pad.as_str() {
            "NOTSET" => {
                let p = self.usizes("pads", 4, 0)?;
                window.pads = [p[0], p[1], p[2], p[3]];
            }
            "VALID" => {}
            "SAME_UPPER" | "SAME_LOWER" => {
                let k = window.effective_kernel();
                for axis in 0..2 {
                    let out = input_hw[axis].div_ceil(window.strides[axis]);
                    let total = ((out - 1) * window.strides[axis] + k[axis]).saturating_sub(input_hw[axis]);
                    let small = total / 2;
                    let (begin, end) = if auto_pad == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                    window.pads[axis] = begin;
                    window.pads[axis + 2] = end;
                }
            }
            other => return Err(self.err(format!("unknown auto_pad '{other}'"))),
        }
        Ok(window)
    }
}

fn normalize_axis(axis: i64, rank: usize, attrs: &Attrs) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a as usize >= rank.max(1) {
        return Err(attrs.err(format!("axis {axis} out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// Recognises the model family from names the exporters leave, to pick preprocessing.
pub fn recognise_preprocess(input_name: &str, names: &[&str]) -> Preprocess {
    // BVLC models converted through Caffe2 carry Caffe blob names: data_0, conv1/7x7_s2_w_0, ...
    let caffe = input_name.ends_with("data_0") || names.iter().any(|n| n.ends_with("_w_0") || n.ends_with("_b_0"));
    if caffe {
        Preprocess::caffe_bgr()
    } else {
        Preprocess::imagenet_rgb()
    }
}

/// Parses and imports an ONNX model from its bytes.
pub fn import(bytes: &[u8], fallback_name: &str) -> Result<Graph> {
    if bytes.is_empty() {
        return Err(Error::NotOnnx("the file is empty".into()));
    }
    let model = ModelProto::decode(bytes)
        .map_err(|e| Error::NotOnnx(format!("cannot decode protobuf ({e}); truncated or not an .onnx file?")))?;
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
        consts.insert(init.name().to_string(), tensor_const(init)?);
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
    let mut imp = Importer { b, consts, opset, uses, synthesized: 0 };
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
    Ok(imp.b.finish(name, input, outputs, preprocess, false))
}

fn input_shape(info: &proto::ValueInfoProto) -> Result<Vec<usize>> {
    use proto::tensor_shape_proto::dimension::Value as Dim;
    use proto::type_proto::Value as Ty;
    let shape = match info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(Ty::TensorType(t)) => t.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default(),
        _ => Vec::new(),
    };
    // Symbolic dims: batch 1, 3 channels, 224x224, the size every supported CNN was trained at.
    let defaults = [1usize, 3, 224, 224];
    if shape.len() != 4 {
        return Err(Error::Unsupported(format!("input '{}' must be 4-D NCHW, got rank {}", info.name(), shape.len())));
    }
    let mut out = Vec::new();
    for (i, d) in shape.iter().enumerate() {
        out.push(match d.value {
            Some(Dim::DimValue(v)) if v > 0 => v as usize,
            _ => defaults[i],
        });
    }
    if out[0] != 1 {
        out[0] = 1; // one image at a time
    }
    if out[2] > 4096 || out[3] > 4096 {
        return Err(Error::TooLarge(format!("input '{}' is {}x{}", info.name(), out[2], out[3])));
    }
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
}

/// Cap on what ConstantOfShape may create in one model: 1 GiB of f32, twice the constant-weight
/// VGG16 (138 M values), far below what would exhaust a browser tab.
const MAX_SYNTHESIZED: usize = 1 << 28;

impl Importer<'_> {
    /// A runtime value for `name`, turning a constant into a graph weight on first use.
    fn value(&mut self, name: &str, node: &NodeProto) -> Result<ValueId> {
        if let Some(id) = self.b.lookup(name) {
            return Ok(id);
        }
        // Taken out of the constant table so the graph owns the only copy of the weights.
        match self.consts.remove(name) {
            Some(c) => {
                // Moved out, not cloned: the graph gets the only reference to the floats.
                let data = match c.data {
                    ConstData::F32(v) => v,
                    ConstData::I64(v) => Arc::new(v.iter().map(|&x| x as f32).collect()),
                };
                let shape = c.shape;
                if data.iter().any(|x| !x.is_finite()) {
                    return Err(Error::node(node.name(), node.op_type(), format!("weight '{name}' contains NaN or infinity")));
                }
                self.b.constant(name, shape, Some(data))
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

    fn node(&mut self, node: &NodeProto) -> Result<()> {
        let op = node.op_type();
        let name = if node.name().is_empty() { node.output.first().map(|s| s.as_str()).unwrap_or("?") } else { node.name() };
        let err = |msg: String| Error::node(name, op, msg);
        if !node.domain().is_empty() && node.domain() != "ai.onnx" {
            return Err(err(format!("custom op domain '{}' is not supported", node.domain())));
        }
        if QUANTIZED_OPS.contains(&op) {
            return Err(Error::Unsupported(format!(
                "quantized (int8) model: node '{name}' uses {op}; ConvLens runs float32 models, load the fp32 file (e.g. googlenet-12.onnx instead of googlenet-12-int8.onnx)"
            )));
        }
        let out_name = node.output.first().cloned().ok_or_else(|| err("has no output".into()))?;
        let inputs: Vec<&str> = node.input.iter().map(|s| s.as_str()).collect();
        let x_shape = || -> Result<Vec<usize>> {
            inputs.first().and_then(|i| self.shape_of(i)).ok_or_else(|| err("missing input".into()))
        };

        match op {
            "Constant" => {
                let a = Attrs::new(node, &["value", "value_float", "value_floats", "value_int", "value_ints"])?;
                let c = if let Some(t) = a.by_name.get("value").and_then(|a| a.t.as_ref()) {
                    tensor_const(t)?
                } else if let Some(v) = a.by_name.get("value_floats") {
                    Const { shape: vec![v.floats.len()], data: ConstData::F32(Arc::new(v.floats.clone())) }
                } else if let Some(v) = a.by_name.get("value_ints") {
                    Const { shape: vec![v.ints.len()], data: ConstData::I64(v.ints.clone()) }
                } else if let Some(v) = a.by_name.get("value_float").and_then(|a| a.f) {
                    Const { shape: vec![], data: ConstData::F32(Arc::new(vec![v])) }
                } else if let Some(v) = a.by_name.get("value_int").and_then(|a| a.i) {
                    Const { shape: vec![], data: ConstData::I64(vec![v]) }
                } else {
                    return Err(err("has no value attribute".into()));
                };
                self.consts.insert(out_name, c);
                return Ok(());
            }
            "ConstantOfShape" => {
                let a = Attrs::new(node, &["value"])?;
                let shape_c = self.const_input(node, 0).ok_or_else(|| err("shape input must be constant".into()))?;
                let shape: Vec<usize> = shape_c
                    .as_i64()
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| err(format!("negative dim {d}"))))
                    .collect::<Result<_>>()?;
                let n = numel(&shape).map_err(|e| err(e.to_string()))?;
                self.synthesized = self.synthesized.saturating_add(n);
                if self.synthesized > MAX_SYNTHESIZED {
                    return Err(Error::TooLarge(format!(
                        "node '{}' (ConstantOfShape): the model's generated constants would exceed {MAX_SYNTHESIZED} values",
                        node.name()
                    )));
                }
                let fill = match a.by_name.get("value").and_then(|a| a.t.as_ref()) {
                    Some(t) => tensor_const(t)?.as_f32().first().copied().unwrap_or(0.0),
                    None => 0.0,
                };
                self.consts.insert(out_name, Const { shape, data: ConstData::F32(Arc::new(vec![fill; n])) });
                return Ok(());
            }
            _ => {}
        }

        // Shape-only ops: computed on constants at import, a zero-copy reshape at run time.
        if matches!(op, "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity" | "Dropout") {
            if op == "Dropout" && node.output.len() > 1 && self.uses.get(node.output[1].as_str()).copied().unwrap_or(0) > 0 {
                return Err(err("the dropout mask output is used; it has no meaning at inference".into()));
            }
            let in_shape = x_shape()?;
            let out_shape = self.reshape_target(node, &in_shape)?;
            if numel(&out_shape)? != numel(&in_shape)? {
                return Err(err(format!("cannot reshape {in_shape:?} to {out_shape:?}")));
            }
            if self.all_const(node) {
                let mut c = self.consts[inputs[0]].clone();
                c.shape = out_shape;
                self.consts.insert(out_name, c);
                return Ok(());
            }
            let x = self.value(inputs[0], node)?;
            let run_op = if matches!(op, "Identity" | "Dropout") { Op::Identity } else { Op::Reshape };
            self.b.node_with_shape(name, op, run_op, vec![x], &out_name, Some(out_shape))?;
            return Ok(());
        }

        let mut ins: Vec<ValueId> = Vec::new();
        let (run_op, keep_inputs) = match op {
            "Conv" => {
                let a = Attrs::new(node, &["kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"])?;
                let xs = x_shape()?;
                let ws = inputs.get(1).and_then(|w| self.shape_of(w)).ok_or_else(|| err("missing weight".into()))?;
                if xs.len() != 4 || ws.len() != 4 {
                    return Err(err(format!("only 2-D convolution is supported (input {xs:?}, weight {ws:?})")));
                }
                let k = a.usizes("kernel_shape", 2, 0)?;
                let kernel = if a.ints("kernel_shape").is_some() { [k[0], k[1]] } else { [ws[2], ws[3]] };
                let window = a.window(kernel, [xs[2], xs[3]])?;
                let group = a.int("group", 1);
                if group < 1 {
                    return Err(err(format!("group {group} must be positive")));
                }
                (Op::Conv { window, group: group as usize, relu: false }, 3)
            }
            "MaxPool" | "AveragePool" => {
                let known: &[&str] = if op == "MaxPool" {
                    &["kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad", "storage_order"]
                } else {
                    &["kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad", "count_include_pad"]
                };
                let a = Attrs::new(node, known)?;
                if node.output.len() > 1 && self.uses.get(node.output[1].as_str()).copied().unwrap_or(0) > 0 {
                    return Err(err("the Indices output of MaxPool is not supported".into()));
                }
                let xs = x_shape()?;
                if xs.len() != 4 {
                    return Err(err(format!("only 2-D pooling is supported, input {xs:?}")));
                }
                let k = a.ints("kernel_shape").ok_or_else(|| err("kernel_shape is required".into()))?;
                let k = a.usizes("kernel_shape", 2, 0).map_err(|_| err(format!("kernel_shape {k:?} must have 2 values")))?;
                let window = a.window([k[0], k[1]], [xs[2], xs[3]])?;
                let ceil = a.int("ceil_mode", 0) != 0;
                if op == "MaxPool" {
                    (Op::MaxPool { window, ceil }, 1)
                } else {
                    if window.dilations != [1, 1] {
                        return Err(err("dilated AveragePool is not supported".into()));
                    }
                    (Op::AveragePool { window, ceil, count_include_pad: a.int("count_include_pad", 0) != 0 }, 1)
                }
            }
            "GlobalAveragePool" => {
                Attrs::new(node, &[])?;
                (Op::GlobalAveragePool, 1)
            }
            "Relu" => {
                Attrs::new(node, &[])?;
                if self.try_fuse_relu(inputs[0], &out_name) {
                    return Ok(());
                }
                (Op::Relu, 1)
            }
            "LRN" => {
                let a = Attrs::new(node, &["size", "alpha", "beta", "bias"])?;
                let size = a.int("size", 0);
                if size < 1 {
                    return Err(err("size is required and must be positive".into()));
                }
                (Op::Lrn { size: size as usize, alpha: a.float("alpha", 1e-4), beta: a.float("beta", 0.75), bias: a.float("bias", 1.0) }, 1)
            }
            "Concat" => {
                let a = Attrs::new(node, &["axis"])?;
                let rank = x_shape()?.len();
                let axis = a.by_name.get("axis").and_then(|x| x.i).ok_or_else(|| err("axis is required".into()))?;
                (Op::Concat { axis: normalize_axis(axis, rank, &a)? }, usize::MAX)
            }
            "Gemm" => {
                let a = Attrs::new(node, &["alpha", "beta", "transA", "transB"])?;
                (
                    Op::Gemm {
                        alpha: a.float("alpha", 1.0),
                        beta: a.float("beta", 1.0),
                        trans_a: a.int("transA", 0) != 0,
                        trans_b: a.int("transB", 0) != 0,
                        relu: false,
                    },
                    3,
                )
            }
            "MatMul" => {
                Attrs::new(node, &[])?;
                (Op::MatMul, 2)
            }
            "Add" => {
                Attrs::new(node, &["axis"])?;
                (Op::Add, 2)
            }
            "Softmax" => {
                let a = Attrs::new(node, &["axis"])?;
                let rank = x_shape()?.len();
                let coerce_2d = self.opset < 13;
                let axis = normalize_axis(a.int("axis", if coerce_2d { 1 } else { -1 }), rank, &a)?;
                (Op::Softmax { axis, coerce_2d }, 1)
            }
            "BatchNormalization" => {
                let a = Attrs::new(node, &["epsilon"])?;
                if node.output.len() > 1 && node.output[1..].iter().any(|o| self.uses.get(o.as_str()).copied().unwrap_or(0) > 0) {
                    return Err(err("training-mode outputs (running mean/var) are not supported".into()));
                }
                let eps = a.float("epsilon", 1e-5);
                if self.try_fold_batchnorm(node, eps, &out_name)? {
                    return Ok(());
                }
                (Op::BatchNorm { epsilon: eps }, 5)
            }
            other => {
                return Err(err(format!("unsupported op {other} (supported: {})", SUPPORTED_OPS.join(", "))));
            }
        };
        for (i, inp) in inputs.iter().enumerate() {
            if i >= keep_inputs {
                break;
            }
            if inp.is_empty() {
                continue;
            }
            ins.push(self.value(inp, node)?);
        }
        self.b.node(name, op, run_op, ins, &out_name)?;
        Ok(())
    }

    fn reshape_target(&self, node: &NodeProto, in_shape: &[usize]) -> Result<Vec<usize>> {
        let name = node.name();
        let op = node.op_type();
        let err = |msg: String| Error::node(name, op, msg);
        match op {
            "Identity" | "Dropout" => {
                Attrs::new(node, &[])?;
                Ok(in_shape.to_vec())
            }
            "Flatten" => {
                let a = Attrs::new(node, &["axis"])?;
                let axis = a.int("axis", 1);
                let axis = if axis < 0 { axis + in_shape.len() as i64 } else { axis };
                if axis < 0 || axis as usize > in_shape.len() {
                    return Err(err(format!("axis {axis} out of range")));
                }
                let axis = axis as usize;
                Ok(vec![in_shape[..axis].iter().product(), in_shape[axis..].iter().product()])
            }
            "Reshape" => {
                let a = Attrs::new(node, &["shape", "allowzero"])?;
                let target = match self.const_input(node, 1) {
                    Some(c) => c.as_i64(),
                    None if node.input.len() < 2 => a.ints("shape").ok_or_else(|| err("no target shape".into()))?,
                    None => return Err(err("the target shape must be a constant".into())),
                };
                let allow_zero = a.int("allowzero", 0) != 0;
                let total: usize = in_shape.iter().product();
                let mut out = Vec::new();
                let mut infer_at = None;
                for (i, &d) in target.iter().enumerate() {
                    out.push(match d {
                        -1 if infer_at.is_none() => {
                            infer_at = Some(i);
                            1
                        }
                        0 if !allow_zero => *in_shape.get(i).ok_or_else(|| err(format!("0 at axis {i} has no input dim to copy")))?,
                        d if d >= 0 => d as usize,
                        _ => return Err(err(format!("invalid target shape {target:?}"))),
                    });
                }
                if let Some(i) = infer_at {
                    let known: usize = out.iter().product();
                    if known == 0 || total % known != 0 {
                        return Err(err(format!("cannot reshape {in_shape:?} to {target:?}")));
                    }
                    out[i] = total / known;
                }
                Ok(out)
            }
            "Squeeze" | "Unsqueeze" => {
                let a = Attrs::new(node, &["axes"])?;
                let axes = match (a.ints("axes"), self.const_input(node, 1)) {
                    (Some(v), _) => Some(v),
                    (None, Some(c)) => Some(c.as_i64()),
                    (None, None) if node.input.len() > 1 && !node.input[1].is_empty() => {
                        return Err(err("axes must be a constant".into()))
                    }
                    _ => None,
                };
                if op == "Squeeze" {
                    let rank = in_shape.len() as i64;
                    let axes: Vec<usize> = match axes {
                        Some(v) => v.iter().map(|&x| (if x < 0 { x + rank } else { x }) as usize).collect(),
                        None => (0..in_shape.len()).filter(|&i| in_shape[i] == 1).collect(),
                    };
                    for &x in &axes {
                        if in_shape.get(x) != Some(&1) {
                            return Err(err(format!("cannot squeeze axis {x} of {in_shape:?}")));
                        }
                    }
                    Ok(in_shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect())
                } else {
                    let axes = axes.ok_or_else(|| err("axes are required".into()))?;
                    let rank = (in_shape.len() + axes.len()) as i64;
                    let mut axes: Vec<usize> = axes.iter().map(|&x| (if x < 0 { x + rank } else { x }) as usize).collect();
                    axes.sort();
                    let mut out = Vec::new();
                    let mut src = in_shape.iter();
                    for i in 0..rank as usize {
                        if axes.contains(&i) {
                            out.push(1);
                        } else {
                            out.push(*src.next().ok_or_else(|| err(format!("bad axes {axes:?}")))?);
                        }
                    }
                    Ok(out)
                }
            }
            _ => unreachable!("reshape_target called for {op}"),
        }
    }

    /// Folds ReLU into the Conv or Gemm that produced `x` when nothing else reads `x`.
    fn try_fuse_relu(&mut self, x: &str, out_name: &str) -> bool {
        if self.uses.get(x).copied().unwrap_or(0) != 1 {
            return false;
        }
        let Some(id) = self.b.lookup(x) else { return false };
        let Some(node) = self.b.last_node_mut().filter(|n| n.output == id) else { return false };
        match &mut node.op {
            Op::Conv { relu, .. } | Op::Gemm { relu, .. } if !*relu => *relu = true,
            _ => return false,
        }
        node.op_type.push_str("+Relu");
        self.b.rename(id, out_name);
        true
    }

    /// Folds an inference BatchNormalization into the preceding Conv's weights and bias.
    fn try_fold_batchnorm(&mut self, node: &NodeProto, eps: f32, out_name: &str) -> Result<bool> {
        let x = node.input[0].as_str();
        if self.uses.get(x).copied().unwrap_or(0) != 1 || !(1..5).all(|i| self.const_input(node, i).is_some()) {
            return Ok(false);
        }
        let Some(id) = self.b.lookup(x) else { return Ok(false) };
        let params: Vec<Arc<Vec<f32>>> = (1..5).map(|i| self.const_input(node, i).unwrap().as_f32()).collect();
        let (scale, shift, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
        let Some(conv) = self.b.nodes().last().filter(|n| n.output == id && matches!(n.op, Op::Conv { relu: false, .. })) else {
            return Ok(false);
        };
        let (w_id, b_id) = (conv.inputs[1], conv.inputs.get(2).copied());
        let m = self.b.shape(w_id)[0];
        if [scale, shift, mean, var].iter().any(|p| p.len() != m) {
            return Err(Error::node(node.name(), node.op_type(), format!("parameters do not match {m} channels")));
        }
        let Some(w) = self.b.value(w_id).data.clone() else { return Ok(false) };
        let per = w.len() / m;
        let mut w2 = w.data.clone();
        let mut b2 = match b_id.and_then(|b| self.b.value(b).data.clone()) {
            Some(b) => b.data.clone(),
            None => vec![0.0; m],
        };
        for c in 0..m {
            let k = scale[c] / (var[c] + eps).sqrt();
            w2[c * per..(c + 1) * per].iter_mut().for_each(|v| *v *= k);
            b2[c] = (b2[c] - mean[c]) * k + shift[c];
        }
        let w_name = format!("{}_bnfolded", self.b.value(w_id).name);
        let w_shape = self.b.shape(w_id).to_vec();
        let new_w = self.b.constant(&w_name, w_shape, Some(Arc::new(w2)))?;
        let new_b = self.b.constant(&format!("{}_bias_bnfolded", node.name()), vec![m], Some(Arc::new(b2)))?;
        let conv = self.b.last_node_mut().unwrap();
        conv.inputs = vec![conv.inputs[0], new_w, new_b];
        conv.op_type.push_str("+BatchNormalization");
        self.b.rename(id, out_name);
        Ok(true)
    }
}
