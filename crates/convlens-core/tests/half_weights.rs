//! The f16 FC weights option (`WeightPrecision::FcF16`): which tensors round and how exactly,
//! what is refused, and that the half-precision kernels (forward and backward) compute what the
//! f32 kernels compute on the same weights widened back, bit for bit.

use std::path::PathBuf;

use convlens_core::exec::{cpu_backend, run, CpuKind, Keep};
use convlens_core::grad::{backward, explain::f32_source, ReluRule};
use convlens_core::half::{to_f32, to_half, MIN_ELEMENTS};
use convlens_core::kernels::simd::{dot, dot_f16, dot_f16_portable};
use convlens_core::onnx::proto::{tensor_proto::DataType, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto};
use convlens_core::onnx::{import, import_stream, import_with, StreamImport, WeightPrecision};
use convlens_core::{Graph, Tensor};
use convlens_testkit::{refs, shared_models, widened, FAST_VS_REFERENCE_TOL};
use prost::Message;
use rand::{Rng, SeedableRng};

fn streamed(bytes: &[u8], chunk: impl Fn(usize) -> usize, precision: WeightPrecision) -> convlens_core::Result<Graph> {
    let mut s = StreamImport::with_total(bytes.len() as u64).precision(precision);
    let mut at = 0;
    while at < bytes.len() {
        let n = chunk(at).clamp(1, bytes.len() - at);
        s.push(&bytes[at..at + n])?;
        at += n;
    }
    import_stream(s, "m")
}

/// Against the f32 import of the same file: the same graph, every f32 weight equal to the bit,
/// and each half the f32 weight rounded (ties to even), only for 2-D weights of at least
/// MIN_ELEMENTS that nothing but fully connected layers read.
fn assert_rounded_from(f32s: &Graph, halves: &Graph, what: &str) -> usize {
    assert_eq!(format!("{:?}", f32s.nodes), format!("{:?}", halves.nodes), "{what}: nodes");
    let consumers = halves.consumers();
    let mut rounded = 0;
    for (id, (a, b)) in f32s.values.iter().zip(&halves.values).enumerate() {
        assert_eq!((&a.name, &a.shape), (&b.name, &b.shape), "{what}");
        let bits = |t: &Tensor| t.data.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        match (&b.data, &b.half) {
            (Some(t), None) => assert!(bits(t) == bits(a.data.as_ref().unwrap()), "{what}: {} changed", a.name),
            (None, Some(h)) => {
                let want: Vec<u16> = a.data.as_ref().unwrap().data.iter().map(|&v| to_half(v).unwrap()).collect();
                assert!(h.bits == want, "{what}: {} is not its f32 weights rounded", a.name);
                assert!(a.shape.len() == 2 && h.bits.len() >= MIN_ELEMENTS, "{what}: {} {:?} rounded", a.name, a.shape);
                assert!(consumers[id].iter().all(|&n| convlens_core::prep::is_fc(halves, &halves.nodes[n])), "{what}: {} read by a non-FC node", a.name);
                rounded += 1;
            }
            (None, None) => assert!(!a.is_const, "{what}: {} lost its weights", a.name),
            (Some(_), Some(_)) => panic!("{what}: {} held twice", a.name),
        }
    }
    rounded
}

#[test]
fn fc_f16_import_rounds_exactly_the_fc_weights_in_chunks_of_any_size() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let odd: Vec<usize> = (0..4096).map(|_| rng.random_range(1..4099)).collect();
    // (file, FC weight tensors it holds)
    let files: [(PathBuf, usize); 4] = [
        (shared_models().join("squeezenet1.1.onnx"), 0),
        // Its classifier's weights are a folded Reshape, not a streamed tensor: they stay f32.
        (shared_models().join("googlenet-synthetic.onnx"), 0),
        (shared_models().join("light/light_bvlc_alexnet.onnx"), 0),
        (refs().join("bvlc_alexnet-seeded.onnx"), 3),
    ];
    for (path, fcs) in files {
        let bytes = std::fs::read(&path).unwrap();
        let what = path.file_name().unwrap().to_string_lossy().to_string();
        let f32s = import(&bytes, "m").unwrap();
        for (kind, got) in [
            ("odd chunks", streamed(&bytes, |at| odd[at % odd.len()], WeightPrecision::FcF16)),
            ("one piece", import_with(&bytes, "m", WeightPrecision::FcF16)),
        ] {
            let got = got.unwrap_or_else(|e| panic!("{what}, {kind}: {e}"));
            assert_eq!(assert_rounded_from(&f32s, &got, &format!("{what}, {kind}")), fcs, "{what}, {kind}");
        }
    }
}

fn raw(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto { name: Some(output.into()), op_type: Some(op.into()), input: inputs.iter().map(|s| s.to_string()).collect(), output: vec![output.into()], attribute, ..Default::default() }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), i: Some(v), r#type: Some(2), ..Default::default() }
}

const K: usize = 512;
const N3: usize = 600;

/// x [1, 512] -> Gemm(w1, transB=1) -> Relu -> MatMul(w2) -> Gemm(w3 [512, 600], transB=0) -> y:
/// w1 and w3 are FC weights (one laid out as rows, one to transpose), w2 is a MatMul operand of
/// the same size, which must stay f32. `w1[at] = v` plants a value.
fn three_products(plant: Option<(usize, f32)>) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut w = |n: usize| (0..n).map(|_| rng.random_range(-1.0f32..1.0) / (K as f32).sqrt()).collect::<Vec<f32>>();
    let mut w1 = w(K * K);
    // Values a half holds only approximately, below its normal range, and at its edge.
    (w1[0], w1[1], w1[2], w1[3]) = (1e-3 / 3.0, 3e-6, -2.0e-8, 65504.0 / 1e6);
    if let Some((at, v)) = plant {
        w1[at] = v;
    }
    let (w2, w3, b1) = (w(K * K), w(K * N3), w(K));
    let input = ValueInfoProto {
        name: Some("x".into()),
        r#type: Some(TypeProto {
            value: Some(convlens_core::onnx::proto::type_proto::Value::TensorType(convlens_core::onnx::proto::type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(convlens_core::onnx::proto::TensorShapeProto {
                    dim: [1, K as i64]
                        .iter()
                        .map(|&d| convlens_core::onnx::proto::tensor_shape_proto::Dimension { value: Some(convlens_core::onnx::proto::tensor_shape_proto::dimension::Value::DimValue(d)), ..Default::default() })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("three products".into()),
            node: vec![
                node("Gemm", &["x", "w1", "b1"], "fc1", vec![int_attr("transB", 1)]),
                node("Relu", &["fc1"], "r1", vec![]),
                node("MatMul", &["r1", "w2"], "mm", vec![]),
                node("Gemm", &["mm", "w3"], "y", vec![]),
            ],
            initializer: vec![raw("w1", &[K as i64, K as i64], &w1), raw("b1", &[K as i64], &b1), raw("w2", &[K as i64, K as i64], &w2), raw("w3", &[K as i64, N3 as i64], &w3)],
            input: vec![input],
            output: vec![ValueInfoProto { name: Some("y".into()), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn a_matmul_operand_stays_f32_and_both_fc_layouts_round() {
    let bytes = three_products(None);
    let (f32s, halves) = (import(&bytes, "m").unwrap(), import_with(&bytes, "m", WeightPrecision::FcF16).unwrap());
    assert_eq!(assert_rounded_from(&f32s, &halves, "three products"), 2);
    let held = |name: &str| halves.value(halves.find_value(name).unwrap()).half.is_some();
    assert!(held("w1") && held("w3") && !held("w2") && !held("b1"));
    assert_eq!(halves.half_weights(), (K * K + K * N3, 2 * (K * K + K * N3)));
    // The costs panel's weight memory counts them at 2 bytes.
    let held = |g: &Graph| convlens_core::analytics::analyze(g).weight_bytes;
    assert_eq!(held(&f32s) - held(&halves), 2 * (K * K + K * N3) as u64);
    // A half below its normal range keeps its value to 2^-24; one below 2^-25 is zero.
    let w1 = halves.value(halves.find_value("w1").unwrap()).half.as_ref().unwrap();
    assert_eq!(to_f32(w1.bits[1]), (3e-6f32 / 2f32.powi(-24)).round() * 2f32.powi(-24));
    assert_eq!(w1.bits[2], 0x8000, "-2e-8 rounds to -0");
}

#[test]
fn a_weight_beyond_half_range_is_refused_by_name_and_f32_still_loads() {
    for v in [1e6, -7e4, f32::NAN] {
        let bytes = three_products(Some((1000, v)));
        let err = import_with(&bytes, "m", WeightPrecision::FcF16).unwrap_err().to_string();
        assert!(err.contains("'w1'") && err.contains("half precision") && err.contains("f32 weights"), "{v}: {err}");
        let f32s = import(&bytes, "m");
        assert_eq!(f32s.is_ok(), v.is_finite(), "{v}: {:?}", f32s.err());
    }
    // 65504 is a half; 65520 rounds to infinity.
    assert_eq!(to_half(65504.0).map(to_f32), Some(65504.0));
    assert_eq!(to_half(65519.0).map(to_f32), Some(65504.0));
    assert_eq!(to_half(65520.0), None);
    assert_eq!(to_half(f32::INFINITY), None);
}

/// Forward on every CPU engine and backward to the input: on half weights, bit for bit the f32
/// kernels on the widened weights (the SIMD dot keeps the f32 dot's order of sums; the backward
/// reads each half as the f32 loop reads its float); the scalar reference widens FC weights for
/// the pass and agrees within FAST_VS_REFERENCE_TOL.
#[test]
fn half_fc_kernels_compute_what_f32_kernels_compute_on_the_widened_weights() {
    let halves = import_with(&three_products(None), "m", WeightPrecision::FcF16).unwrap();
    let wide = widened(&halves);
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let x = Tensor::new(vec![1, K], (0..K).map(|_| rng.random_range(-1.0f32..1.0)).collect()).unwrap();
    let y = halves.outputs[0];
    let pass = |g: &Graph, kind| run(g, &mut *cpu_backend(kind, g).unwrap(), &x, &Keep::All, &mut |_, _| {}).unwrap();
    let bits = |t: &Tensor| t.data.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for kind in [CpuKind::Gemm, CpuKind::Simd] {
        let (h, w) = (pass(&halves, kind), pass(&wide, kind));
        assert!(bits(&h.values[&y]) == bits(&w.values[&y]), "{kind:?}: forward");
        let grad = |g: &Graph, out: &convlens_core::exec::RunOutput| {
            let kept = |v: usize| out.values.get(&v);
            let source = f32_source(g, &x, &kept);
            let seed = Tensor::new(vec![1, N3], (0..N3).map(|i| (i as f32 * 0.1).sin()).collect()).unwrap();
            backward(g, &source, y, seed, None, &[], ReluRule::Plain).unwrap().remove(&g.input).unwrap()
        };
        assert!(bits(&grad(&halves, &h)) == bits(&grad(&wide, &w)), "{kind:?}: backward");
    }
    let reference = pass(&halves, CpuKind::Reference);
    let fast = pass(&halves, CpuKind::Simd);
    let err = convlens_core::tensor::rel_error(&fast.values[&y].data, &reference.values[&y].data);
    assert!(err <= FAST_VS_REFERENCE_TOL, "reference vs SIMD on half weights: {err:e}");
}

/// The half dot product on this machine's SIMD path and the portable one against f64 sums of
/// the widened weights, over lengths around every vector width, with subnormal halves, zeros of
/// both signs and the largest half; and equal to the f32 `dot` on the widened weights.
#[test]
fn dot_f16_against_f64_sums() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let specials = [0x0000u16, 0x8000, 0x0001, 0x83ff, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x3c00, 0xbc00];
    for n in (0..80).chain([1000, 4096, 25088]) {
        let a: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let h: Vec<u16> = (0..n)
            .map(|i| if i % 7 == 3 { specials[i % specials.len()] } else { to_half(rng.random_range(-1.0f32..1.0)).unwrap() })
            .collect();
        let wide: Vec<f32> = h.iter().map(|&b| to_f32(b)).collect();
        let want: f64 = a.iter().zip(&wide).map(|(&x, &w)| x as f64 * w as f64).sum();
        let scale: f64 = a.iter().zip(&wide).map(|(&x, &w)| (x as f64 * w as f64).abs()).sum::<f64>().max(1.0);
        for (who, got) in [("simd", dot_f16(&a, &h)), ("portable", dot_f16_portable(&a, &h))] {
            assert!(((got as f64 - want) / scale).abs() < 1e-6, "{who}, n={n}: {got} vs {want}");
        }
        assert_eq!(dot_f16(&a, &h).to_bits(), dot(&a, &wide).to_bits(), "n={n}: the f32 dot's order of sums");
    }
}
