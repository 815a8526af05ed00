//! The ONNX ops the importer accepts, one line each: how many inputs and outputs, which
//! attributes, and the function that turns the node into graph IR. Arity is checked from this
//! table before a node's inputs are read, so a malformed graph is an error, never a panic.

use std::sync::Arc;

use super::attrs::{normalize_axis, Attrs};
use super::constants::{tensor_const, Const, ConstData};
use super::proto::NodeProto;
use super::Importer;
use crate::error::{Error, Result};
use crate::graph::{Op, ValueId};
use crate::tensor::numel;

/// What importing one node did.
pub(super) enum Imported {
    /// Folded into a constant or into the node before it: no node added.
    Folded,
    /// A node running `Op` on every input the file gave (the table bounds how many).
    Node(Op),
    /// A node reading only its first input, whose output shape was computed at import
    /// (reshape-like ops; Clip, whose bounds are in the op).
    Shaped(Op, Vec<usize>),
    /// A node reading these values (a variadic op after the importer added its first steps).
    Reads(Op, Vec<ValueId>),
}

/// A node being imported, with what every op reads first.
pub(super) struct NodeCx<'a> {
    pub node: &'a NodeProto,
    pub attrs: Attrs<'a>,
    /// The node's name, or its first output's when the file left it unnamed.
    pub name: &'a str,
    pub inputs: Vec<&'a str>,
    pub out_name: &'a str,
}

impl NodeCx<'_> {
    pub fn err(&self, msg: impl Into<String>) -> Error {
        Error::node(self.name, self.node.op_type(), msg)
    }

    /// An extra output (Dropout's mask, MaxPool's indices) that a later node reads.
    fn output_used(&self, imp: &Importer, index: usize) -> bool {
        self.node.output.get(index).is_some_and(|o| imp.uses.get(o.as_str()).copied().unwrap_or(0) > 0)
    }
}

type ImportFn = fn(&mut Importer, &NodeCx) -> Result<Imported>;

pub(super) struct OpSpec {
    pub op_type: &'static str,
    /// Inputs: at least `.0`, at most `.1`; optional ones may be given as "".
    pub inputs: (usize, usize),
    pub outputs: (usize, usize),
    pub attrs: &'static [&'static str],
    pub import: ImportFn,
}

const ANY: usize = usize::MAX;

#[rustfmt::skip]
pub(super) const OPS: &[OpSpec] = &[
    OpSpec { op_type: "Conv", inputs: (2, 3), outputs: (1, 1), attrs: &["kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"], import: conv },
    OpSpec { op_type: "Relu", inputs: (1, 1), outputs: (1, 1), attrs: &[], import: relu },
    OpSpec { op_type: "MaxPool", inputs: (1, 1), outputs: (1, 2), attrs: &["kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad", "storage_order"], import: pool },
    OpSpec { op_type: "AveragePool", inputs: (1, 1), outputs: (1, 1), attrs: &["kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad", "count_include_pad"], import: pool },
    OpSpec { op_type: "GlobalAveragePool", inputs: (1, 1), outputs: (1, 1), attrs: &[], import: |_, _| Ok(Imported::Node(Op::GlobalAveragePool)) },
    OpSpec { op_type: "LRN", inputs: (1, 1), outputs: (1, 1), attrs: &["size", "alpha", "beta", "bias"], import: lrn },
    OpSpec { op_type: "Concat", inputs: (1, ANY), outputs: (1, 1), attrs: &["axis"], import: concat },
    OpSpec { op_type: "Gemm", inputs: (2, 3), outputs: (1, 1), attrs: &["alpha", "beta", "transA", "transB"], import: gemm },
    OpSpec { op_type: "MatMul", inputs: (2, 2), outputs: (1, 1), attrs: &[], import: |_, _| Ok(Imported::Node(Op::MatMul)) },
    OpSpec { op_type: "Add", inputs: (2, 2), outputs: (1, 1), attrs: &["axis"], import: |_, _| Ok(Imported::Node(Op::Add)) },
    OpSpec { op_type: "Mul", inputs: (2, 2), outputs: (1, 1), attrs: &[], import: |_, _| Ok(Imported::Node(Op::Mul)) },
    // Sum: Adds (numpy broadcasting), one for two inputs (ResNet's residual joins).
    OpSpec { op_type: "Sum", inputs: (1, ANY), outputs: (1, 1), attrs: &[], import: sum },
    OpSpec { op_type: "Softmax", inputs: (1, 1), outputs: (1, 1), attrs: &["axis"], import: softmax },
    OpSpec { op_type: "Clip", inputs: (1, 3), outputs: (1, 1), attrs: &["min", "max"], import: clip },
    OpSpec { op_type: "Transpose", inputs: (1, 1), outputs: (1, 1), attrs: &["perm"], import: transpose },
    OpSpec { op_type: "BatchNormalization", inputs: (5, 5), outputs: (1, 5), attrs: &["epsilon"], import: batch_norm },
    OpSpec { op_type: "Flatten", inputs: (1, 1), outputs: (1, 1), attrs: &["axis"], import: reshape_like },
    OpSpec { op_type: "Reshape", inputs: (1, 2), outputs: (1, 1), attrs: &["shape", "allowzero"], import: reshape_like },
    OpSpec { op_type: "Squeeze", inputs: (1, 2), outputs: (1, 1), attrs: &["axes"], import: reshape_like },
    OpSpec { op_type: "Unsqueeze", inputs: (1, 2), outputs: (1, 1), attrs: &["axes"], import: reshape_like },
    OpSpec { op_type: "Dropout", inputs: (1, 3), outputs: (1, 2), attrs: &[], import: reshape_like },
    OpSpec { op_type: "Identity", inputs: (1, 1), outputs: (1, 1), attrs: &[], import: reshape_like },
    OpSpec { op_type: "Constant", inputs: (0, 0), outputs: (1, 1), attrs: &["value", "value_float", "value_floats", "value_int", "value_ints"], import: constant },
    OpSpec { op_type: "ConstantOfShape", inputs: (1, 1), outputs: (1, 1), attrs: &["value"], import: constant_of_shape },
];

/// The ONNX op types the importer accepts, in table order.
pub fn supported_ops() -> impl Iterator<Item = &'static str> {
    OPS.iter().map(|s| s.op_type)
}

pub(super) fn spec(op_type: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|s| s.op_type == op_type)
}

/// Input and output counts against the table: required inputs present and non-empty.
pub(super) fn check_arity(spec: &OpSpec, node: &NodeProto, name: &str) -> Result<()> {
    let err = |msg: String| Error::node(name, spec.op_type, msg);
    let count = |(lo, hi): (usize, usize)| if hi == ANY { format!("at least {lo}") } else if lo == hi { format!("{lo}") } else { format!("{lo} to {hi}") };
    let n_out = node.output.len();
    if n_out < spec.outputs.0 || n_out > spec.outputs.1 {
        return Err(err(format!("has {n_out} outputs; {} gives {}", spec.op_type, count(spec.outputs))));
    }
    if node.output[0].is_empty() {
        return Err(err("its output has no name".into()));
    }
    let n_in = node.input.len();
    if n_in < spec.inputs.0 || n_in > spec.inputs.1 {
        return Err(err(format!("has {n_in} inputs; {} takes {}", spec.op_type, count(spec.inputs))));
    }
    if let Some(i) = node.input[..spec.inputs.0].iter().position(|s| s.is_empty()) {
        return Err(err(format!("required input {i} is empty")));
    }
    Ok(())
}

fn conv(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let xs = imp.shape_of_input(cx, 0)?;
    let ws = imp.shape_of_input(cx, 1)?;
    if xs.len() != 4 || ws.len() != 4 {
        return Err(cx.err(format!("only 2-D convolution is supported (input {xs:?}, weight {ws:?})")));
    }
    let a = &cx.attrs;
    let k = a.usizes("kernel_shape", 2, 0)?;
    let kernel = if a.ints("kernel_shape").is_some() { [k[0], k[1]] } else { [ws[2], ws[3]] };
    let window = a.window(kernel, [xs[2], xs[3]])?;
    let group = a.int("group", 1);
    if group < 1 {
        return Err(cx.err(format!("group {group} must be positive")));
    }
    Ok(Imported::Node(Op::Conv { window, group: group as usize, relu: false }))
}

fn pool(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let max = cx.node.op_type() == "MaxPool";
    if cx.output_used(imp, 1) {
        return Err(cx.err("the Indices output of MaxPool is not supported"));
    }
    let xs = imp.shape_of_input(cx, 0)?;
    if xs.len() != 4 {
        return Err(cx.err(format!("only 2-D pooling is supported, input {xs:?}")));
    }
    let a = &cx.attrs;
    let k = a.ints("kernel_shape").ok_or_else(|| cx.err("kernel_shape is required"))?;
    let k = a.usizes("kernel_shape", 2, 0).map_err(|_| cx.err(format!("kernel_shape {k:?} must have 2 values")))?;
    let window = a.window([k[0], k[1]], [xs[2], xs[3]])?;
    let ceil = a.int("ceil_mode", 0) != 0;
    if max {
        return Ok(Imported::Node(Op::MaxPool { window, ceil }));
    }
    if window.dilations != [1, 1] {
        return Err(cx.err("dilated AveragePool is not supported"));
    }
    Ok(Imported::Node(Op::AveragePool { window, ceil, count_include_pad: a.int("count_include_pad", 0) != 0 }))
}

fn relu(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    if imp.try_fuse_relu(cx.inputs[0], cx.out_name, cx.name) {
        return Ok(Imported::Folded);
    }
    Ok(Imported::Node(Op::Relu))
}

fn lrn(_: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let a = &cx.attrs;
    let size = a.int("size", 0);
    if size < 1 {
        return Err(cx.err("size is required and must be positive"));
    }
    Ok(Imported::Node(Op::Lrn { size: size as usize, alpha: a.float("alpha", 1e-4), beta: a.float("beta", 0.75), bias: a.float("bias", 1.0) }))
}

fn concat(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let rank = imp.shape_of_input(cx, 0)?.len();
    let axis = cx.attrs.by_name.get("axis").and_then(|x| x.i).ok_or_else(|| cx.err("axis is required"))?;
    Ok(Imported::Node(Op::Concat { axis: normalize_axis(axis, rank, &cx.attrs)? }))
}

fn gemm(_: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let a = &cx.attrs;
    Ok(Imported::Node(Op::Gemm {
        alpha: a.float("alpha", 1.0),
        beta: a.float("beta", 1.0),
        trans_a: a.int("transA", 0) != 0,
        trans_b: a.int("transB", 0) != 0,
        relu: false,
    }))
}

fn softmax(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let rank = imp.shape_of_input(cx, 0)?.len();
    let coerce_2d = imp.opset < 13;
    let axis = normalize_axis(cx.attrs.int("axis", if coerce_2d { 1 } else { -1 }), rank, &cx.attrs)?;
    Ok(Imported::Node(Op::Softmax { axis, coerce_2d }))
}

/// Bounds from the attributes (opset < 11) or from constant inputs (opset >= 11, each optional).
fn clip(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let bound = |i: usize, attr: &str, default: f32| -> Result<f32> {
        match cx.node.input.get(i).filter(|n| !n.is_empty()) {
            Some(_) => {
                let c = imp.const_input(cx.node, i).ok_or_else(|| cx.err(format!("its {attr} must be a constant")))?;
                let v = c.as_f32();
                match v[..] {
                    [x] => Ok(x),
                    _ => Err(cx.err(format!("its {attr} must be one value, got {}", v.len()))),
                }
            }
            None => Ok(cx.attrs.float(attr, default)),
        }
    };
    let (min, max) = (bound(1, "min", f32::NEG_INFINITY)?, bound(2, "max", f32::INFINITY)?);
    if min.is_nan() || max.is_nan() {
        return Err(cx.err("its min or max is NaN"));
    }
    // ONNX: with min above max every value becomes max; so does clamping to [max, max].
    let min = min.min(max);
    if imp.all_const(cx.node) {
        return Err(cx.err("clips a constant; fold it when exporting"));
    }
    // Its bounds live in the op: the node reads only its data (the bounds stay constants a
    // later Clip can read too).
    Ok(Imported::Shaped(Op::Clip { min, max }, imp.shape_of_input(cx, 0)?))
}

fn transpose(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let shape = imp.shape_of_input(cx, 0)?;
    let rank = shape.len();
    // Default: the axes reversed.
    let perm: Vec<usize> = match cx.attrs.ints("perm") {
        Some(p) => p.iter().map(|&a| normalize_axis(a, rank, &cx.attrs)).collect::<Result<_>>()?,
        None => (0..rank).rev().collect(),
    };
    if imp.all_const(cx.node) {
        let c = &imp.consts[cx.inputs[0]];
        let x = crate::tensor::Tensor::new(c.shape.clone(), c.as_f32().to_vec())?;
        let t = crate::kernels::reference::transpose(&x, &perm).map_err(|e| cx.err(e.to_string()))?;
        imp.consts.insert(cx.out_name.to_string(), Const { shape: t.shape, data: ConstData::F32(Arc::new(t.data)) });
        return Ok(Imported::Folded);
    }
    Ok(Imported::Node(Op::Transpose { perm }))
}

/// Sum of one input is that input; of more, a chain of Adds (numpy broadcasting at each),
/// the partial sums named after the node.
fn sum(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let names: Vec<&str> = cx.inputs.iter().copied().filter(|n| !n.is_empty()).collect();
    if names.len() == 1 {
        return Ok(Imported::Shaped(Op::Identity, imp.shape_of_input(cx, 0)?));
    }
    let mut acc = imp.value(names[0], cx.node)?;
    for (i, name) in names[1..names.len() - 1].iter().enumerate() {
        let v = imp.value(name, cx.node)?;
        acc = imp.b.node(&format!("{}/partial{}", cx.name, i + 1), "Sum", Op::Add, vec![acc, v], &format!("{}/partial{}", cx.out_name, i + 1))?;
    }
    let last = imp.value(names[names.len() - 1], cx.node)?;
    Ok(Imported::Reads(Op::Add, vec![acc, last]))
}

fn batch_norm(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    if (1..5).any(|i| cx.output_used(imp, i)) {
        return Err(cx.err("training-mode outputs (running mean/var) are not supported"));
    }
    let eps = cx.attrs.float("epsilon", 1e-5);
    if imp.try_fold_batchnorm(cx.node, eps, cx.out_name)? {
        return Ok(Imported::Folded);
    }
    Ok(Imported::Node(Op::BatchNorm { epsilon: eps }))
}

/// Shape-only ops: computed on constants at import, a zero-copy reshape at run time.
fn reshape_like(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let op = cx.node.op_type();
    if op == "Dropout" && cx.output_used(imp, 1) {
        return Err(cx.err("the dropout mask output is used; it has no meaning at inference"));
    }
    let in_shape = imp.shape_of_input(cx, 0)?;
    let out_shape = imp.reshape_target(cx, &in_shape)?;
    if numel(&out_shape)? != numel(&in_shape)? {
        return Err(cx.err(format!("cannot reshape {in_shape:?} to {out_shape:?}")));
    }
    if imp.all_const(cx.node) {
        let mut c = imp.consts[cx.inputs[0]].clone();
        c.shape = out_shape;
        imp.consts.insert(cx.out_name.to_string(), c);
        return Ok(Imported::Folded);
    }
    let run_op = if matches!(op, "Identity" | "Dropout") { Op::Identity } else { Op::Reshape };
    Ok(Imported::Shaped(run_op, out_shape))
}

fn constant(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let a = &cx.attrs.by_name;
    let c = if let Some(t) = a.get("value").and_then(|a| a.t.as_ref()) {
        tensor_const(t)?
    } else if let Some(v) = a.get("value_floats") {
        Const { shape: vec![v.floats.len()], data: ConstData::F32(Arc::new(v.floats.clone())) }
    } else if let Some(v) = a.get("value_ints") {
        Const { shape: vec![v.ints.len()], data: ConstData::I64(v.ints.clone()) }
    } else if let Some(v) = a.get("value_float").and_then(|a| a.f) {
        Const { shape: vec![], data: ConstData::F32(Arc::new(vec![v])) }
    } else if let Some(v) = a.get("value_int").and_then(|a| a.i) {
        Const { shape: vec![], data: ConstData::I64(vec![v]) }
    } else {
        return Err(cx.err("has no value attribute"));
    };
    imp.consts.insert(cx.out_name.to_string(), c);
    Ok(Imported::Folded)
}

/// Cap on what ConstantOfShape may create in one model: 1 GiB of f32, twice the constant-weight
/// VGG16 (138 M values), far below what would exhaust a browser tab.
pub(super) const MAX_SYNTHESIZED: usize = 1 << 28;

fn constant_of_shape(imp: &mut Importer, cx: &NodeCx) -> Result<Imported> {
    let shape_c = imp.const_input(cx.node, 0).ok_or_else(|| cx.err("shape input must be constant"))?;
    let shape: Vec<usize> =
        shape_c.as_i64().iter().map(|&d| usize::try_from(d).map_err(|_| cx.err(format!("negative dim {d}")))).collect::<Result<_>>()?;
    let n = numel(&shape).map_err(|e| cx.err(e.to_string()))?;
    imp.synthesized = imp.synthesized.saturating_add(n);
    if imp.synthesized > MAX_SYNTHESIZED {
        return Err(Error::TooLarge(format!(
            "node '{}' (ConstantOfShape): the model's generated constants would exceed {MAX_SYNTHESIZED} values",
            cx.name
        )));
    }
    let fill = match cx.attrs.by_name.get("value").and_then(|a| a.t.as_ref()) {
        Some(t) => tensor_const(t)?.as_f32().first().copied().unwrap_or(0.0),
        None => 0.0,
    };
    imp.consts.insert(cx.out_name.to_string(), Const { shape, data: ConstData::F32(Arc::new(vec![fill; n])) });
    Ok(Imported::Folded)
}
