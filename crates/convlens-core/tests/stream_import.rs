//! The streaming importer (what the browser's worker feeds as a download arrives) against the
//! whole-file importer: the same graph, weights equal to the bit, for every model here, in
//! chunks of every kind of size; and a file cut anywhere is refused exactly when the
//! whole-file importer refuses it, never with a panic.

use std::path::PathBuf;

use convlens_core::onnx::{import, import_stream, StreamImport};
use convlens_core::Graph;
use convlens_testkit::{refs, shared_models};
use rand::{Rng, SeedableRng};

fn models() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [shared_models(), shared_models().join("light"), refs()] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "onnx") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 5, "the test models are missing: {out:?}");
    out
}

fn streamed(bytes: &[u8], chunks: impl Fn(usize) -> usize, name: &str) -> convlens_core::Result<Graph> {
    let mut s = StreamImport::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = chunks(at).clamp(1, bytes.len() - at);
        s.push(&bytes[at..at + n])?;
        at += n;
    }
    import_stream(s, name)
}

fn assert_same(a: &Graph, b: &Graph, what: &str) {
    assert_eq!(a.name, b.name, "{what}: name");
    assert_eq!((a.input, &a.outputs), (b.input, &b.outputs), "{what}: input and outputs");
    assert_eq!(format!("{:?}", a.nodes), format!("{:?}", b.nodes), "{what}: nodes");
    assert_eq!(format!("{:?}", a.preprocess), format!("{:?}", b.preprocess), "{what}: preprocessing");
    assert_eq!(a.values.len(), b.values.len(), "{what}: values");
    for (x, y) in a.values.iter().zip(&b.values) {
        assert_eq!((&x.name, &x.shape, x.is_const), (&y.name, &y.shape, y.is_const), "{what}");
        let bits = |v: &convlens_core::graph::Value| v.data.as_ref().map(|t| t.data.iter().map(|f| f.to_bits()).collect::<Vec<_>>());
        assert!(bits(x) == bits(y), "{what}: the weights of {} differ", x.name);
    }
}

#[test]
fn streaming_import_equals_whole_file_import() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for path in models() {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let whole = import(&bytes, &name);
        // A network's chunks (16 KiB to 1 MiB), odd small ones, and the file in one piece.
        let sizes: Vec<usize> = (0..4096).map(|_| rng.random_range(16 << 10..1 << 20)).collect();
        let odd: Vec<usize> = (0..4096).map(|_| rng.random_range(1..4099)).collect();
        let kinds: [(&str, Box<dyn Fn(usize) -> usize>); 3] = [
            ("network chunks", Box::new(|at: usize| sizes[(at / 7) % sizes.len()])),
            ("odd chunks", Box::new(|at: usize| odd[at % odd.len()])),
            ("one piece", Box::new(|_| usize::MAX)),
        ];
        for (kind, chunks) in kinds {
            let got = streamed(&bytes, chunks, &name);
            match (&whole, &got) {
                (Ok(a), Ok(b)) => assert_same(a, b, &format!("{name}, {kind}")),
                (Err(_), Err(_)) => {}
                _ => panic!("{name}, {kind}: whole-file import {:?}, streamed {:?}", whole.as_ref().err(), got.as_ref().err()),
            }
        }
    }
}

#[test]
fn a_file_cut_anywhere_is_refused_as_the_whole_file_importer_refuses_it() {
    let path = shared_models().join("squeezenet1.1.onnx");
    let bytes = std::fs::read(&path).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    // Every cut in the first 4 KiB (headers, nodes), then random cuts through the weights.
    let cuts: Vec<usize> = (0..4096).chain((0..300).map(|_| rng.random_range(0..bytes.len()))).collect();
    for cut in cuts {
        let part = &bytes[..cut];
        let whole = import(part, "cut");
        let got = streamed(part, |at| 1 + (at * 31) % 5000, "cut");
        assert_eq!(whole.is_ok(), got.is_ok(), "cut at {cut}: whole {:?}, streamed {:?}", whole.as_ref().err(), got.as_ref().err());
        if let (Ok(a), Ok(b)) = (&whole, &got) {
            assert_same(a, b, &format!("cut at {cut}"));
        }
    }
    assert!(streamed(&[], |_| 1, "empty").is_err());
}
