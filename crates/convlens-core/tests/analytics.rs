//! Layer analytics pinned against independent figures (papers, CS231n, hand arithmetic
//! written out here), and the seed text's lessons measured from graphs.

mod common;

use convlens_core::analytics::analyze;
use convlens_core::archs::{googlenet, squeezenet1_1, vgg16, Weights};
use convlens_core::lessons;

/// VGG16 configuration D: (input side, in channels, out channels) of each 3x3 conv.
const VGG16_CONVS: [(u64, u64, u64); 13] = [
    (224, 3, 64), (224, 64, 64),
    (112, 64, 128), (112, 128, 128),
    (56, 128, 256), (56, 256, 256), (56, 256, 256),
    (28, 256, 512), (28, 512, 512), (28, 512, 512),
    (14, 512, 512), (14, 512, 512), (14, 512, 512),
];

#[test]
fn vgg16_parameters_and_multiply_adds() {
    let g = vgg16(Weights::None).unwrap();
    let s = analyze(&g);
    assert_eq!(s.params, 138_357_544, "VGG16 total parameters (Simonyan & Zisserman; torchvision)");
    let conv1_1 = s.layer("conv1_1").unwrap();
    assert_eq!(conv1_1.params, 1_728 + 64, "conv1_1: 3*3*3*64 weights + 64 biases");
    let fc6 = s.layer("fc6").unwrap();
    assert_eq!(fc6.params, 25_088 * 4_096 + 4_096, "fc6: 7*7*512 x 4096 weights + 4096 biases");
    assert_eq!(fc6.params - 4_096, 102_760_448);
    // Multiply-adds by hand: each conv H*W*Cin*Cout*9, the FCs in*out.
    let conv_macs: u64 = VGG16_CONVS.iter().map(|&(hw, ci, co)| hw * hw * ci * co * 9).sum();
    let fc_macs = 25_088 * 4_096 + 4_096 * 4_096 + 4_096 * 1_000;
    assert_eq!(s.macs, conv_macs + fc_macs);
    assert!((15.46e9..15.48e9).contains(&(s.macs as f64)), "~15.47 G multiply-adds, got {}", s.macs);
    // The seed: fc6 alone holds ~103M of ~138M.
    let big = lessons::largest_layer(&s).unwrap();
    assert_eq!(big.layer, "fc6");
    assert!((0.74..0.75).contains(&(big.params as f64 / big.total as f64)));
}

#[test]
fn vgg16_receptive_fields_and_activation_memory() {
    let s = analyze(&vgg16(Weights::None).unwrap());
    // Each 3x3 adds 2*jump; each 2x2/2 pool adds 1*jump and doubles it.
    assert_eq!(s.layer("conv1_2").unwrap().receptive_field.size, [5, 5]);
    assert_eq!(s.layer("conv5_3").unwrap().receptive_field.size, [196, 196]);
    assert_eq!(s.layer("pool5").unwrap().receptive_field.size, [212, 212]);
    assert_eq!(s.layer("pool5").unwrap().receptive_field.stride, [32, 32]);
    assert!(s.layer("fc6").unwrap().receptive_field.global);
    // CS231n: ~15M activations (~60 MB in f32) for one forward pass, counting every layer.
    assert!((55e6..65e6).contains(&(s.activation_bytes as f64)), "{}", s.activation_bytes);
}

#[test]
fn googlenet_paper_figures() {
    let plain = analyze(&googlenet(Weights::None, false).unwrap());
    assert_eq!(plain.params, 6_998_552, "GoogLeNet without auxiliary heads");
    assert!((1.57e9..1.59e9).contains(&(plain.macs as f64)), "~1.58 G multiply-adds, got {}", plain.macs);
    let with_aux = analyze(&googlenet(Weights::None, true).unwrap());
    // Each aux head: conv 512|528->128 (1x1), FC 2048->1024, FC 1024->1000, with biases.
    let aux = |c: u64| (c * 128 + 128) + (2048 * 1024 + 1024) + (1024 * 1000 + 1000);
    assert_eq!(with_aux.params, plain.params + aux(512) + aux(528));
    let g = googlenet(Weights::None, false).unwrap();
    let shape = |n: &str| g.shape(g.find_value(n).unwrap()).to_vec();
    assert_eq!(shape("inception_3a/output"), [1, 256, 28, 28]);
    assert_eq!(shape("inception_4e/output"), [1, 832, 14, 14]);
    assert_eq!(shape("inception_5b/output"), [1, 1024, 7, 7]);
}

#[test]
fn squeezenet_builtin_matches_the_zoo_file() {
    let builtin = analyze(&squeezenet1_1(Weights::None).unwrap());
    let zoo = analyze(&common::import(&common::shared_models().join("squeezenet1.1.onnx")));
    assert_eq!(builtin.params, 1_235_496);
    assert_eq!(zoo.params, builtin.params);
    assert_eq!(zoo.macs, builtin.macs);
}

#[test]
fn stacked_3x3_sees_7x7_with_fewer_weights() {
    for c in [1usize, 64, 256] {
        let l = lessons::stacked_3x3_vs_7x7(c).unwrap();
        assert_eq!(l.stacked_receptive_field, 7);
        assert_eq!(l.single_receptive_field, 7);
        assert_eq!(l.stacked_weights, 27 * (c * c) as u64);
        assert_eq!(l.single_weights, 49 * (c * c) as u64);
    }
}

#[test]
fn lecture_inception_with_and_without_bottlenecks() {
    let naive = lessons::lecture_inception(false).unwrap();
    let hw = 28 * 28;
    assert_eq!(naive.macs, hw * (256 * 128 + 256 * 192 * 9 + 256 * 96 * 25));
    assert_eq!(naive.macs, 854_196_224, "the lecture's 854M");
    assert_eq!(naive.output_depth, 128 + 192 + 96 + 256);
    let b = lessons::lecture_inception(true).unwrap();
    assert_eq!(b.macs, hw * (256 * 128 + 256 * 64 + 64 * 192 * 9 + 256 * 64 + 64 * 96 * 25 + 256 * 64));
    assert_eq!(b.output_depth, 128 + 192 + 96 + 64);
    assert!(b.macs * 3 < naive.macs);
}

#[test]
fn average_pooling_replaces_a_huge_fc() {
    let g = googlenet(Weights::None, true).unwrap();
    let l = lessons::pooling_vs_fc(&g).unwrap();
    assert_eq!(l.map, [1024, 7, 7]);
    assert_eq!(l.classifier_weights, 1024 * 1000);
    assert_eq!(l.fc_instead_weights, 1024 * 49 * 1000);
    let sq = lessons::pooling_vs_fc(&squeezenet1_1(Weights::None).unwrap()).unwrap();
    assert_eq!(sq.map, [512, 13, 13]);
    assert_eq!(sq.classifier_weights, 512 * 1000);
    assert!(lessons::pooling_vs_fc(&vgg16(Weights::None).unwrap()).is_none(), "VGG16 has no pooling before its FCs");
}

#[test]
fn counts_print_as_people_read_them() {
    use convlens_core::analytics::human_count;
    assert_eq!(human_count(854_196_224), "854.2 M");
    assert_eq!(human_count(15_470_264_320), "15.47 G");
    assert_eq!(human_count(1_728), "1.7 K");
    assert_eq!(human_count(64), "64");
}

/// Each model is shown the lessons it teaches and no other: VGG16 the FC share and the 3x3
/// stack, GoogLeNet the bottleneck and the pooling head, SqueezeNet only the pooling head.
#[test]
fn lessons_belong_to_the_model_shown() {
    let titles = |g: &convlens_core::Graph| lessons::texts(g, &analyze(g)).into_iter().map(|l| l.title).collect::<Vec<_>>();
    let vgg = titles(&vgg16(Weights::None).unwrap());
    assert_eq!(vgg.len(), 2, "{vgg:?}");
    assert!(vgg[0].starts_with("fc6 holds 74.3%"), "{vgg:?}");
    assert_eq!(vgg[1], "3 stacked 3x3 convs (conv5_1 to conv5_3) see as far as one 7x7");
    let goog = titles(&googlenet(Weights::None, true).unwrap());
    assert_eq!(goog.len(), 2, "{goog:?}");
    assert!(goog[0].starts_with("1x1 bottlenecks cut inception_3a"), "{goog:?}");
    assert!(goog[1].starts_with("Average pooling"), "{goog:?}");
    let sq = titles(&squeezenet1_1(Weights::None).unwrap());
    assert_eq!(sq.len(), 1, "{sq:?}");
    assert!(sq[0].starts_with("Average pooling"));
}

#[test]
fn vgg16_stack_measured_from_its_own_convs() {
    let g = vgg16(Weights::None).unwrap();
    let r = lessons::longest_3x3_stack(&g, &analyze(&g)).unwrap();
    assert_eq!(r.layers, ["conv5_1", "conv5_2", "conv5_3"]);
    assert_eq!((r.c_in, r.c_out, r.receptive_field), (512, 512, 7));
    assert_eq!(r.weights, 27 * 512 * 512);
    assert_eq!(r.single_weights, 49 * 512 * 512);
    assert!(lessons::longest_3x3_stack(&squeezenet1_1(Weights::None).unwrap(), &analyze(&squeezenet1_1(Weights::None).unwrap())).is_none());
}

/// inception_3a on 28x28x192, by hand: with its reductions the paper's 128M; without them each
/// 3x3 and 5x5 reads all 192 channels and the pool's 192 channels go into the concat.
#[test]
fn googlenet_inception_3a_without_its_bottlenecks() {
    let g = googlenet(Weights::None, true).unwrap();
    let st = convlens_core::graph::structure::detect(&g);
    let b = lessons::bottleneck_saving(&g, &analyze(&g), &st).unwrap();
    let hw = 28 * 28;
    assert_eq!(b.module, "inception_3a");
    assert_eq!(b.macs, hw * (192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32));
    assert_eq!(b.without_macs, hw * (192 * 64 + 192 * 128 * 9 + 192 * 32 * 25));
    assert_eq!((b.depth, b.without_depth), (256, 64 + 128 + 32 + 192));
}
