//! The explorer's feature-map tiles (drawn every live frame) against the scalar reference:
//! colours and per-channel (min, max) bit for bit, the mean within float rounding, and the
//! same answer on any number of threads.

use convlens_core::exec::{cpu_backend, run, CpuKind, Keep};
use convlens_core::onnx;
use convlens_core::par;
use convlens_core::viz::{tiles, tiles_reference, Tiles};
use convlens_core::Tensor;

/// The fast path's mean sums block sums instead of the whole plane left to right.
const TILE_MEAN_TOL: f32 = 1e-5;

fn same(got: &Tiles, want: &Tiles, what: &str) {
    assert_eq!((got.channels, got.tile_h, got.tile_w, got.factor), (want.channels, want.tile_h, want.tile_w, want.factor), "{what}: geometry");
    assert_eq!(got.shared, want.shared, "{what}: shared scale");
    assert_eq!(got.stats.len(), want.stats.len(), "{what}");
    for (c, (g, w)) in got.stats.iter().zip(&want.stats).enumerate() {
        assert_eq!((g[0].to_bits(), g[1].to_bits()), (w[0].to_bits(), w[1].to_bits()), "{what}: channel {c} min/max {g:?} vs {w:?}");
        let scale = w[0].abs().max(w[1].abs()).max(1.0);
        let ok = (g[2] - w[2]).abs() <= TILE_MEAN_TOL * scale || (g[2].is_nan() && w[2].is_nan());
        assert!(ok, "{what}: channel {c} mean {} vs {}", g[2], w[2]);
    }
    assert_eq!(got.rgba.len(), want.rgba.len(), "{what}");
    if let Some(i) = got.rgba.iter().zip(&want.rgba).position(|(a, b)| a != b) {
        panic!("{what}: byte {i} (tile pixel {}) is {} against {}", i / 4, got.rgba[i], want.rgba[i]);
    }
}

/// Deterministic values in about -3..5, with a few exact zeros, negative zeros and repeats.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            match (s >> 33) % 17 {
                0 => 0.0,
                1 => -0.0,
                _ => ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 3.0 + (i % 3) as f32 * 1e-3,
            }
        })
        .collect()
}

#[test]
fn fast_tiles_match_the_reference_on_every_shape() {
    // Odd sides (partial edge blocks), sides under, at and over the tile size, rows shorter
    // than the min/max lanes, one pixel per channel, a rank the explorer draws as one row.
    let shapes: &[&[usize]] = &[&[1, 64, 111, 111], &[1, 3, 7, 5], &[1, 5, 1, 13], &[1, 2, 13, 1], &[1, 1000], &[1, 17, 3, 3], &[1, 4, 56, 56], &[1, 2, 3, 100]];
    for (k, shape) in shapes.iter().enumerate() {
        let data = values(shape.iter().product(), k as u64);
        for max_side in [1, 2, 3, 28, 55, 112, 512] {
            for shared in [false, true] {
                let what = format!("{shape:?} at {max_side}px, shared {shared}");
                same(&tiles(&data, shape, max_side, shared), &tiles_reference(&data, shape, max_side, shared), &what);
            }
        }
    }
}

#[test]
fn nan_and_empty_planes_as_the_reference() {
    // A NaN is passed over by min/max and spreads into its block's mean and colour (darkest).
    let mut data = values(2 * 9 * 9, 9);
    data[5] = f32::NAN;
    data[81..162].fill(f32::NAN); // a whole channel of NaN: the range is (inf, -inf)
    for max_side in [3, 9] {
        for shared in [false, true] {
            same(&tiles(&data, &[1, 2, 9, 9], max_side, shared), &tiles_reference(&data, &[1, 2, 9, 9], max_side, shared), "NaN");
        }
    }
    for shape in [[1, 3, 0, 4], [1, 0, 5, 5], [1, 2, 4, 0]] {
        same(&tiles(&[], &shape, 8, false), &tiles_reference(&[], &shape, 8, false), &format!("empty {shape:?}"));
    }
}

/// Every layer of a real pass at the explorer's live and frozen sizes, on one and on three
/// threads: the same bytes whatever the split.
#[test]
fn real_activations_on_any_thread_count() {
    let models = convlens_testkit::shared_models();
    let g = onnx::import(&std::fs::read(models.join("squeezenet1.1.onnx")).unwrap(), "squeezenet1.1.onnx").unwrap();
    let shape = g.shape(g.input).to_vec();
    let n: usize = shape.iter().product();
    let x = Tensor::new(shape, values(n, 3).iter().map(|v| v * 0.5).collect()).unwrap();
    let mut be = cpu_backend(CpuKind::Simd, &g).unwrap();
    let out = run(&g, be.as_mut(), &x, &Keep::All, &mut |_, _| {}).unwrap();
    for node in &g.nodes {
        let t = &out.values[&node.output];
        for (max_side, shared) in [(55, false), (28, true), (256, false)] {
            let what = format!("{} at {max_side}px", node.name);
            let want = tiles_reference(&t.data, &t.shape, max_side, shared);
            par::set_threads(1);
            let one = tiles(&t.data, &t.shape, max_side, shared);
            same(&one, &want, &what);
            par::set_threads(3);
            let three = tiles(&t.data, &t.shape, max_side, shared);
            assert_eq!(one, three, "{what}: three threads differ from one");
        }
    }
}
