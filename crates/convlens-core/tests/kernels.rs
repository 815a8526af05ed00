//! The fast CPU kernels against the scalar reference on shapes chosen to hit every edge:
//! panel remainders (M % 6, N % 16), K across several KC blocks, padding, strides, dilation,
//! groups; plus pooling and LRN values worked out by hand.

mod common;

use common::{FAST_VS_REFERENCE_TOL, WINOGRAD_TOL};
use convlens_core::graph::Window;
use convlens_core::kernels::conv::PreparedConv;
use convlens_core::kernels::fc::PreparedFc;
use convlens_core::prep::fc_weights_from;
use convlens_core::kernels::reference;
use convlens_core::kernels::winograd::{self, WinogradConv};
use convlens_core::kernels::simd::{dot, dot_portable, micro_kernel, micro_kernel_portable, micro_kernel_store, micro_kernel_store_rows, Store, MR, NR};
#[cfg(target_arch = "x86_64")]
use convlens_core::kernels::simd::{micro_kernel_store_cols, micro_kernel_store_rows_avx2, micro_kernel_store_rows_wide, wide_tiles};
use convlens_core::tensor::rel_error;
use convlens_core::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

fn random(shape: &[usize], rng: &mut StdRng) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()).unwrap()
}

fn win(k: [usize; 2], s: [usize; 2], p: [usize; 4], d: [usize; 2]) -> Window {
    Window { kernel: k, strides: s, pads: p, dilations: d }
}

#[test]
fn conv_fast_path_matches_reference() {
    let mut rng = StdRng::seed_from_u64(11);
    // (c, h, w, m, kernel, strides, pads, dilations, group)
    let cases = [
        (3, 23, 19, 7, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1),
        (16, 14, 14, 13, [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 1), // pointwise path
        (5, 17, 11, 6, [5, 3], [2, 1], [2, 0, 1, 1], [1, 1], 1),
        (8, 12, 12, 8, [3, 3], [1, 1], [2, 2, 2, 2], [2, 2], 2),
        (6, 9, 9, 6, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 6), // depthwise
        (300, 6, 5, 20, [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 1), // K over one KC block
        (64, 9, 9, 17, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1),  // K = 576, three KC blocks
        (3, 40, 40, 11, [7, 7], [2, 2], [3, 3, 3, 3], [1, 1], 1),
        // Pointwise with only full tiles (N = 64, M = 12) and K over two KC blocks: B read in
        // place, every tile stored straight into C, the second block added to the first.
        (300, 8, 8, 12, [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 1),
        (32, 4, 8, 6, [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 1),
        // Output rows of 16 or more, so panels both inside one output row and across two:
        // strides 2 and 3, odd and asymmetric pads, dilation, two KC blocks, groups.
        (4, 10, 40, 9, [3, 3], [2, 2], [0, 1, 1, 0], [1, 1], 1),
        (3, 12, 53, 5, [5, 5], [3, 3], [2, 2, 2, 2], [1, 1], 1),
        (2, 10, 40, 6, [3, 3], [1, 2], [2, 3, 2, 3], [2, 3], 1),
        (40, 6, 34, 8, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1),
        (4, 5, 20, 4, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 2),
        // Unpadded, gathered from the input itself (no padded copy): SqueezeNet's conv0 shape
        // (3x3/2, output rows of 35, the last panels' stride-2 loads near the input's end),
        // stride 1, and two groups.
        (3, 33, 71, 10, [3, 3], [2, 2], [0, 0, 0, 0], [1, 1], 1),
        (5, 9, 20, 7, [3, 3], [1, 1], [0, 0, 0, 0], [1, 1], 1),
        (4, 8, 24, 6, [3, 3], [2, 2], [0, 0, 0, 0], [1, 1], 2),
        // SqueezeNet's conv25 in small: 13x13 = 11 panels, ending in a triple whose last
        // panel is 9 wide where AVX-512 runs; 4 row panels, the last of 2 rows.
        (40, 13, 13, 20, [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 1),
    ];
    for (i, &(c, h, w, m, k, s, p, d, g)) in cases.iter().enumerate() {
        let x = random(&[1, c, h, w], &mut rng);
        let wt = random(&[m, c / g, k[0], k[1]], &mut rng);
        let b = random(&[m], &mut rng);
        let window = win(k, s, p, d);
        for relu in [false, true] {
            let want = reference::conv(&x, &wt, Some(&b), &window, g, relu).unwrap();
            let got = PreparedConv::new(&wt, Some(&b), &window, g, relu).unwrap().run(&x, &mut Vec::new()).unwrap();
            assert_eq!(got.shape, want.shape, "case {i}");
            let err = rel_error(&got.data, &want.data);
            assert!(err <= FAST_VS_REFERENCE_TOL, "case {i} relu={relu}: {err:e}");
        }
    }
}

#[test]
fn winograd_matches_reference() {
    let mut rng = StdRng::seed_from_u64(21);
    // (c, h, w, m, pads): odd sizes leave half tiles at the edges; asymmetric and zero pads;
    // rows of 35 and 36 tiles, so the output transform's sixteen-lane runs (AVX-512) and the
    // four-lane ones after them both write whole tiles; odd heights, whose last tile row is
    // cropped to one row (written by the vectors too); SqueezeNet's 13x13; 15 channels, one
    // under the engine's threshold.
    for (c, h, w, m, pads) in [(16, 7, 9, 16, [1, 1, 1, 1]), (33, 14, 13, 20, [0, 0, 0, 0]), (64, 28, 28, 70, [1, 1, 1, 1]), (24, 5, 6, 17, [2, 0, 1, 2]), (20, 6, 71, 18, [1, 1, 1, 1]), (17, 4, 72, 16, [1, 1, 1, 1]), (16, 5, 71, 16, [1, 1, 1, 1]), (18, 13, 13, 19, [1, 1, 1, 1]), (15, 6, 7, 16, [1, 1, 1, 1])] {
        let x = random(&[1, c, h, w], &mut rng);
        let wt = random(&[m, c, 3, 3], &mut rng);
        let b = random(&[m], &mut rng);
        let window = win([3, 3], [1, 1], pads, [1, 1]);
        // The kernel is right for any channel count; the engine takes it from 16 (`applies`),
        // spelled out here, not read from the module.
        assert_eq!(winograd::applies(&window, 1, c, m), c >= 16);
        for relu in [false, true] {
            let want = reference::conv(&x, &wt, Some(&b), &window, 1, relu).unwrap();
            let got = WinogradConv::new(&wt, Some(&b), &window, relu).unwrap().run(&x, &mut Vec::new()).unwrap();
            assert_eq!(got.shape, want.shape);
            let err = rel_error(&got.data, &want.data);
            assert!(err <= WINOGRAD_TOL, "c={c} {h}x{w} m={m}: {err:e}");
        }
    }
}

#[test]
fn fully_connected_matches_reference_gemm() {
    let mut rng = StdRng::seed_from_u64(5);
    for (k, n, trans_b) in [(25, 7, true), (1000, 33, false), (4099, 10, true)] {
        let x = random(&[1, k], &mut rng);
        let w = Arc::new(random(&if trans_b { [n, k] } else { [k, n] }, &mut rng));
        let c = random(&[n], &mut rng);
        let want = reference::gemm(&x, &w, Some(&c), 0.7, 1.3, false, trans_b, true).unwrap();
        let got = PreparedFc::new(fc_weights_from(&w, trans_b, Some(&c), 0.7, 1.3, true).unwrap()).run(&x).unwrap();
        assert!(rel_error(&got.data, &want.data) <= FAST_VS_REFERENCE_TOL);
    }
}

#[test]
fn simd_inner_loops_match_portable_code() {
    let mut rng = StdRng::seed_from_u64(9);
    let kc = 37;
    let a: Vec<f32> = (0..kc * MR).map(|_| rng.random_range(-1.0..1.0)).collect();
    let b: Vec<f32> = (0..kc * NR).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (mut fast, mut slow) = ([0.0; MR * NR], [0.0; MR * NR]);
    micro_kernel(kc, &a, &b, &mut fast);
    micro_kernel_portable(kc, &a, &b, &mut slow);
    // Each entry by hand, as a third opinion.
    for i in 0..MR {
        for j in 0..NR {
            let want: f32 = (0..kc).map(|k| a[k * MR + i] * b[k * NR + j]).sum();
            assert!((fast[i * NR + j] - want).abs() < 1e-4 && (slow[i * NR + j] - want).abs() < 1e-4);
        }
    }
    // Stored straight into a strided C, B read at a stride other than NR: bias then ReLU on a
    // first block, and C plus the sums on a later one.
    let (ldb, ldc) = (NR + 5, NR + 3);
    let bs: Vec<f32> = (0..kc * ldb).map(|_| rng.random_range(-1.0..1.0)).collect();
    let bias: [f32; MR] = std::array::from_fn(|i| i as f32 * 0.25 - 0.5);
    let before: Vec<f32> = (0..MR * ldc).map(|_| rng.random_range(-1.0..1.0)).collect();
    // Every row count: a layer's last row panel stores only its real rows.
    for (rows, accumulate, relu) in (1..=MR).flat_map(|r| [(r, false, false), (r, false, true), (r, true, false), (r, true, true)]) {
        let mut c = before.clone();
        let st = Store { bias, accumulate, relu };
        // SAFETY: a holds kc*MR, bs kc rows of ldb >= NR, c MR rows of ldc >= NR.
        unsafe {
            if rows == MR {
                micro_kernel_store(kc, a.as_ptr(), bs.as_ptr(), ldb, c.as_mut_ptr(), ldc, st)
            } else {
                micro_kernel_store_rows(rows, kc, a.as_ptr(), bs.as_ptr(), ldb, c.as_mut_ptr(), ldc, st)
            }
        };
        for i in 0..MR {
            for j in 0..ldc {
                let got = c[i * ldc + j];
                if j >= NR || i >= rows {
                    assert_eq!(got, before[i * ldc + j], "outside the tile ({rows} rows)");
                    continue;
                }
                let sum: f32 = (0..kc).map(|k| a[k * MR + i] * bs[k * ldb + j]).sum();
                let v = if accumulate { before[i * ldc + j] + sum } else { sum + bias[i] };
                let want = if relu { v.max(0.0) } else { v };
                assert!((got - want).abs() < 1e-4, "accumulate={accumulate} relu={relu} ({i},{j}): {got} vs {want}");
            }
        }
    }
    for n in [0, 1, 7, 8, 33, 1001] {
        let x: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let want: f64 = x.iter().zip(&y).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
        assert!((dot(&x, &y) as f64 - want).abs() < 1e-3);
        assert!((dot_portable(&x, &y) as f64 - want).abs() < 1e-3);
    }
}

/// The AVX-512 tiles against the AVX2 kernel: two and three panels wide, bit for bit the AVX2
/// kernel run on each panel, for every row count and store rule, each panel read at its own
/// stride (in place in a wider matrix, or packed); one panel, every width from 1 to NR
/// columns, bit for bit its columns and C's others untouched. Where the CPU has no AVX-512
/// there is nothing to run.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_tiles_equal_the_avx2_kernel() {
    if !wide_tiles() {
        eprintln!("skipped: no AVX-512 here ({})", convlens_core::kernels::simd::simd_label());
        return;
    }
    let mut rng = StdRng::seed_from_u64(12);
    for kc in [1, 2, 37, 256] {
        let a: Vec<f32> = (0..kc * MR).map(|_| rng.random_range(-1.0..1.0)).collect();
        let ld = [3 * NR + 7, NR, 2 * NR + 1];
        let bs: Vec<Vec<f32>> = ld.iter().map(|l| (0..kc * l).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
        let (b0, ld0) = (&bs[0], ld[0]);
        let ldc = 3 * NR + 5;
        let before: Vec<f32> = (0..MR * ldc).map(|_| rng.random_range(-1.0..1.0)).collect();
        let bias: [f32; MR] = std::array::from_fn(|i| i as f32 * 0.5 - 1.0);
        for (rows, accumulate, relu) in (1..=MR).flat_map(|r| [(r, false, false), (r, false, true), (r, true, false), (r, true, true)]) {
            let st = Store { bias, accumulate, relu };
            // The last panel whole, or narrower: only its first columns stored, C's others
            // untouched.
            let mut wide = Vec::new();
            for (panels, cols_last) in [2, 3].into_iter().flat_map(|p| [1, 5, NR - 1, NR].map(|c| (p, c))) {
                let (mut wide_c, mut each) = (before.clone(), before.clone());
                let b: [*const f32; 3] = std::array::from_fn(|h| bs[h].as_ptr());
                // SAFETY: a holds kc*MR; each b[h] kc rows of ld[h] >= NR; C MR rows of ldc >= 3*NR.
                unsafe {
                    match panels {
                        2 => micro_kernel_store_rows_wide::<2>(rows, kc, a.as_ptr(), [b[0], b[1]], [ld[0], ld[1]], cols_last, wide_c.as_mut_ptr(), ldc, st),
                        _ => micro_kernel_store_rows_wide::<3>(rows, kc, a.as_ptr(), b, ld, cols_last, wide_c.as_mut_ptr(), ldc, st),
                    }
                    for h in 0..panels {
                        micro_kernel_store_rows_avx2(rows, kc, a.as_ptr(), b[h], ld[h], each.as_mut_ptr().add(h * NR), ldc, st);
                    }
                }
                for (i, (w, t)) in wide_c.iter().zip(&each).enumerate() {
                    let want = if i % ldc < (panels - 1) * NR + cols_last { t } else { &before[i] };
                    assert_eq!(w.to_bits(), want.to_bits(), "{panels} panels, the last {cols_last} wide, kc {kc}, {rows} rows, accumulate={accumulate} relu={relu}: C[{}][{}]", i / ldc, i % ldc);
                }
                // The last, three whole panels, is checked by hand below too.
                wide = wide_c;
            }
            for cols in 1..=NR {
                let (mut narrow, mut full) = (before.clone(), before.clone());
                // SAFETY: as above, C's tile `rows` x `cols` (and x NR for the AVX2 call).
                unsafe {
                    micro_kernel_store_cols(rows, cols, kc, a.as_ptr(), b0.as_ptr(), ld0, narrow.as_mut_ptr(), ldc, st);
                    micro_kernel_store_rows_avx2(rows, kc, a.as_ptr(), b0.as_ptr(), ld0, full.as_mut_ptr(), ldc, st);
                }
                for (i, (n, f)) in narrow.iter().zip(&full).enumerate() {
                    let want = if i % ldc < cols { f } else { &before[i] };
                    assert_eq!(n.to_bits(), want.to_bits(), "{cols} columns, kc {kc}, {rows} rows, accumulate={accumulate} relu={relu}: C[{}][{}]", i / ldc, i % ldc);
                }
            }
            // And against sums by hand, so both cannot be wrong together.
            for i in 0..rows {
                for j in 0..3 * NR {
                    let sum: f32 = (0..kc).map(|k| a[k * MR + i] * bs[j / NR][k * ld[j / NR] + j % NR]).sum();
                    let v = if accumulate { before[i * ldc + j] + sum } else { sum + bias[i] };
                    let want = if relu { v.max(0.0) } else { v };
                    assert!((wide[i * ldc + j] - want).abs() < 1e-3, "({i},{j}): {} vs {want}", wide[i * ldc + j]);
                }
            }
        }
    }
}

#[test]
fn fast_max_pool_and_lrn_match_reference() {
    let mut rng = StdRng::seed_from_u64(3);
    // Widths around the four-lane row kernels' tails (under four outputs, a multiple of four,
    // one past), the zoo's own (SqueezeNet's 111, 55, 27; GoogLeNet's 112, 28), and windows
    // with three rows, two, one (a 1-row kernel) and four.
    for (h, w) in [(13, 11), (5, 3), (6, 8), (7, 9), (9, 17), (2, 1), (11, 111), (8, 112), (4, 55), (5, 27), (28, 28)] {
        let x = random(&[1, 3, h, w], &mut rng);
        for (k, s, p, d, ceil) in [
            ([3, 3], [2, 2], [0, 0, 0, 0], [1, 1], true),
            ([3, 3], [2, 2], [0, 0, 0, 0], [1, 1], false),
            ([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false),
            ([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false),
            ([2, 2], [2, 2], [0, 0, 0, 0], [1, 1], false),
            ([2, 3], [2, 1], [1, 0, 0, 2], [1, 2], true),
            ([1, 3], [1, 2], [0, 1, 0, 1], [1, 1], false),
            ([4, 2], [1, 2], [1, 0, 2, 0], [1, 1], true),
        ] {
            let w = win(k, s, p, d);
            if w.out_dim(0, h, ceil).is_err() || w.out_dim(1, x.shape[3], ceil).is_err() {
                continue;
            }
            let want = reference::max_pool(&x, &w, ceil).unwrap();
            let got = convlens_core::kernels::pool::max_pool(&x, &w, ceil).unwrap();
            assert_eq!(got, want, "max pool {k:?} {s:?} {p:?} ceil={ceil} on {h}x{}", x.shape[3]);
        }
    }
    // Many channels, so the running sum of squares slides a long way; and planes of 28x28 in
    // two images, so the loops run whole 16- and 8-lane vectors (where the CPU has them) and a
    // tail, in blocks of pixels.
    for shape in [[1, 300, 5, 4], [2, 24, 28, 28]] {
        let x = random(&shape, &mut rng);
        for (size, beta) in [(5, 0.75), (4, 0.6), (1, 0.75)] {
            let want = reference::lrn(&x, size, 1e-2, beta, 1.0).unwrap();
            let got = convlens_core::kernels::pool::lrn(&x, size, 1e-2, beta, 1.0).unwrap();
            let err = rel_error(&got.data, &want.data);
            assert!(err <= FAST_VS_REFERENCE_TOL, "lrn size {size} on {shape:?}: {err:e}");
        }
    }
}

#[test]
fn plane_means_match_reference_average_pools() {
    use convlens_core::kernels::pool::plane_means;
    let mut rng = StdRng::seed_from_u64(5);
    // SqueezeNet's last pool (1000 planes of 13x13), GoogLeNet's (7x7), odd sizes, one pixel.
    for (c, h, w) in [(1000, 13, 13), (64, 7, 7), (5, 3, 11), (3, 1, 1)] {
        let x = random(&[2, c, h, w], &mut rng);
        let global = reference::global_average_pool(&x).unwrap();
        let whole = reference::average_pool(&x, &win([h, w], [1, 1], [0; 4], [1, 1]), false, false).unwrap();
        let got = plane_means(&x, None).unwrap().unwrap();
        assert_eq!(got.shape, global.shape);
        assert!(rel_error(&got.data, &global.data) <= FAST_VS_REFERENCE_TOL, "{c}x{h}x{w}");
        let got = plane_means(&x, Some(&win([h, w], [2, 2], [0; 4], [1, 1]))).unwrap().unwrap();
        assert!(rel_error(&got.data, &whole.data) <= FAST_VS_REFERENCE_TOL, "{c}x{h}x{w} as AveragePool");
    }
    // A window that is not the whole map, or one with pads, is left to the reference.
    let x = random(&[1, 2, 6, 6], &mut rng);
    assert!(plane_means(&x, Some(&win([3, 3], [3, 3], [0; 4], [1, 1]))).unwrap().is_none());
    assert!(plane_means(&x, Some(&win([6, 6], [1, 1], [1, 1, 1, 1], [1, 1]))).unwrap().is_none());
    // Empty planes: an error, not a panic.
    let empty = Tensor::new(vec![1, 2, 0, 3], Vec::new()).unwrap();
    assert!(plane_means(&empty, None).unwrap_err().to_string().contains("empty"));
}

#[test]
fn four_lane_vectors_match_scalar_arithmetic() {
    use convlens_core::kernels::simd::{fmax, F4};
    let (a, b) = ([1.5f32, -2.0, -0.0, 3.25], [0.5f32, 7.0, -1.0, f32::MIN_POSITIVE]);
    let (va, vb) = (F4::from_array(a), F4::from_array(b));
    assert_eq!(va.add(vb).to_array(), std::array::from_fn(|i| a[i] + b[i]));
    assert_eq!(va.sub(vb).to_array(), std::array::from_fn(|i| a[i] - b[i]));
    // ReLU as `fmax(v, 0)`: -0 becomes +0, bit for bit.
    let relu = va.relu().to_array();
    for i in 0..4 {
        assert_eq!(relu[i].to_bits(), fmax(a[i], 0.0).to_bits(), "lane {i}");
    }
    // max as `fmax`, bit for bit: (-0, -1) and ties keep the scalar select's pick.
    let max = va.max(vb).to_array();
    for i in 0..4 {
        assert_eq!(max[i].to_bits(), fmax(a[i], b[i]).to_bits(), "max lane {i}");
    }
    let (z, pz) = (F4::from_array([-0.0; 4]), F4::from_array([0.0; 4]));
    assert_eq!(z.max(pz).to_array().map(f32::to_bits), [fmax(-0.0, 0.0).to_bits(); 4]);
    assert_eq!(pz.max(z).to_array().map(f32::to_bits), [fmax(0.0, -0.0).to_bits(); 4]);
    let (lo, hi) = F4::zip(va, vb);
    assert_eq!(lo.to_array(), [a[0], b[0], a[1], b[1]]);
    assert_eq!(hi.to_array(), [a[2], b[2], a[3], b[3]]);
    assert_eq!(F4::even(va, vb).to_array(), [a[0], a[2], b[0], b[2]]);
    assert_eq!(F4::odd(va, vb).to_array(), [a[1], a[3], b[1], b[3]]);
    assert_eq!(F4::shift1(va, vb).to_array(), [a[1], a[2], a[3], b[0]]);
    assert_eq!(F4::splat(2.5).to_array(), [2.5; 4]);
    for n in 0..=4 {
        let mut o = [f32::NAN; 5];
        unsafe { convlens_core::kernels::simd::Lanes::store_first(va, o.as_mut_ptr(), n) };
        assert_eq!(o[..n], a[..n], "store_first({n})");
        assert!(o[n..].iter().all(|v| v.is_nan()), "store_first({n}) wrote past n");
    }
}

/// The wide vectors against the scalar operations, lane by lane, bit for bit: the loops around
/// the GEMM (Winograd's transforms, im2col's packing, max pooling) take the sixteen-lane one
/// (AVX-512) or the eight-lane one (AVX2) where the CPU has it, four lanes elsewhere.
#[cfg(target_arch = "x86_64")]
fn wide_vectors_match_scalar_arithmetic<V: convlens_core::kernels::simd::Lanes, const N: usize>() {
    use convlens_core::kernels::simd::fmax;
    assert_eq!(V::N, N);
    let a: [f32; N] = std::array::from_fn(|i| (i as f32 - 7.5) * 0.75);
    let mut b: [f32; N] = std::array::from_fn(|i| (11.0 - i as f32) * 0.5);
    b[3] = -0.0;
    let (va, vb) = unsafe { (V::load(a.as_ptr()), V::load(b.as_ptr())) };
    let get = |v: V| {
        let mut o = [0.0f32; N];
        unsafe { v.store(o.as_mut_ptr()) };
        o
    };
    let bits = |v: [f32; N]| v.map(f32::to_bits);
    assert_eq!(bits(get(va.add(vb))), bits(std::array::from_fn(|i| a[i] + b[i])));
    assert_eq!(bits(get(va.sub(vb))), bits(std::array::from_fn(|i| a[i] - b[i])));
    assert_eq!(bits(get(va.max(vb))), bits(std::array::from_fn(|i| fmax(a[i], b[i]))));
    assert_eq!(bits(get(vb.max(va))), bits(std::array::from_fn(|i| fmax(b[i], a[i]))));
    assert_eq!(bits(get(vb.relu())), bits(b.map(|v| fmax(v, 0.0))));
    assert_eq!(get(unsafe { V::splat(2.5) }), [2.5; N]);
    let ab: Vec<f32> = a.iter().chain(&b).copied().collect();
    assert_eq!(get(V::even(va, vb)), std::array::from_fn(|i| ab[2 * i]));
    assert_eq!(get(V::odd(va, vb)), std::array::from_fn(|i| ab[2 * i + 1]));
    assert_eq!(get(V::shift1(va, vb)), std::array::from_fn(|i| ab[i + 1]));
    let (lo, hi) = V::zip(va, vb);
    let zipped: Vec<f32> = a.iter().zip(&b).flat_map(|(&x, &y)| [x, y]).collect();
    assert_eq!(get(lo)[..], zipped[..N]);
    assert_eq!(get(hi)[..], zipped[N..]);
    // The first n lanes stored, nothing past them (a masked store).
    for n in 0..=N {
        let mut o = vec![f32::NAN; N + 1];
        unsafe { va.store_first(o.as_mut_ptr(), n) };
        assert_eq!(o[..n], a[..n], "store_first({n})");
        assert!(o[n..].iter().all(|v| v.is_nan()), "store_first({n}) wrote past n");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn sixteen_lane_vectors_match_scalar_arithmetic() {
    if !convlens_core::kernels::simd::has_avx512() {
        eprintln!("no AVX-512 on this CPU: the sixteen-lane vector is not used, nothing to check");
        return;
    }
    wide_vectors_match_scalar_arithmetic::<convlens_core::kernels::simd::F16, 16>();
}

#[cfg(target_arch = "x86_64")]
#[test]
fn eight_lane_vectors_match_scalar_arithmetic() {
    // Checked wherever the CPU has AVX2, with or without AVX-512 (`CONVLENS_NO_AVX512` makes an
    // AVX-512 CPU run the eight-lane kernels).
    if !is_x86_feature_detected!("avx2") {
        eprintln!("no AVX2 on this CPU: the eight-lane vector is not used, nothing to check");
        return;
    }
    wide_vectors_match_scalar_arithmetic::<convlens_core::kernels::simd::F8, 8>();
}

/// 4x4 input 0..15, 3x3 window, stride 2, padding 1 on top and left only: by hand.
#[test]
fn pooling_by_hand() {
    let x = Tensor::new(vec![1, 1, 4, 4], (0..16).map(|v| v as f32).collect()).unwrap();
    let w = win([3, 3], [2, 2], [1, 1, 0, 0], [1, 1]);
    // Windows start at -1 and 1 on each axis: rows {0,1},{1,2,3}; same for columns.
    let max = reference::max_pool(&x, &w, true).unwrap();
    assert_eq!(max.shape, [1, 1, 2, 2]);
    assert_eq!(max.data, [5.0, 7.0, 13.0, 15.0]);
    let excl = reference::average_pool(&x, &w, false, false).unwrap();
    // top-left: mean of {0,1,4,5}; top-right: {1,2,3,5,6,7}; bottom-left {4,5,8,9,12,13}; last 3x3 of 5..15
    assert_eq!(excl.data, [2.5, 4.0, 8.5, 10.0]);
    // Padded cells count: every window covers 9 cells of the padded input.
    let incl = reference::average_pool(&x, &w, false, true).unwrap();
    assert_eq!(incl.data, [10.0 / 9.0, 24.0 / 9.0, 51.0 / 9.0, 90.0 / 9.0]);
    let gap = reference::global_average_pool(&x).unwrap();
    assert_eq!(gap.data, [7.5]);
}

#[test]
fn lrn_by_hand() {
    // Channels 1,2,3 at one pixel; size 3: channel 1 sums squares of channels 0..=1.
    let x = Tensor::new(vec![1, 3, 1, 1], vec![1.0, 2.0, 3.0]).unwrap();
    let y = reference::lrn(&x, 3, 0.3, 0.5, 2.0).unwrap();
    let expect = |v: f32, sq: f32| v / (2.0 + 0.3 / 3.0 * sq).powf(0.5);
    let want = [expect(1.0, 5.0), expect(2.0, 14.0), expect(3.0, 13.0)];
    for (g, w) in y.data.iter().zip(want) {
        assert!((g - w).abs() < 1e-6);
    }
}

#[test]
fn concat_matches_reference_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(17);
    // Two threads, so the large cases split the copy (a one-core runner still runs the tasks).
    convlens_core::par::set_threads(2);
    // (input shapes, axis): small (one task) and large (split into runs that cut pieces).
    let cases: [(&[&[usize]], usize); 5] = [
        (&[&[2, 3, 9, 11], &[2, 5, 9, 11], &[2, 40, 9, 11]], 1),
        (&[&[1, 64, 55, 55], &[1, 64, 55, 55]], 1),
        (&[&[1, 128, 28, 28], &[1, 192, 28, 28], &[1, 96, 28, 28], &[1, 64, 28, 28]], 1),
        (&[&[3, 7, 40, 40], &[2, 7, 40, 40]], 0),
        (&[&[2, 8, 30, 17], &[2, 8, 30, 300]], 3),
    ];
    for (i, (shapes, axis)) in cases.iter().enumerate() {
        let ins: Vec<Tensor> = shapes.iter().map(|s| random(s, &mut rng)).collect();
        let refs: Vec<&Tensor> = ins.iter().collect();
        let want = reference::concat(&refs, *axis).unwrap();
        let got = convlens_core::kernels::concat::concat(&refs, *axis).unwrap();
        assert_eq!(got.shape, want.shape, "case {i}");
        assert!(got.data == want.data, "case {i}: not the reference's bits");
    }
}

/// scripts/test.sh runs these suites as wasm twice, built plain and with relaxed SIMD, and says
/// which build it means in CONVLENS_EXPECT_SIMD (`simd_label`'s words, which the app shows): a
/// build that silently lost its feature flags would otherwise pass while testing the other
/// kernels. Natively, no wasm SIMD.
#[test]
fn built_with_the_simd_the_runner_expects() {
    let have = convlens_core::kernels::simd::simd_label();
    match std::env::var("CONVLENS_EXPECT_SIMD") {
        Ok(want) => assert_eq!(have, want, "CONVLENS_EXPECT_SIMD names the build this run should test"),
        Err(_) => assert!(!cfg!(target_family = "wasm") && !have.starts_with("wasm"), "a wasm run must say which build it tests: {have}"),
    }
}
