//! Hostile and broken .onnx input: every case is an error naming the problem, never a panic.

mod common;

use convlens_core::onnx::import;
use convlens_core::onnx::proto::{tensor_proto::DataType, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn input_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    use convlens_core::onnx::proto::{tensor_shape_proto::{dimension::Value, Dimension}, type_proto, TensorShapeProto};
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim: dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d)), ..Default::default() }).collect() }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    TensorProto { name: Some(name.into()), dims: dims.to_vec(), data_type: Some(DataType::Float as i32), float_data: data, ..Default::default() }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: Some(name.into()), ints: v.to_vec(), r#type: Some(7), ..Default::default() }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: Some(format!("{op}_node")),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// x [1,3,8,8] -> Conv(w) -> out, with the given weight and extra nodes.
fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Vec<u8> {
    let out = nodes.last().unwrap().output[0].clone();
    ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("bad".into()),
            node: nodes,
            initializer: inits,
            input: vec![input_info("x", &[1, 3, 8, 8])],
            output: vec![ValueInfoProto { name: Some(out), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn err(bytes: &[u8]) -> String {
    match import(bytes, "bad") {
        Ok(_) => panic!("imported a bad model"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_tiny_model_imports() {
    let b = model(vec![node("Conv", &["x", "w"], "y", vec![ints("kernel_shape", &[3, 3])])], vec![tensor("w", &[4, 3, 3, 3], vec![0.1; 108])]);
    let g = import(&b, "tiny").unwrap();
    assert_eq!(g.shape(g.outputs[0]), [1, 4, 6, 6]);
}

#[test]
fn not_a_model() {
    assert!(err(&[]).contains("empty"));
    assert!(err(b"\xff\xff\xff\xff garbage").contains("cannot decode"));
    // A valid protobuf (ir_version = 3) with no graph in it.
    assert!(err(&[0x08, 0x03]).contains("no ONNX graph"));
}

#[test]
fn truncated_real_model() {
    let bytes = std::fs::read(common::shared_models().join("squeezenet1.1.onnx")).unwrap();
    for cut in [10, 1000, bytes.len() / 2, bytes.len() - 3] {
        let e = err(&bytes[..cut]);
        assert!(e.contains("decode") || e.contains("truncated") || e.contains("holds"), "{cut}: {e}");
    }
}

#[test]
fn shapes_that_do_not_chain() {
    // Weight wants 5 input channels, image has 3.
    let b = model(vec![node("Conv", &["x", "w"], "y", vec![])], vec![tensor("w", &[4, 5, 3, 3], vec![0.1; 180])]);
    let e = err(&b);
    assert!(e.contains("Conv_node") && e.contains("does not fit 3 input channels"), "{e}");
}

#[test]
fn weights_with_nan() {
    let mut w = vec![0.1; 108];
    w[7] = f32::NAN;
    let b = model(vec![node("Conv", &["x", "w"], "y", vec![])], vec![tensor("w", &[4, 3, 3, 3], w)]);
    assert!(err(&b).contains("NaN"));
}

#[test]
fn weights_shorter_than_their_shape() {
    let b = model(vec![node("Conv", &["x", "w"], "y", vec![])], vec![tensor("w", &[4, 3, 3, 3], vec![0.1; 100])]);
    assert!(err(&b).contains("holds 100 values"));
}

#[test]
fn huge_declared_shape_is_refused_before_allocating() {
    let t = TensorProto { name: Some("w".into()), dims: vec![1 << 20, 1 << 20, 1 << 10], data_type: Some(DataType::Float as i32), ..Default::default() };
    let b = model(vec![node("Conv", &["x", "w"], "y", vec![])], vec![t]);
    assert!(err(&b).contains("exceeds"));
}

/// Found by the fuzzer: ConstantOfShape nodes asking for 2^29 values each (2 GiB apiece) from
/// a few bytes of file. Refused once the model's generated constants pass the cap.
#[test]
fn constant_of_shape_cannot_ask_for_gigabytes() {
    let shape = |name: &str| TensorProto { name: Some(name.into()), dims: vec![2], data_type: Some(DataType::Int64 as i32), int64_data: vec![1 << 15, 1 << 14], ..Default::default() };
    let b = model(
        vec![
            node("ConstantOfShape", &["s1"], "big1", vec![]),
            node("ConstantOfShape", &["s2"], "big2", vec![]),
            node("Add", &["big1", "big2"], "y", vec![]),
        ],
        vec![shape("s1"), shape("s2")],
    );
    let e = err(&b);
    assert!(e.contains("ConstantOfShape") && e.contains("exceed"), "{e}");
}

#[test]
fn unsupported_op_and_attribute_are_named() {
    let b = model(vec![node("Sin", &["x"], "y", vec![])], vec![]);
    let e = err(&b);
    assert!(e.contains("Sin_node") && e.contains("unsupported op Sin"), "{e}");
    let b = model(
        vec![node("MaxPool", &["x"], "y", vec![ints("kernel_shape", &[2, 2]), ints("frobnicate", &[1])])],
        vec![],
    );
    let e = err(&b);
    assert!(e.contains("MaxPool_node") && e.contains("unsupported attribute 'frobnicate'"), "{e}");
}

#[test]
fn int8_models_are_refused_clearly() {
    let b = model(vec![node("QLinearConv", &["x"], "y", vec![])], vec![]);
    let e = err(&b);
    assert!(e.contains("quantized (int8)") && e.contains("fp32"), "{e}");
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let real = std::fs::read(common::shared_models().join("light/light_inception_v1.onnx")).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    for i in 0..3000 {
        let bytes: Vec<u8> = if i % 2 == 0 {
            (0..rng.random_range(0..400)).map(|_| rng.random()).collect()
        } else {
            let mut b = real.clone();
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..b.len());
                b[at] = rng.random();
            }
            b.truncate(rng.random_range(b.len() / 2..=b.len()));
            b
        };
        let _ = import(&bytes, "fuzz"); // Ok or Err, but no panic
    }
}

/// A node of `op` reading `inputs` (all the image) and writing `outputs` names.
fn node_io(op: &str, inputs: usize, outputs: usize) -> NodeProto {
    NodeProto {
        name: Some(format!("{op}_node")),
        op_type: Some(op.into()),
        input: vec!["x".to_string(); inputs],
        output: (0..outputs).map(|i| format!("y{i}")).collect(),
        ..Default::default()
    }
}

fn model_of(n: NodeProto) -> Vec<u8> {
    let out = n.output.first().cloned().unwrap_or_else(|| "y0".into());
    ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("bad".into()),
            node: vec![n],
            input: vec![input_info("x", &[1, 3, 8, 8])],
            output: vec![ValueInfoProto { name: Some(out), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Found by fuzzing: a Relu with no inputs indexed past the end of its input list. Every op the
/// importer accepts, given too few inputs (none) or no output, is one error naming the node.
#[test]
fn every_op_with_too_few_inputs_or_no_output_is_an_error() {
    let ops: Vec<&str> = convlens_core::onnx::supported_ops().collect();
    assert!(ops.len() >= 20, "{ops:?}");
    for op in ops.iter().filter(|&&op| op != "Constant") {
        let e = err(&model_of(node_io(op, 0, 1)));
        assert!(e.contains(&format!("{op}_node")) && e.contains("has 0 inputs"), "{op}: {e}");
    }
    for op in &ops {
        let e = err(&model_of(node_io(op, 1, 0)));
        assert!(e.contains(&format!("{op}_node")) && e.contains("has 0 outputs"), "{op}: {e}");
    }
    // Two-input ops given one, and too many inputs.
    for (op, n, want) in [("Conv", 1, "has 1 inputs; Conv takes 2 to 3"), ("Add", 1, "Add takes 2"), ("Relu", 2, "Relu takes 1"), ("BatchNormalization", 4, "takes 5")] {
        let e = err(&model_of(node_io(op, n, 1)));
        assert!(e.contains(want), "{op}: {e}");
    }
}

/// Required inputs given as "" (ONNX's spelling of an omitted optional input) are refused.
#[test]
fn an_empty_required_input_is_an_error() {
    let mut n = node_io("Conv", 2, 1);
    n.input[1] = String::new();
    let e = err(&model_of(n));
    assert!(e.contains("required input 1 is empty"), "{e}");
}

/// Any count of inputs and outputs for every op: an answer, never a panic.
#[test]
fn any_arity_never_panics() {
    for op in convlens_core::onnx::supported_ops() {
        for i in 0..7 {
            for o in 0..4 {
                let _ = import(&model_of(node_io(op, i, o)), "arity");
            }
        }
    }
}

#[test]
fn an_input_with_nan_or_infinity_is_refused_by_name() {
    use convlens_core::exec::{cpu_backend, run, CpuKind, Keep};
    use convlens_core::tensor::Tensor;
    let b = model(vec![node("Conv", &["x", "w"], "y", vec![ints("kernel_shape", &[3, 3])])], vec![tensor("w", &[4, 3, 3, 3], vec![0.1; 108])]);
    let g = import(&b, "tiny").unwrap();
    let mut be = cpu_backend(CpuKind::Simd, &g).unwrap();
    let n = 3 * 8 * 8;
    // Every position (the first, the last, inside a vector and past the last whole one) and
    // every kind of non-finite value; the largest finite values pass.
    for at in [0, 1, 17, n - 2, n - 1] {
        for bad in [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut data = vec![0.5; n];
            data[at] = bad;
            let x = Tensor::new(vec![1, 3, 8, 8], data).unwrap();
            let e = run(&g, be.as_mut(), &x, &Keep::Outputs, &mut |_, _| {}).err().unwrap_or_else(|| panic!("{bad} at {at} was accepted"));
            assert!(e.to_string().contains("NaN or infinity"), "{e}");
        }
    }
    let mut data = vec![f32::MAX; n];
    data[5] = f32::MIN;
    data[6] = f32::MIN_POSITIVE / 2.0; // subnormal
    assert!(run(&g, be.as_mut(), &Tensor::new(vec![1, 3, 8, 8], data).unwrap(), &Keep::Outputs, &mut |_, _| {}).is_ok());
}
