//! Every shared model imports; modules, branches and heads are found from the graph alone.

mod common;

use common::*;
use convlens_core::archs::{googlenet, squeezenet1_1, Weights};
use convlens_core::graph::structure::{detect, ModuleKind};
use convlens_core::graph::OutputKind;

#[test]
fn every_shared_model_imports() {
    let mut files = vec![shared_models().join("squeezenet1.1.onnx"), shared_models().join("googlenet-synthetic.onnx")];
    for e in std::fs::read_dir(shared_models().join("light")).unwrap() {
        files.push(e.unwrap().path());
    }
    assert!(files.len() >= 7);
    for f in files {
        let g = import(&f);
        assert_eq!(g.shape(g.outputs[0]).iter().product::<usize>(), 1000, "{}", f.display());
        assert!(g.has_weights(), "{}: weights from ConstantOfShape must be materialised", f.display());
    }
}

#[test]
fn light_models_run_and_give_the_constant_weight_answer() {
    // All weights 0.02: every class gets the same logit, so softmax is uniform 1/1000.
    for name in ["light_vgg19.onnx", "light_inception_v1.onnx", "light_zfnet512.onnx", "light_bvlc_alexnet.onnx", "light_squeezenet.onnx"] {
        let g = import(&shared_models().join("light").join(name));
        let x = convlens_core::Tensor::new(g.shape(g.input).to_vec(), vec![0.5; 3 * 224 * 224]).unwrap();
        let mut b = convlens_core::exec::cpu_backend(convlens_core::exec::CpuKind::Simd, &g).unwrap();
        let out = convlens_core::exec::run(&g, b.as_mut(), &x, &convlens_core::exec::Keep::Outputs, &mut |_, _| {}).unwrap();
        let y = &out.get(g.outputs[0]).unwrap().data;
        for v in y {
            assert!((v - 1e-3).abs() < 1e-6, "{name}: {v}");
        }
    }
}

/// The Caffe2 export names its nodes "n0".."n143": every layer still gets a name a reader
/// knows from the BVLC prototxt, and no two layers share one.
#[test]
fn unnamed_nodes_are_named_from_their_weight_op_and_place() {
    let g = import(&shared_models().join("googlenet-synthetic.onnx"));
    assert!(g.nodes.iter().all(|n| n.name.starts_with('n')), "the file's own names are generic");
    let names = convlens_core::graph::structure::display_names(&g);
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "names are unique");
    let op_of = |name: &str| names.iter().position(|n| n == name).map(|i| g.nodes[i].op_type.clone()).unwrap_or_else(|| panic!("no layer {name} in {names:?}"));
    assert_eq!(op_of("conv1/7x7_s2"), "Conv+Relu");
    assert_eq!(op_of("pool1"), "MaxPool");
    assert_eq!(op_of("norm1"), "LRN");
    assert_eq!(op_of("pool2"), "MaxPool");
    assert_eq!(op_of("inception_3a/pool"), "MaxPool");
    assert_eq!(op_of("inception_3a/output"), "Concat");
    assert_eq!(op_of("inception_5b/output"), "Concat");
    assert_eq!(op_of("pool5"), "AveragePool");
    assert_eq!(op_of("loss3/classifier"), "Gemm");
    // Split out, each ReLU is named after the conv it follows.
    let unfused = g.unfused();
    let split = convlens_core::graph::structure::display_names(&unfused);
    assert!(split.iter().any(|n| n == "inception_3a/3x3/relu"), "{split:?}");
}

#[test]
fn zoo_googlenet_has_nine_inception_modules_with_labelled_branches() {
    let g = import(&shared_models().join("googlenet-synthetic.onnx"));
    let s = detect(&g);
    let inc: Vec<_> = s.modules.iter().filter(|m| m.kind == ModuleKind::Inception).collect();
    assert_eq!(inc.len(), 9);
    let names: Vec<&str> = inc.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["inception_3a", "inception_3b", "inception_4a", "inception_4b", "inception_4c", "inception_4d", "inception_4e", "inception_5a", "inception_5b"]);
    for m in &inc {
        let labels: Vec<&str> = m.branches.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["1x1", "3x3 reduce->3x3", "5x5 reduce->5x5", "pool->proj"], "{}", m.name);
    }
    // The Caffe2 export keeps the zoo's 55/27/13/6 maps (no ceil mode).
    let m3a = &inc[0];
    assert_eq!(g.shape(g.nodes[m3a.concat].output), [1, 256, 27, 27]);
    let heads: Vec<_> = s.heads.iter().filter(|h| !h.auxiliary).collect();
    assert_eq!(heads.len(), 1);
    assert_eq!(g.nodes[*heads[0].nodes.last().unwrap()].op_type, "Softmax");
    assert_eq!(convlens_core::exec::output_kind(&g), OutputKind::Probabilities);
}

#[test]
fn builtin_googlenet_has_two_auxiliary_heads() {
    let g = googlenet(Weights::None, true).unwrap();
    let s = detect(&g);
    let aux: Vec<_> = s.heads.iter().filter(|h| h.auxiliary).collect();
    assert_eq!(aux.len(), 2);
    assert_eq!(aux[0].name, "auxiliary classifier loss1");
    // avg pool, conv, flatten, fc, dropout, classifier, softmax
    assert_eq!(aux[0].nodes.len(), 7);
    let fork = g.data_input(&g.nodes[aux[0].nodes[0]]);
    assert_eq!(g.value(fork).name, "inception_4a/output");
    assert_eq!(s.modules.iter().filter(|m| m.kind == ModuleKind::Inception).count(), 9);
    // Every head, main and auxiliary, ends in its own Softmax: no second softmax on top.
    for h in &s.heads {
        assert_eq!(convlens_core::exec::output_kind_of(&g, h.output), OutputKind::Probabilities, "{}", h.name);
    }
    // A value before the softmax is logits.
    let fc = g.nodes[aux[0].nodes[5]].output;
    assert_eq!(convlens_core::exec::output_kind_of(&g, fc), OutputKind::Logits);
}

#[test]
fn squeezenet_has_eight_fire_modules() {
    for g in [import(&shared_models().join("squeezenet1.1.onnx")), squeezenet1_1(Weights::None).unwrap()] {
        let s = detect(&g);
        assert_eq!(s.modules.len(), 8, "{}", g.name);
        for m in &s.modules {
            assert_eq!(m.kind, ModuleKind::Fire);
            let labels: Vec<&str> = m.branches.iter().map(|b| b.label.as_str()).collect();
            assert_eq!(labels, ["1x1", "3x3"]);
        }
        assert_eq!(convlens_core::exec::output_kind(&g), OutputKind::Logits);
    }
}

#[test]
fn preprocessing_is_recognised_from_the_file() {
    let caffe = import(&shared_models().join("googlenet-synthetic.onnx"));
    assert!(caffe.preprocess.bgr && caffe.preprocess.scale == 1.0);
    let mx = import(&shared_models().join("squeezenet1.1.onnx"));
    assert!(!mx.preprocess.bgr && (mx.preprocess.mean[0] - 0.485).abs() < 1e-6);
}

/// `Graph::up_to`: only the nodes a layer needs, the same value ids, shapes inferred again at
/// another input size (by hand for SqueezeNet's conv1: 3x3 stride 2, no pad: (128 - 3) / 2 + 1
/// = 63), the same values as the whole graph at the original size, and a clear refusal where a
/// window no longer fits or a Reshape fixes the size.
#[test]
fn up_to_a_layer_at_another_input_size() {
    use convlens_core::exec::{self, CpuKind, Keep};
    let g = convlens_testkit::import(&convlens_testkit::shared_models().join("squeezenet1.1.onnx"));
    let concat = g.find_value("squeezenet0_concat3").unwrap();
    let part = g.up_to(concat, None).unwrap();
    assert_eq!(part.outputs, vec![concat]);
    assert!(part.nodes.len() < g.nodes.len() && part.nodes.iter().all(|n| g.nodes.iter().any(|m| m.name == n.name)));
    let x = convlens_core::Tensor::new(g.shape(g.input).to_vec(), (0..3 * 224 * 224).map(|i| ((i * 31 % 97) as f32 - 48.0) / 40.0).collect()).unwrap();
    let run = |g: &convlens_core::Graph, x: &convlens_core::Tensor| {
        let mut be = exec::cpu_backend(CpuKind::Simd, g).unwrap();
        exec::run(g, be.as_mut(), x, &Keep::All, &mut |_, _| {}).unwrap().get(concat).unwrap().clone()
    };
    assert_eq!(run(&part, &x).data, run(&g, &x).data, "the same values as the whole graph");
    let small = g.up_to(concat, Some(128)).unwrap();
    assert_eq!(small.shape(small.input), [1, 3, 128, 128]);
    let conv1 = small.nodes[0].output;
    assert_eq!(small.shape(conv1), [1, 64, 63, 63]);
    let x128 = convlens_core::Tensor::new(vec![1, 3, 128, 128], vec![0.1; 3 * 128 * 128]).unwrap();
    assert_eq!(run(&small, &x128).shape, small.shape(concat));
    let err = g.up_to(concat, Some(8)).unwrap_err().to_string();
    assert!(err.contains("at 8 px"), "{err}");
    let flat = g.outputs[0];
    let err = g.up_to(flat, Some(128)).unwrap_err().to_string();
    assert!(err.contains("at 128 px") || err.contains("reshapes"), "{err}");
}

/// ResNet-50's 16 residual blocks found from the graph alone: each an Add of a residual branch
/// (1x1 -> 3x3 -> 1x1) and a skip path, the first block of each of the four stages with a 1x1
/// projection on the skip path (by hand: 3, 4, 6, 3 blocks), the others the identity.
#[test]
fn resnet50_residual_blocks_are_found() {
    use convlens_core::graph::structure::{detect, ModuleKind};
    let g = convlens_testkit::import(&convlens_testkit::refs().join("resnet50-seeded.onnx"));
    let s = detect(&g);
    let blocks: Vec<_> = s.modules.iter().filter(|m| m.kind == ModuleKind::Residual).collect();
    assert_eq!(blocks.len(), 16);
    let projections = blocks.iter().filter(|m| m.branches[1].label.starts_with("skip (1x1")).count();
    assert_eq!(projections, 4);
    assert_eq!(blocks.iter().filter(|m| m.branches[1].label == "skip (identity)").count(), 12);
    for m in &blocks {
        assert_eq!(m.branches.len(), 2);
        assert_eq!(m.branches[0].label, "residual 1x1->3x3->1x1", "{}", m.name);
        assert!(matches!(g.nodes[m.concat].op, convlens_core::graph::Op::Add));
    }
    assert_eq!(blocks[0].name, "residual block 1");
}

/// ResNet-50 v2 (pre-activation): the same 16 blocks, though each begins with a BatchNorm and
/// a ReLU and the first of a stage forks after them (its projection reads the pre-activated
/// input); the BatchNorms that follow an Add or the input stay BatchNorm nodes (not folded).
#[test]
fn resnet50_v2_pre_activation_blocks_are_found() {
    use convlens_core::graph::structure::{detect, ModuleKind};
    use convlens_core::graph::Op;
    let g = convlens_testkit::import(&convlens_testkit::refs().join("resnet50v2-seeded.onnx"));
    let s = detect(&g);
    let blocks: Vec<_> = s.modules.iter().filter(|m| m.kind == ModuleKind::Residual).collect();
    assert_eq!(blocks.len(), 16, "{:?}", blocks.iter().map(|m| &m.name).collect::<Vec<_>>());
    assert_eq!(blocks.iter().filter(|m| m.branches[1].label.starts_with("skip (1x1")).count(), 4);
    assert!(blocks.iter().all(|m| matches!(g.nodes[m.concat].op, Op::Add)));
    // By hand: the input's BatchNorm, each block's first (it follows an Add or the stem's pool)
    // and the final one cannot fold into a conv before them: 1 + 16 + 1.
    let kept = g.nodes.iter().filter(|n| matches!(n.op, Op::BatchNorm { .. })).count();
    assert_eq!(kept, 18);
}

/// ShuffleNet v1 (g=4; by hand from the paper's Table 1: stages of 4, 8 and 4 units, the first
/// of each downsampling with a 3x3 average-pooled shortcut concatenated, the rest residual):
/// 16 units found from the graph, each with its channel shuffle between the grouped 1x1 and
/// the depthwise 3x3, and the lesson's multiply-adds equal to the grouped convs' own.
#[test]
fn shufflenet_units_and_channel_shuffles_are_found() {
    let g = convlens_testkit::import(&convlens_testkit::refs().join("shufflenet-seeded.onnx"));
    let s = detect(&g);
    let units: Vec<_> = s.modules.iter().filter(|m| m.name.starts_with("shuffle unit")).collect();
    assert_eq!(units.len(), 16);
    let concatenated: Vec<usize> = units.iter().enumerate().filter(|(_, m)| matches!(g.nodes[m.concat].op, convlens_core::graph::Op::Concat { .. })).map(|(i, _)| i).collect();
    assert_eq!(concatenated, vec![0, 4, 12], "each stage's first unit downsamples");
    for (i, m) in units.iter().enumerate() {
        let want = if concatenated.contains(&i) { ModuleKind::Shuffle } else { ModuleKind::Residual };
        assert_eq!(m.kind, want, "{}", m.name);
        assert!(m.branches[0].label.contains("shuffle->3x3 depthwise"), "{}: {}", m.name, m.branches[0].label);
    }
    assert_eq!(units[0].branches[1].label, "shortcut (pool, concatenated)");
    let stats = convlens_core::analytics::analyze(&g);
    let saving = convlens_core::lessons::channel_shuffle(&g, &stats).expect("a channel-shuffle lesson");
    assert_eq!(saving.shuffles, 16);
    // Two grouped 1x1 convs per unit (this export groups the first unit's first one too).
    assert_eq!((saving.convs, saving.max_groups), (32, 4));
    let by_hand: u64 = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, convlens_core::graph::Op::Conv { group: 4, window: convlens_core::graph::Window { kernel: [1, 1], .. }, .. }))
        .map(|n| {
            let (w, o) = (g.shape(n.inputs[1]), g.shape(n.output));
            (o.iter().product::<usize>() * w[1]) as u64
        })
        .sum();
    assert_eq!(saving.grouped_macs, by_hand);
    assert_eq!(saving.dense_macs, 4 * by_hand);
}

/// MobileNet v2 (seeded, torchvision's layout): by hand from the paper's Table 2, 17
/// bottlenecks (1+2+3+4+3+3+1), each a depthwise 3x3 and the linear 1x1 projection reading it,
/// and 10 of them residual (stride 1, same width). A separable pair costs 1/N + 1/9 of the full
/// 3x3 conv (N its output channels, 16 to 320 here), so the whole saving lies between 5.8x
/// (N = 16) and 8.8x (N = 320).
#[test]
fn mobilenetv2_bottlenecks_and_the_separable_saving() {
    let g = convlens_testkit::import(&convlens_testkit::refs().join("mobilenetv2-seeded.onnx"));
    assert!(g.nodes.iter().any(|n| matches!(n.op, convlens_core::graph::Op::Clip { min: 0.0, max: 6.0 })));
    let s = detect(&g);
    assert_eq!(s.modules.iter().filter(|m| m.kind == ModuleKind::Residual).count(), 10);
    let stats = convlens_core::analytics::analyze(&g);
    let saving = convlens_core::lessons::depthwise_separable(&g, &stats).expect("a separable-conv lesson");
    assert_eq!(saving.pairs, 17);
    let ratio = saving.full_macs as f64 / saving.separable_macs as f64;
    assert!((5.8..8.8).contains(&ratio), "{ratio}");
}

/// DenseNet-121 (seeded): by hand from the paper's Table 1, four dense blocks of 6, 12, 24 and
/// 16 layers, growth rate 32, 64 channels into the first block and each transition halving
/// the channels: 64 -> 256, 128 -> 512, 256 -> 1024, 512 -> 1024.
#[test]
fn densenet121_dense_blocks_are_found() {
    let g = convlens_testkit::import(&convlens_testkit::refs().join("densenet121-seeded.onnx"));
    let s = detect(&g);
    let layers: Vec<_> = s.modules.iter().filter(|m| m.kind == ModuleKind::Dense).collect();
    assert_eq!(layers.len(), 6 + 12 + 24 + 16);
    assert_eq!(layers[0].name, "dense block 1 layer 1");
    assert_eq!(layers[6].name, "dense block 2 layer 1");
    assert_eq!(layers[57].name, "dense block 4 layer 16");
    assert_eq!(layers[0].branches[0].label, "input, kept");
    let d = convlens_core::lessons::dense_blocks(&g, &s).expect("dense blocks");
    assert_eq!(d.growth, 32);
    let got: Vec<(usize, usize, usize)> = d.blocks.iter().map(|b| (b.layers, b.c_in, b.c_out)).collect();
    assert_eq!(got, vec![(6, 64, 256), (12, 128, 512), (24, 256, 1024), (16, 512, 1024)]);
}

/// The preprocessing contract from the names exporters leave, and a guess where they say
/// nothing; every choice the app offers round-trips through its key, and maps pixels as named.
#[test]
fn preprocessing_is_recognised_or_marked_as_a_guess() {
    use convlens_core::graph::Preprocess;
    use convlens_core::onnx::recognise_preprocess;
    let caffe = recognise_preprocess("data_0", &["conv1/7x7_s2_w_0"]);
    assert_eq!((caffe.key(), caffe.guessed), (Some("caffe"), false));
    for names in [["features.0.weight"], ["vgg0_conv0_weight"], ["onnx::Conv_193"]] {
        let p = recognise_preprocess("input", &names);
        assert_eq!((p.key(), p.guessed), (Some("imagenet"), false), "{names:?}");
    }
    let guess = recognise_preprocess("input", &["w0", "w1", "conv_out"]);
    assert_eq!((guess.key(), guess.guessed), (Some("imagenet"), true));
    for (key, _) in Preprocess::CHOICES {
        assert_eq!(Preprocess::from_key(key).unwrap().key(), Some(key));
    }
    // Pixel 0 and 255 through each contract: (v * scale - mean) / std.
    let ends = |key: &str| {
        let p = Preprocess::from_key(key).unwrap();
        [0.0f32, 255.0].map(|v| (v * p.scale - p.mean[0]) / p.std[0])
    };
    assert_eq!(ends("inception"), [-1.0, 1.0]);
    assert_eq!(ends("unit"), [0.0, 1.0]);
    assert_eq!(ends("raw"), [0.0, 255.0]);
    assert!(Preprocess::from_key("bgr-ish").is_none());
}
