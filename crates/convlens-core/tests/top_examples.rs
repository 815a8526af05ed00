//! The dataset-examples index against a brute-force ranking of every photo, arrival order and
//! sharding that must not matter, the file round trip, and the files it must refuse.

use convlens_core::archs::{Net, Weights};
use convlens_core::exec::{self, CpuKind, Keep};
use convlens_core::graph::Preprocess;
use convlens_core::top_examples::ExampleIndex;
use convlens_core::{Graph, Tensor};

/// A small conv net: conv+ReLU, a max pool, an Inception-like concat, global pooling.
fn small_net(seed: u64) -> Graph {
    let mut n = Net::new(Weights::Seeded(seed));
    let x = n.b.input("x", vec![1, 3, 16, 16]).unwrap();
    let c1 = n.conv("conv1", x, 6, 3, 1, 1, true).unwrap();
    let p1 = n.max_pool("pool1", c1, 2, 2, 0, false).unwrap();
    let a = n.conv("m/1x1", p1, 4, 1, 1, 0, true).unwrap();
    let b = n.conv("m/3x3", p1, 3, 3, 1, 1, true).unwrap();
    let cat = n.concat("m/output", vec![a, b]).unwrap();
    let gap = n.global_avg_pool("pool5", cat).unwrap();
    n.finish("small net", x, vec![gap], Preprocess::imagenet_rgb())
}

/// `n` seeded photos named out of order, with their "thumbnails" (any bytes: the index carries
/// them as they are).
fn photos(n: usize) -> Vec<(String, Tensor, Vec<u8>)> {
    let mut s = 0x2545f4914f6cdd1du64;
    (0..n)
        .map(|i| {
            let data = (0..3 * 16 * 16)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
                })
                .collect();
            // Names not in arrival order: ties and output order go by name.
            (format!("photo{:03}.jpg", (i * 37) % n), Tensor::new(vec![1, 3, 16, 16], data).unwrap(), vec![i as u8; 1 + i % 5])
        })
        .collect()
}

fn build(graph: &Graph, k: usize, items: &[(String, Tensor, Vec<u8>)]) -> ExampleIndex {
    let mut be = exec::cpu_backend(CpuKind::Simd, graph).unwrap();
    let layers = ExampleIndex::layer_values(graph);
    let mut idx = ExampleIndex::new(graph, k).unwrap();
    for (name, x, thumb) in items {
        let out = exec::run(graph, be.as_mut(), x, &Keep::All, &mut |_, _| {}).unwrap();
        idx.add(name, thumb.clone(), &|i| out.get(layers[i])).unwrap();
    }
    idx
}

#[test]
fn every_channel_ranks_the_photos_a_full_sort_ranks() {
    let graph = small_net(3);
    let items = photos(70); // past the 64 at which the index drops photos no channel ranks
    let k = 4;
    let idx = build(&graph, k, &items);
    // Brute force: every photo's max and first argmax per channel, all sorted.
    let mut be = exec::cpu_backend(CpuKind::Reference, &graph).unwrap();
    let layers = ExampleIndex::layer_values(&graph);
    let outs: Vec<_> = items.iter().map(|(_, x, _)| exec::run(&graph, be.as_mut(), x, &Keep::All, &mut |_, _| {}).unwrap()).collect();
    assert_eq!(idx.layers.len(), layers.len());
    assert!(idx.layers.iter().any(|l| l.name == "m/output") && idx.layers.iter().any(|l| l.name == "pool5"));
    let mut checked = 0;
    for (li, &v) in layers.iter().enumerate() {
        let [_, c, h, w] = graph.shape(v)[..] else { panic!() };
        for ch in 0..c {
            let mut all: Vec<(f32, &str, usize)> = items
                .iter()
                .zip(&outs)
                .map(|((name, _, _), out)| {
                    let plane = &out.get(v).unwrap().data[ch * h * w..(ch + 1) * h * w];
                    let m = plane.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    (m, name.as_str(), plane.iter().position(|&p| p == m).unwrap())
                })
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
            let got = idx.top(li, ch);
            assert_eq!(got.len(), k);
            for (r, ((photo, score, y, x), want)) in got.iter().zip(&all).enumerate() {
                assert_eq!(photo.name, want.1, "{} channel {ch} rank {r}", idx.layers[li].name);
                assert!((score - want.0).abs() <= 1e-4 * want.0.abs().max(1.0), "{score} vs {}", want.0);
                if (1..k).all(|q| all[q].0 != want.0) {
                    assert_eq!(y * w + x, want.2, "where channel {ch} of {} peaks", idx.layers[li].name);
                }
                let thumb = &items.iter().find(|i| i.0 == photo.name).unwrap().2;
                assert_eq!(&photo.thumb, thumb);
            }
            checked += 1;
        }
    }
    assert!(checked >= 6 + 7 + 7);
}

#[test]
fn arrival_order_and_shards_do_not_change_the_file() {
    let graph = small_net(5);
    let items = photos(23);
    let whole = build(&graph, 3, &items).to_bytes();
    let mut reversed = items.clone();
    reversed.reverse();
    assert_eq!(build(&graph, 3, &reversed).to_bytes(), whole, "reversed arrival");
    // Three shards as a batch system would make them, merged in any order.
    let shards: Vec<ExampleIndex> = (0..3).map(|s| build(&graph, 3, &items.iter().skip(s).step_by(3).cloned().collect::<Vec<_>>())).collect();
    let merged = ExampleIndex::merge(vec![shards[2].clone(), shards[0].clone(), shards[1].clone()]).unwrap();
    assert_eq!(merged.to_bytes(), whole, "merged shards");
    // Merging is idempotent on a photo in two parts.
    let twice = ExampleIndex::merge(vec![merged.clone(), shards[1].clone()]).unwrap();
    assert_eq!(twice.to_bytes(), whole, "a shard merged twice");
    let back = ExampleIndex::from_bytes(&whole).unwrap();
    assert_eq!(back.to_bytes(), whole, "round trip");
    assert!(back.photos.len() <= items.len() && !back.photos.is_empty());
}

#[test]
fn bad_files_and_mismatched_merges_are_refused_with_a_reason() {
    let graph = small_net(7);
    let idx = build(&graph, 2, &photos(5));
    let bytes = idx.to_bytes();
    let err = |b: &[u8]| ExampleIndex::from_bytes(b).unwrap_err().to_string();
    assert!(err(b"PNG not an index at all").contains("does not start with CLINDEX"));
    assert!(err(&bytes[..bytes.len() - 1]).contains("truncated"));
    assert!(err(&bytes[..40]).contains("truncated"));
    let mut v2 = bytes.clone();
    v2[8] = 2;
    assert!(err(&v2).contains("version 2"));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(err(&longer).contains("after the last photo"));
    let other = build(&small_net(8), 3, &photos(2));
    assert!(ExampleIndex::merge(vec![idx.clone(), other]).unwrap_err().to_string().contains("cannot merge"));
    let mut clash = build(&graph, 2, &photos(5));
    clash.photos[0].thumb.push(1);
    assert!(ExampleIndex::merge(vec![idx, clash]).unwrap_err().to_string().contains("different photo"));
    assert!(ExampleIndex::new(&graph, 0).is_err());
}
