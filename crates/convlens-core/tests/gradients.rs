//! The backward pass, op by op against central differences in f64 (like
//! `torch.autograd.gradcheck`), then whole networks: a small Inception-like net in f64 against
//! central differences, and SqueezeNet/GoogLeNet in f32 on every CPU engine's activations
//! against the f64 reference backward.

use std::borrow::Cow;

use convlens_core::grad::{backward, ops, reference_forward, ReluRule};
use convlens_core::graph::{Graph, Window};
use convlens_core::kernels::reference as fwd;
use convlens_core::tensor::TensorOf;
use convlens_testkit::{GRAD_CHECK_TOL, GRAD_F32_TOL};
use rand::{rngs::StdRng, Rng, SeedableRng};

type T64 = TensorOf<f64>;

fn random(shape: &[usize], rng: &mut StdRng) -> T64 {
    // Away from 0 so ReLU and max pool have no kink within a difference step.
    let data = (0..shape.iter().product()).map(|_| {
        let v: f64 = rng.random_range(0.05..1.0);
        if rng.random_bool(0.5) { v } else { -v }
    });
    TensorOf { shape: shape.to_vec(), data: data.collect() }
}

/// d (r . f(x)) / dx by central differences, every element of x.
fn numeric(x: &T64, r: &T64, f: &dyn Fn(&T64) -> T64) -> Vec<f64> {
    let h = 1e-5;
    (0..x.data.len())
        .map(|i| {
            let (mut a, mut b) = (x.clone(), x.clone());
            a.data[i] += h;
            b.data[i] -= h;
            let (fa, fb) = (f(&a), f(&b));
            fa.data.iter().zip(&fb.data).zip(&r.data).map(|((p, q), w)| (p - q) * w).sum::<f64>() / (2.0 * h)
        })
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
    let err = got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((g - w).abs())) / scale;
    assert!(err <= GRAD_CHECK_TOL, "{what}: backward off by {err:e} of the gradient's scale (tolerance {GRAD_CHECK_TOL:e})");
}

/// Checks `back(r)` against the numeric gradient of x -> r . f(x) at a random x.
fn check(what: &str, x_shape: &[usize], f: &dyn Fn(&T64) -> T64, back: &dyn Fn(&T64, &T64) -> T64) {
    let mut rng = StdRng::seed_from_u64(7);
    let x = random(x_shape, &mut rng);
    let y = f(&x);
    let r = random(&y.shape, &mut rng);
    assert_close(what, &back(&x, &r).data, &numeric(&x, &r, f));
}

fn win(k: [usize; 2], s: [usize; 2], pads: [usize; 4], d: [usize; 2]) -> Window {
    Window { kernel: k, strides: s, pads, dilations: d }
}

#[test]
fn conv_with_groups_strides_dilation_and_pads() {
    let mut rng = StdRng::seed_from_u64(1);
    let w = random(&[6, 2, 3, 3], &mut rng);
    let wn = win([3, 3], [2, 1], [1, 0, 2, 1], [1, 2]);
    let xs = [1, 4, 7, 6];
    check("conv", &xs, &|x| fwd::conv(x, &w, None, &wn, 2, false).unwrap(), &|_, r| ops::conv(r, &w, &xs, &wn, 2).unwrap());
}

#[test]
fn relu_plain_and_guided() {
    check("relu", &[1, 3, 4, 4], &|x| fwd::relu(x), &|x, r| ops::relu(r, x, false));
    // Guided: the plain gradient with its negative entries dropped.
    let mut rng = StdRng::seed_from_u64(3);
    let (x, r) = (random(&[40], &mut rng), random(&[40], &mut rng));
    let (plain, guided) = (ops::relu(&r, &x, false), ops::relu(&r, &x, true));
    for ((p, g), xv) in plain.data.iter().zip(&guided.data).zip(&x.data) {
        assert_eq!(*g, if *p > 0.0 && *xv > 0.0 { *p } else { 0.0 });
    }
}

#[test]
fn max_pool_with_pads_and_ceil_mode() {
    let wn = win([3, 3], [2, 2], [1, 1, 0, 0], [1, 1]);
    check("max pool", &[1, 2, 8, 7], &|x| fwd::max_pool(x, &wn, true).unwrap(), &|x, r| ops::max_pool(r, x, &wn).unwrap());
}

#[test]
fn average_pool_with_and_without_padding_in_the_count() {
    let wn = win([3, 2], [2, 2], [1, 1, 1, 0], [1, 1]);
    for cip in [false, true] {
        let xs = [1, 3, 7, 6];
        check(&format!("average pool, count_include_pad={cip}"), &xs, &|x| fwd::average_pool(x, &wn, true, cip).unwrap(), &|_, r| {
            ops::average_pool(r, &xs, &wn, cip).unwrap()
        });
    }
    check("global average pool", &[1, 5, 3, 4], &|x| fwd::global_average_pool(x).unwrap(), &|_, r| ops::global_average_pool(r, &[1, 5, 3, 4]).unwrap());
}

#[test]
fn lrn_odd_and_even_windows() {
    for size in [5, 4] {
        check(&format!("lrn size {size}"), &[1, 7, 3, 2], &|x| fwd::lrn(x, size, 0.5, 0.75, 1.0).unwrap(), &|x, r| ops::lrn(r, x, size, 0.5, 0.75, 1.0).unwrap());
    }
}

#[test]
fn concat_splits_the_gradient() {
    let mut rng = StdRng::seed_from_u64(5);
    let (a, c) = (random(&[1, 2, 3, 3], &mut rng), random(&[1, 4, 3, 3], &mut rng));
    let shapes: [&[usize]; 3] = [&[1, 2, 3, 3], &[1, 3, 3, 3], &[1, 4, 3, 3]];
    check("concat", &[1, 3, 3, 3], &|b| fwd::concat(&[&a, b, &c], 1).unwrap(), &|_, r| ops::concat(r, &shapes, 1).swap_remove(1));
}

#[test]
fn clip_passes_the_gradient_inside_its_bounds() {
    check("clip", &[1, 3, 4, 4], &|x| fwd::clip(x, -0.4, 0.6), &|x, r| ops::clip(r, x, -0.4, 0.6, false));
    let mut rng = StdRng::seed_from_u64(4);
    let (x, r) = (random(&[40], &mut rng), random(&[40], &mut rng));
    let (plain, guided) = (ops::clip(&r, &x, 0.0, 6.0, false), ops::clip(&r, &x, 0.0, 6.0, true));
    for (p, g) in plain.data.iter().zip(&guided.data) {
        assert_eq!(*g, if *p > 0.0 { *p } else { 0.0 });
    }
}

#[test]
fn transpose_moves_the_gradient_back_by_the_inverse_permutation() {
    // ShuffleNet's channel shuffle (rank 5), a rank-4 permutation and the default reversal.
    for (shape, perm) in [(vec![1, 3, 2, 4, 5], vec![0, 2, 1, 3, 4]), (vec![2, 3, 4, 5], vec![3, 0, 2, 1]), (vec![3, 4], vec![1, 0])] {
        let inv = convlens_core::kernels::reference::inverse_perm(&perm);
        check(&format!("transpose {perm:?}"), &shape, &|x| fwd::transpose(x, &perm).unwrap(), &|_, r| fwd::transpose(r, &inv).unwrap());
    }
}

#[test]
fn gemm_every_transpose_and_a_broadcast_bias() {
    let mut rng = StdRng::seed_from_u64(9);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (m, k, n) = (2, 5, 3);
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let (a, b, c) = (random(&a_shape, &mut rng), random(&b_shape, &mut rng), random(&[n], &mut rng));
        check(&format!("gemm dA ta={ta} tb={tb}"), &a_shape, &|a| fwd::gemm(a, &b, Some(&c), 0.7, 1.3, ta, tb, false).unwrap(), &|_, r| {
            ops::gemm_a(r, &a_shape, &b, 0.7, ta, tb).unwrap()
        });
        check(&format!("gemm dB ta={ta} tb={tb}"), &b_shape, &|b| fwd::gemm(&a, b, Some(&c), 0.7, 1.3, ta, tb, false).unwrap(), &|_, r| {
            ops::gemm_b(r, &a, &b_shape, 0.7, ta, tb).unwrap()
        });
        check("gemm dC", &[n], &|c| fwd::gemm(&a, &b, Some(c), 0.7, 1.3, ta, tb, false).unwrap(), &|_, r| ops::unbroadcast(r, &[n], &[m, n], 1.3).unwrap());
    }
}

#[test]
fn add_with_broadcasting_on_either_side() {
    let mut rng = StdRng::seed_from_u64(11);
    let b = random(&[3, 1, 1], &mut rng);
    let a = random(&[1, 3, 4, 5], &mut rng);
    check("add dA", &[1, 3, 4, 5], &|a| fwd::add(a, &b).unwrap(), &|_, r| ops::unbroadcast(r, &[1, 3, 4, 5], &[3, 1, 1], 1.0).unwrap());
    check("add dB", &[3, 1, 1], &|b| fwd::add(&a, b).unwrap(), &|_, r| ops::unbroadcast(r, &[3, 1, 1], &[1, 3, 4, 5], 1.0).unwrap());
}

#[test]
fn mul_with_broadcasting_on_either_side() {
    let mut rng = StdRng::seed_from_u64(13);
    let b = random(&[3, 1, 1], &mut rng);
    let a = random(&[1, 3, 4, 5], &mut rng);
    check("mul dA", &[1, 3, 4, 5], &|a| fwd::mul(a, &b).unwrap(), &|_, r| ops::mul(r, &b, &[1, 3, 4, 5]).unwrap());
    check("mul dB", &[3, 1, 1], &|b| fwd::mul(&a, b).unwrap(), &|_, r| ops::mul(r, &a, &[3, 1, 1]).unwrap());
}

#[test]
fn softmax_along_an_axis_and_coerced_to_2d() {
    for coerce in [false, true] {
        check(&format!("softmax coerce_2d={coerce}"), &[2, 3, 4], &|x| fwd::softmax(x, 1, coerce).unwrap(), &|x, r| {
            ops::softmax(r, &fwd::softmax(x, 1, coerce).unwrap(), 1, coerce)
        });
    }
}

#[test]
fn batch_norm_at_inference() {
    let mut rng = StdRng::seed_from_u64(13);
    let (scale, bias, mean) = (random(&[3], &mut rng), random(&[3], &mut rng), random(&[3], &mut rng));
    let var = random(&[3], &mut rng).map(|v: f64| v.abs());
    check("batch norm", &[1, 3, 2, 2], &|x| fwd::batch_norm(x, &scale, &bias, &mean, &var, 1e-3).unwrap(), &|_, r| ops::batch_norm(r, &scale, &var, 1e-3));
}

/// A small net with every op GoogLeNet uses (conv+ReLU fused, max pool with ceil, LRN, an
/// Inception-like concat of a 1x1, a 3x3 and a pool branch, average pooling, dropout,
/// flatten, FC, softmax): d (class score) / d input in f64 against central differences.
fn small_inception() -> Graph {
    use convlens_core::archs::{Net, Weights};
    use convlens_core::graph::Preprocess;
    let mut n = Net::new(Weights::Seeded(3));
    let input = n.b.input("x", vec![1, 3, 12, 12]).unwrap();
    let c1 = n.conv("conv1", input, 6, 3, 1, 1, true).unwrap();
    let p1 = n.max_pool("pool1", c1, 3, 2, 0, true).unwrap();
    let l1 = n.lrn("norm1", p1).unwrap();
    let b1 = n.conv("m/1x1", l1, 4, 1, 1, 0, true).unwrap();
    let r3 = n.conv("m/3x3_reduce", l1, 3, 1, 1, 0, true).unwrap();
    let b3 = n.conv("m/3x3", r3, 5, 3, 1, 1, true).unwrap();
    let bp = n.max_pool("m/pool", l1, 3, 1, 1, false).unwrap();
    let bp = n.conv("m/pool_proj", bp, 2, 1, 1, 0, true).unwrap();
    let cat = n.concat("m/output", vec![b1, b3, bp]).unwrap();
    let gap = n.global_avg_pool("pool5", cat).unwrap();
    let d = n.dropout("drop", gap).unwrap();
    let f = n.flatten("flatten", d).unwrap();
    let fc = n.fc("fc", f, 7, false).unwrap();
    let sm = n.softmax("prob", fc).unwrap();
    n.finish("small inception", input, vec![sm], Preprocess::imagenet_rgb())
}

fn owned<'a, T: Clone>(values: &'a [Option<T>]) -> impl Fn(usize) -> Option<Cow<'a, T>> + 'a {
    move |v| values[v].as_ref().map(Cow::Borrowed)
}

#[test]
fn a_whole_small_inception_net_against_central_differences() {
    let g = small_inception();
    let mut rng = StdRng::seed_from_u64(17);
    let x = random(&[1, 3, 12, 12], &mut rng);
    let score = convlens_core::grad::explain::score_value(&g).unwrap();
    let class = 4;
    let values = reference_forward::<f64>(&g, &x).unwrap();
    let mut seed = TensorOf::filled(g.shape(score), 0.0f64).unwrap();
    seed.data[class] = 1.0;
    let layer = g.values.iter().position(|v| v.name == "m/output").unwrap();
    let grads = backward(&g, &owned(&values), score, seed, None, &[layer], ReluRule::Plain).unwrap();
    let got = &grads[&g.input];
    let f = |x: &T64| reference_forward::<f64>(&g, x).unwrap()[score].clone().unwrap();
    let mut r = TensorOf::filled(g.shape(score), 0.0f64).unwrap();
    r.data[class] = 1.0;
    assert_close("small inception d score / d input", &got.data, &numeric(&x, &r, &f));
    // The walk can stop at a layer: its gradient is the same as from the full walk.
    let mut seed = TensorOf::filled(g.shape(score), 0.0f64).unwrap();
    seed.data[class] = 1.0;
    let partial = backward(&g, &owned(&values), score, seed, Some(layer), &[], ReluRule::Plain).unwrap();
    assert_eq!(partial[&layer].data, grads[&layer].data);
    assert!(!partial.contains_key(&g.input), "stopped at the layer");
    // Spent gradients are dropped as the walk goes: only what was asked for is left.
    assert_eq!(partial.len(), 1);
    assert_eq!(grads.len(), 2, "the input's and the layer's");
}

/// The most gradient memory a walk holds, by hand for VGG16: going back through conv1_2 holds
/// its output's gradient and conv1_1's, 64x224x224 floats each; Grad-CAM stops at conv5_3,
/// where conv5_3's 512x14x14 and pool5's 512x7x7 are the largest pair after fc6's inputs.
#[test]
fn peak_gradient_memory_by_hand() {
    use convlens_core::archs::{vgg16, Weights};
    use convlens_core::grad::{explain, peak_gradient_bytes};
    let g = vgg16(Weights::None).unwrap();
    let score = explain::score_value(&g).unwrap();
    assert_eq!(peak_gradient_bytes(&g, score, None), 2 * 64 * 224 * 224 * 4);
    let conv5_3 = explain::default_layer(&g).unwrap();
    assert_eq!(g.value(conv5_3).name, "conv5_3");
    assert_eq!(peak_gradient_bytes(&g, score, Some(conv5_3)), (512 * 14 * 14 + 512 * 7 * 7) * 4);
}

/// SqueezeNet and the zoo GoogLeNet graph: the f32 backward on the scalar reference engine's
/// activations against the f64 reference (GRAD_F64_VS_F32_TOL), and every CPU engine's f32
/// gradients against that f32 oracle (GRAD_F32_TOL), at the input and at Grad-CAM's layer.
#[test]
fn whole_networks_in_f32_on_every_cpu_engine_match_the_reference() {
    use convlens_core::exec::{self, CpuKind, Keep};
    use convlens_testkit::{import, shared_models, GRAD_F64_VS_F32_TOL};
    // Relative L2 error: a unit on the other side of a kink moves a few input pixels' gradient,
    // not the whole map; a wrong index or routing moves all of it (error ~1).
    let err = |a: &[f32], b: &[f32]| {
        let diff: f64 = a.iter().zip(b).map(|(p, q)| ((p - q) as f64).powi(2)).sum();
        let norm: f64 = b.iter().map(|q| (*q as f64).powi(2)).sum();
        (diff / norm.max(f64::MIN_POSITIVE)).sqrt() as f32
    };
    for file in ["squeezenet1.1.onnx", "googlenet-synthetic.onnx"] {
        let g = import(&shared_models().join(file));
        let side = g.image_side().unwrap();
        let mut rng = StdRng::seed_from_u64(23);
        let x32 = random(&[1, 3, side, side], &mut rng).map(|v| v as f32);
        let score = convlens_core::grad::explain::score_value(&g).unwrap();
        let layer = convlens_core::grad::explain::default_layer(&g).unwrap();
        let values = reference_forward::<f64>(&g, &x32.map(|v| v as f64)).unwrap();
        let mut seed = TensorOf::filled(g.shape(score), 0.0f64).unwrap();
        seed.data[281] = 1.0;
        let f64_grads = backward(&g, &owned(&values), score, seed, None, &[layer], ReluRule::Plain).unwrap();
        let mut oracle = None;
        for kind in [CpuKind::Reference, CpuKind::Gemm, CpuKind::Simd] {
            let mut be = exec::cpu_backend(kind, &g).unwrap();
            let out = exec::run(&g, be.as_mut(), &x32, &Keep::All, &mut |_, _| {}).unwrap();
            let kept = |v: usize| out.get(v);
            let get = convlens_core::grad::explain::f32_source(&g, &x32, &kept);
            let mut seed = convlens_core::Tensor::zeros(g.shape(score)).unwrap();
            seed.data[281] = 1.0;
            let got = backward(&g, &get, score, seed, None, &[layer], ReluRule::Plain).unwrap();
            for v in [g.input, layer] {
                let name = &g.value(v).name;
                match &oracle {
                    None => {
                        let want: Vec<f32> = f64_grads[&v].data.iter().map(|&w| w as f32).collect();
                        let e = err(&got[&v].data, &want);
                        if std::env::var_os("CONVLENS_PRINT_ERRORS").is_some() {
                            eprintln!("{file} f32 reference vs f64: d score / d {name}: {e:e}");
                        }
                        assert!(e <= GRAD_F64_VS_F32_TOL, "{file}: the f32 reference's d score / d {name} is {e:e} from f64");
                    }
                    Some(o) => {
                        let o: &std::collections::HashMap<usize, convlens_core::Tensor> = o;
                        let e = err(&got[&v].data, &o[&v].data);
                        if std::env::var_os("CONVLENS_PRINT_ERRORS").is_some() {
                            eprintln!("{file} on {kind:?}: d score / d {name}: {e:e}");
                        }
                        assert!(e <= GRAD_F32_TOL, "{file} on {kind:?}: d score / d {name} off the reference by {e:e}");
                    }
                }
            }
            if oracle.is_none() {
                oracle = Some(got);
            }
        }
    }
}

/// The f32 conv backward on the packed GEMM (what runs) against the scalar reference backward:
/// groups, strides, dilation, asymmetric pads, 1x1, and outputs taller than one band.
#[test]
fn fast_conv_backward_matches_the_reference() {
    use convlens_testkit::FAST_VS_REFERENCE_TOL;
    let mut rng = StdRng::seed_from_u64(29);
    let cases: [(&[usize], [usize; 4], usize, Window); 5] = [
        (&[1, 4, 9, 8], [6, 2, 3, 3], 2, win([3, 3], [2, 1], [1, 0, 2, 1], [1, 2])),
        (&[1, 16, 12, 12], [8, 16, 1, 1], 1, win([1, 1], [1, 1], [0; 4], [1, 1])),
        (&[1, 3, 31, 30], [5, 3, 5, 5], 1, win([5, 5], [1, 1], [2; 4], [1, 1])),
        (&[1, 8, 10, 10], [8, 1, 3, 3], 8, win([3, 3], [1, 1], [1; 4], [1, 1])),
        (&[1, 64, 300, 40], [64, 64, 3, 3], 1, win([3, 3], [1, 1], [1; 4], [1, 1])),
    ];
    for (xs, ws, group, wn) in cases {
        let w = random(&ws, &mut rng).map(|v| v as f32);
        let x = TensorOf::filled(xs, 0.0f32).unwrap();
        let y = fwd::conv(&x, &w, None, &wn, group, false).unwrap();
        let dy = random(&y.shape, &mut rng).map(|v| v as f32);
        let want = ops::conv(&dy, &w, xs, &wn, group).unwrap();
        let got = convlens_core::grad::fast::conv_input(&dy, &w, xs, &wn, group).unwrap();
        let err = convlens_core::tensor::rel_error(&got.data, &want.data);
        assert!(err <= FAST_VS_REFERENCE_TOL, "{xs:?} * {ws:?} (groups {group}): fast backward off by {err:e}");
    }
}
