//! The `convlens` binary end to end: answers checked against onnxruntime's references and
//! hand-made files; bad input gives one line on stderr, a non-zero exit, never a panic.

use std::path::Path;
use std::process::{Command, Output};

use convlens_testkit::{refs, shared_images as images, shared_models as models};

fn convlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convlens")).args(args).env("CONVLENS_MODELS", models()).env("CONVLENS_OFFLINE", "1").output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails with one clean error line mentioning `needle`.
fn assert_clean_failure(o: &Output, needle: &str) {
    let e = stderr(o);
    assert!(!o.status.success(), "should fail: {e}");
    assert!(!e.contains("panicked"), "panic: {e}");
    assert!(e.lines().any(|l| l.starts_with("error: ") && l.contains(needle)), "wanted '{needle}' in: {e}");
}

fn load_npy(p: &Path) -> (Vec<usize>, Vec<f32>) {
    let t = convlens_testkit::load_npy(p);
    (t.shape, t.data)
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
}

#[test]
fn classify_json_top1_matches_onnxruntime_on_every_photo() {
    for photo in ["chelsea.png", "coffee.png", "motorcycle_left.png", "red_panda.jpg"] {
        let o = convlens(&["classify", "--model", "squeezenet", "--json", "--top", "3", images().join(photo).to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let stem = photo.split('.').next().unwrap();
        let (_, logits) = load_npy(&refs().join(format!("squeezenet1.1/photo_{stem}/squeezenet0_flatten0_reshape0.npy")));
        assert_eq!(v["top"][0]["index"].as_u64().unwrap() as usize, argmax(&logits), "{photo}: {v}");
        assert_eq!(v["top"].as_array().unwrap().len(), 3);
        let p: f64 = v["top"].as_array().unwrap().iter().map(|t| t["prob"].as_f64().unwrap()).sum();
        assert!(p > 0.0 && p <= 1.0001);
        assert!(v["output"].as_str().unwrap().starts_with("logits"));
        assert!(v["label"].is_null() && v["top"][0]["label"].is_string());
    }
}

/// Tolerance of a dumped layer against onnxruntime's, relative to the layer's scale.
const DUMP_TOL: f32 = 1e-4;

/// `run --dump` writes every node output of the file's graph, the Conv outputs that a fused
/// ReLU reads included: exactly the tensors onnxruntime dumps, each equal to its value.
fn dump_matches_onnxruntime(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let case = refs().join("googlenet-synthetic/seeded");
    let model = models().join("googlenet-synthetic.onnx");
    let o = convlens(&["run", model.to_str().unwrap(), "--input", case.join("input.npy").to_str().unwrap(), "--dump", dir.path().to_str().unwrap(), "--backend", backend]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = |d: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".npy") && n != "input.npy").collect()
    };
    let (want, got) = (names(&case), names(dir.path()));
    assert!(want.len() >= 140, "{} reference tensors", want.len());
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(missing.is_empty(), "{backend}: {} of {} tensors not dumped: {missing:?}", missing.len(), want.len());
    for name in &want {
        let ((ws, w), (gs, g)) = (load_npy(&case.join(name)), load_npy(&dir.path().join(name)));
        assert_eq!(ws, gs, "{name}");
        let err = convlens_core::tensor::rel_error(&g, &w);
        assert!(err < DUMP_TOL, "{backend}: {name} differs by {err}");
    }
}

#[test]
fn run_dumps_every_node_and_matches_onnxruntime() {
    dump_matches_onnxruntime("cpu");
}

#[test]
fn run_dumps_every_node_on_webgpu_too() {
    dump_matches_onnxruntime("webgpu");
}

#[test]
fn maps_writes_one_tile_per_channel() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let model = models().join("googlenet-synthetic.onnx");
    let chelsea = images().join("chelsea.png");
    let o = convlens(&["maps", model.to_str().unwrap(), chelsea.to_str().unwrap(), "--layer", "inception_3a/1x1", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::open(&out).unwrap();
    // 64 channels of 27x27 (the zoo's maps), 8x8 grid with 1-px gaps.
    assert_eq!((img.width(), img.height()), (8 * 28 + 1, 8 * 28 + 1));
    let o = convlens(&["maps", model.to_str().unwrap(), chelsea.to_str().unwrap(), "--layer", "no_such_layer", "--out", out.to_str().unwrap()]);
    assert_clean_failure(&o, "no layer named 'no_such_layer'");
}

#[test]
fn inspect_reports_the_seed_figures() {
    let o = convlens(&["inspect", "--json", "vgg16"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["params"], 138_357_544);
    assert_eq!(v["lessons"]["largest_layer"]["layer"], "fc6");
    assert_eq!(v["lessons"]["lecture_inception"]["naive_macs"], 854_196_224u64);
    // What explaining costs: conv1_2's and conv1_1's gradients at once on the way to the input.
    assert_eq!(v["backward"]["gradient_bytes_to_input"], 2 * 64 * 224 * 224 * 4);
    assert_eq!(v["backward"]["gradcam_layer"], "conv5_3");
    let o = convlens(&["inspect", "--json", models().join("googlenet-synthetic.onnx").to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = v["modules"].as_array().unwrap();
    assert_eq!(m.len(), 9);
    assert_eq!(m[0]["name"], "inception_3a");
    assert_eq!(m[0]["branches"][3]["label"], "pool->proj");
}

#[test]
fn untrained_builtin_runs_and_says_so() {
    let o = convlens(&["classify", "--model", "squeezenet", "--untrained", "--json", images().join("coffee.png").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["untrained"], true);
}

#[test]
fn bad_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let chelsea = images().join("chelsea.png");
    let sq = models().join("squeezenet1.1.onnx");
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    // Model files
    let garbage = write("garbage.onnx", b"\xff\xfe this is not protobuf \x00\x01");
    assert_clean_failure(&convlens(&["classify", "--model", &garbage, chelsea.to_str().unwrap()]), "not an ONNX model");
    let real = std::fs::read(&sq).unwrap();
    let cut = write("cut.onnx", &real[..real.len() / 3]);
    assert_clean_failure(&convlens(&["classify", "--model", &cut, chelsea.to_str().unwrap()]), "cut.onnx");
    let empty = write("empty.onnx", b"");
    assert_clean_failure(&convlens(&["inspect", &empty]), "empty");
    assert_clean_failure(&convlens(&["inspect", "alexnet"]), "no built-in architecture 'alexnet'");
    // A built-in model whose file is missing, offline: says where to put it.
    let o = Command::new(env!("CARGO_BIN_EXE_convlens"))
        .args(["classify", "--model", "vgg16", "--offline", "--models-dir", d.to_str().unwrap(), chelsea.to_str().unwrap()])
        .output()
        .unwrap();
    assert_clean_failure(&o, "vgg16-12.onnx is not in");
    // Images
    let sqs = sq.to_str().unwrap();
    let zero = write("zero.png", b"");
    assert_clean_failure(&convlens(&["classify", "--model", sqs, &zero]), "empty (0 bytes)");
    let text = write("notes.png", b"hello, I am text");
    assert_clean_failure(&convlens(&["classify", "--model", sqs, &text]), "not an image");
    let mut png = Vec::new();
    image::RgbImage::new(8, 8).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let trunc = write("trunc.png", &png[..png.len() - 20]);
    assert_clean_failure(&convlens(&["classify", "--model", sqs, &trunc]), "corrupt or truncated");
    let bomb = write("bomb.png", &png_header(40_000, 40_000));
    assert_clean_failure(&convlens(&["classify", "--model", sqs, &bomb]), "40000x40000");
    // Wrong input tensor for `run`
    let bad_npy = d.join("x.npy");
    {
        let mut f = std::fs::File::create(&bad_npy).unwrap();
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<f32>::new().default_dtype().shape(&[1, 3, 10, 10]).writer(&mut f).begin_nd().unwrap();
        w.extend(vec![0.0f32; 300]).unwrap();
        w.finish().unwrap();
    }
    assert_clean_failure(&convlens(&["run", sqs, "--input", bad_npy.to_str().unwrap(), "--dump", d.to_str().unwrap()]), "the model wants [1, 3, 224, 224]");
}

/// A PNG whose header claims `w`x`h` (chunks with correct CRCs) around a few bytes of data:
/// what a decompression bomb looks like before its pixels are inflated.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", b"\x78\x9c\x63\x00\x00"), (b"IEND", b"")] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc32fast::hash(&chunk).to_be_bytes());
    }
    out
}

#[test]
fn webgpu_backend_gives_the_cpu_answer() {
    let photo = images().join("red_panda.jpg");
    let top = |backend: &str| -> serde_json::Value {
        let o = convlens(&["classify", "--model", "squeezenet", "--json", "--backend", backend, photo.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["top"].clone()
    };
    let (gpu, cpu) = (top("webgpu"), top("cpu"));
    for i in 0..5 {
        assert_eq!(gpu[i]["index"], cpu[i]["index"]);
        let (a, b) = (gpu[i]["prob"].as_f64().unwrap(), cpu[i]["prob"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // f16 weights (lavapipe has shader-f16): the same top-3, probabilities within 1e-2.
    let half = top("webgpu-f16");
    for i in 0..3 {
        assert_eq!(half[i]["index"], cpu[i]["index"]);
        let (a, b) = (half[i]["prob"].as_f64().unwrap(), cpu[i]["prob"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-2, "{a} vs {b}");
    }
}

/// `explain` writes the contract's files, and its maps agree with quantities computed here from
/// `run --dump` of the same input: SqueezeNet's class maps come from its last conv, so CAM is
/// ReLU of that conv's channel for the class, and Grad-CAM's weights there are the global
/// pool's 1/169 on that channel alone.
#[test]
fn explain_writes_the_contract_and_agrees_with_the_dump() {
    let dir = std::env::temp_dir().join(format!("convlens-explain-{}", std::process::id()));
    let input = refs().join("squeezenet1.1/seeded/input.npy");
    let dump = dir.join("dump");
    let o = convlens(&["run", "squeezenet", "--input", input.to_str().unwrap(), "--dump", dump.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out_of = |m: &str| dir.join(m);
    let run = |method: &str, extra: &[&str]| -> serde_json::Value {
        let out = out_of(method);
        let mut args = vec!["explain", "squeezenet", "--input", input.to_str().unwrap(), "--method", method, "--out", out.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let o = convlens(&args);
        assert!(o.status.success(), "{method}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for key in ["model", "method", "class", "label", "layer", "score", "deletion_auc", "ms"] {
            assert!(v.get(key).is_some(), "{method}: no {key} in {v}");
        }
        assert!(out.join("overlay.png").exists());
        v
    };
    let (_, logits) = load_npy(&dump.join("squeezenet0_flatten0_reshape0.npy"));
    let top = argmax(&logits);
    let (shape, conv) = load_npy(&dump.join("squeezenet0_relu25_fwd.npy"));
    assert_eq!(shape, [1, 1000, 13, 13]);
    let class_map: Vec<f32> = conv[top * 169..(top + 1) * 169].iter().map(|v| v.max(0.0)).collect();

    let v = run("cam", &[]);
    assert_eq!(v["class"], top);
    assert!((v["score"].as_f64().unwrap() - logits[top] as f64).abs() < 1e-4, "score is the logit");
    let (hs, heat) = load_npy(&out_of("cam").join("heatmap.npy"));
    assert_eq!(hs, [13, 13]);
    assert_eq!(heat, class_map, "CAM = the class's map");

    let v = run("gradcam", &["--class", "281"]);
    assert_eq!(v["layer"], "squeezenet0_relu25_fwd");
    let (ws, w) = load_npy(&out_of("gradcam").join("weights.npy"));
    assert_eq!(ws, [1000]);
    for (k, &wk) in w.iter().enumerate() {
        let want = if k == 281 { 1.0 / 169.0 } else { 0.0 };
        assert!((wk - want).abs() < 1e-7, "Grad-CAM weight {k}: {wk}, want {want}");
    }

    for method in ["saliency", "guided"] {
        run(method, &["--deletion-steps", "5"]);
        let (gs, g) = load_npy(&out_of(method).join("grad.npy"));
        assert_eq!(gs, [1, 3, 224, 224]);
        assert!(g.iter().any(|&v| v != 0.0), "{method}: a gradient reaches the input");
    }
    let (_, plain) = load_npy(&out_of("saliency").join("grad.npy"));
    let (_, guided) = load_npy(&out_of("guided").join("grad.npy"));
    assert_ne!(plain, guided, "guided backprop differs from the plain gradient");

    let v = run("occlusion", &["--patch", "56", "--stride", "56", "--deletion-steps", "0"]);
    assert!(v["deletion_auc"].is_null());
    let (hs, _) = load_npy(&out_of("occlusion").join("heatmap.npy"));
    assert_eq!(hs, [224, 224]);

    // Bad input: one line, exit code 2.
    let photo = images().join("chelsea.png");
    for (args, needle) in [
        (vec!["--method", "gradcam", "--layer", "no_such_tensor"], "no tensor named 'no_such_tensor'"),
        (vec!["--method", "gradcam", "--layer", "squeezenet0_flatten0_reshape0"], "no spatial map"),
        (vec!["--method", "cam", "--class", "1000"], "class 1000 is out of range"),
    ] {
        let mut all = vec!["explain", "squeezenet", photo.to_str().unwrap(), "--out", dir.to_str().unwrap()];
        all.extend(args);
        let o = convlens(&all);
        assert_clean_failure(&o, needle);
        assert_eq!(o.status.code(), Some(2), "{needle}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// On WebGPU the forward pass runs on the device and its activations come back for the
/// backward pass: the gradients equal the CPU engine's (relative L2, GRAD_F32_TOL).
#[test]
fn explain_on_webgpu_gives_the_cpu_gradients() {
    use convlens_testkit::GRAD_F32_TOL;
    let dir = std::env::temp_dir().join(format!("convlens-explain-gpu-{}", std::process::id()));
    let input = refs().join("squeezenet1.1/seeded/input.npy");
    let grad_of = |backend: &str| {
        let out = dir.join(backend);
        let o = convlens(&["explain", "squeezenet", "--input", input.to_str().unwrap(), "--method", "saliency", "--class", "281", "--deletion-steps", "0", "--backend", backend, "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        let on = if backend == "cpu" { "CPU" } else { "GPU" };
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("backward on the {on}")), "{}", String::from_utf8_lossy(&o.stdout));
        load_npy(&out.join("grad.npy")).1
    };
    let (cpu, gpu) = (grad_of("cpu"), grad_of("webgpu"));
    let diff: f64 = cpu.iter().zip(&gpu).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
    let norm: f64 = cpu.iter().map(|a| (*a as f64).powi(2)).sum();
    let err = (diff / norm).sqrt() as f32;
    assert!(err <= GRAD_F32_TOL, "saliency with its backward pass on WebGPU off the CPU's by {err:e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `visualize`: the channel's mean activation climbs with the steps and ends above what any
/// test photo gives it (onnxruntime's dumps of the same layer); input.npy is what `run --input`
/// takes and gives that same activation; a seed gives the same image, another seed another.
#[test]
fn visualize_excites_its_channel_more_than_any_photo() {
    let dir = std::env::temp_dir().join(format!("convlens-visualize-{}", std::process::id()));
    let (layer, channel) = ("squeezenet0_concat3", 10usize);
    let vis = |steps: &str, seed: &str, out: &str| -> serde_json::Value {
        let out = dir.join(out);
        let o = convlens(&["visualize", "squeezenet", "--layer", layer, "--channel", "10", "--steps", steps, "--seed", seed, "--out", out.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(out.join("image.png").exists());
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (short, long) = (vis("12", "1", "a"), vis("36", "1", "b"));
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert_eq!(f(&short, "objective_start"), f(&long, "objective_start"), "same seed, same start");
    assert!(f(&short, "objective_end") > f(&short, "objective_start") && f(&long, "objective_end") > f(&short, "objective_end"), "{short} {long}");
    // The objective sits before the channel's ReLU: in a Fire module's concat, channel 10 is
    // the 1x1 expand's pre-activation.
    let tensor = long["objective_tensor"].as_str().unwrap().to_string();
    let ch = long["objective_channel"].as_u64().unwrap() as usize;
    assert!(tensor.contains("conv") && ch == 10, "the 1x1 expand's pre-activation, not {tensor} channel {ch}");
    for photo in ["chelsea", "coffee", "motorcycle_left", "red_panda"] {
        let (shape, act) = load_npy(&refs().join(format!("squeezenet1.1/photo_{photo}/{tensor}.npy")));
        let plane = shape[2] * shape[3];
        let mean = act[ch * plane..(ch + 1) * plane].iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
        assert!(f(&long, "objective_end") > mean, "{photo} gives channel {channel} {mean}, the visualization {}", f(&long, "objective_end"));
    }
    // The written input, run again: the same activation.
    let dump = dir.join("dump");
    let o = convlens(&["run", "squeezenet", "--input", dir.join("b/input.npy").to_str().unwrap(), "--dump", dump.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (shape, act) = load_npy(&dump.join(format!("{tensor}.npy")));
    let plane = shape[2] * shape[3];
    let mean = act[ch * plane..(ch + 1) * plane].iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
    assert!((mean - f(&long, "objective_end")).abs() <= 1e-4 * mean.abs().max(1.0), "run gives {mean}");
    // At 128 px: the forward pass stops at the layer, which takes any input size.
    let small = dir.join("small");
    let o = convlens(&["visualize", "squeezenet", "--layer", layer, "--channel", "10", "--steps", "8", "--size", "128", "--out", small.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(f(&v, "objective_end") > f(&v, "objective_start"), "{v}");
    assert_eq!(load_npy(&small.join("input.npy")).0, vec![1, 3, 128, 128]);
    assert_eq!(image::open(small.join("image.png")).unwrap().width(), 128);
    // Reproducible: the same seed, the same image; another seed, another.
    vis("12", "1", "c");
    vis("12", "2", "d");
    let read = |d: &str| std::fs::read(dir.join(d).join("input.npy")).unwrap();
    assert_eq!(read("a"), read("c"));
    assert_ne!(read("a"), read("d"));
    // Bad input: one line, exit code 2.
    for (args, needle) in [
        (vec!["--layer", "nope", "--channel", "0"], "no tensor named 'nope'"),
        (vec!["--layer", layer, "--channel", "999"], "channel 999 is out of range"),
        (vec!["--layer", layer, "--channel", "0", "--size", "8"], "at 8 px"),
    ] {
        let mut all = vec!["visualize", "squeezenet", "--steps", "1", "--out", dir.to_str().unwrap()];
        all.extend(args);
        let o = convlens(&all);
        assert_clean_failure(&o, needle);
        assert_eq!(o.status.code(), Some(2), "{needle}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `index`: a folder of photos (the test photos, mirrored and turned, and one corrupt file
/// that is reported and skipped), whole and in three shards that `index-merge` combines into
/// the same bytes; the JSON contract; a non-folder and a non-index are bad input (exit 2).
#[test]
fn index_shards_merge_into_the_index_of_the_whole_folder() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    for (i, photo) in ["chelsea.png", "coffee.png", "motorcycle_left.png", "red_panda.jpg"].iter().enumerate() {
        let img = image::open(images().join(photo)).unwrap();
        img.save(photos.join(photo)).unwrap();
        img.fliph().save(photos.join(format!("sub/{i}_mirrored.png"))).unwrap();
        img.rotate90().to_rgb8().save(photos.join(format!("{i}_turned.jpg"))).unwrap();
    }
    std::fs::write(photos.join("broken.jpg"), b"\xff\xd8\xff not really a jpeg").unwrap();
    let run = |out: &Path, shard: Option<&str>| -> serde_json::Value {
        let mut args = vec!["index", "squeezenet", photos.to_str().unwrap(), "--out", out.to_str().unwrap(), "--top", "4", "--json"];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        let o = convlens(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let whole = dir.path().join("whole.idx");
    let v = run(&whole, None);
    assert_eq!(v["photos"], 12, "{v}");
    assert_eq!(v["skipped"], serde_json::json!(["broken.jpg"]));
    assert_eq!((v["model"].as_str(), v["k"].as_u64()), (Some("squeezenet1.1"), Some(4)));
    assert!(v["layers"].as_u64().unwrap() >= 30 && v["channels"].as_u64().unwrap() > 5000, "{v}");
    let mut in_shards = 0;
    let parts: Vec<String> = (0..3)
        .map(|i| {
            let p = dir.path().join(format!("part{i}.idx"));
            in_shards += run(&p, Some(&format!("{i}/3")))["photos"].as_u64().unwrap();
            p.to_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(in_shards, 12, "every photo in exactly one shard");
    let merged = dir.path().join("merged.idx");
    let mut args = vec!["index-merge"];
    args.extend(parts.iter().rev().map(|s| s.as_str()));
    args.extend(["--out", merged.to_str().unwrap()]);
    let o = convlens(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&merged).unwrap() == std::fs::read(&whole).unwrap(), "the merged shards differ from the whole folder's index");
    // Bad input.
    let o = convlens(&["index", "squeezenet", whole.to_str().unwrap(), "--out", "/tmp/x.idx"]);
    assert_clean_failure(&o, "is not a folder");
    assert_eq!(o.status.code(), Some(2));
    let o = convlens(&["index-merge", images().join("chelsea.png").to_str().unwrap(), "--out", "/tmp/x.idx"]);
    assert_clean_failure(&o, "not a ConvLens index");
    assert_eq!(o.status.code(), Some(2));
    assert_clean_failure(&convlens(&["index", "squeezenet", photos.to_str().unwrap(), "--out", "/tmp/x.idx", "--shard", "3/3"]), "below N");
}

/// Feature visualization with its forward and backward passes on the GPU (lavapipe here):
/// after a short run from the same seed, the GPU's image is the CPU's within
/// `VIS_GPU_VS_CPU_TOL` and excites the channel as much.
#[test]
fn visualize_on_webgpu_agrees_with_the_cpu() {
    /// Relative L2 distance of the two images after 6 steps. Adam's first steps are nearly
    /// sign(gradient), so Fourier components whose gradient is ~0 step +-lr on either engine by
    /// rounding: measured 4.8e-2 (correlation 0.998). A wrong gradient sends the image its own
    /// way from the first step (distance ~1 or more).
    const VIS_GPU_VS_CPU_TOL: f32 = 1e-1;
    let dir = tempfile::tempdir().unwrap();
    let vis = |backend: &str| -> (serde_json::Value, Vec<f32>) {
        let out = dir.path().join(backend);
        let o = convlens(&["visualize", "squeezenet", "--layer", "squeezenet0_concat1", "--channel", "5", "--steps", "6", "--backend", backend, "--out", out.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        (serde_json::from_slice(&o.stdout).unwrap(), load_npy(&out.join("input.npy")).1)
    };
    let ((cpu_json, cpu), (gpu_json, gpu)) = (vis("cpu"), vis("webgpu"));
    let diff: f64 = cpu.iter().zip(&gpu).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
    let norm: f64 = cpu.iter().map(|a| (*a as f64).powi(2)).sum();
    let dist = (diff / norm).sqrt() as f32;
    assert!(dist <= VIS_GPU_VS_CPU_TOL, "the GPU's image is {dist:e} (relative L2) from the CPU's");
    let (a, b) = (cpu_json["objective_end"].as_f64().unwrap(), gpu_json["objective_end"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-2 * a.abs().max(1.0), "objective {a} on the CPU, {b} on the GPU");
    assert!(b > gpu_json["objective_start"].as_f64().unwrap() * 2.0, "{gpu_json}");
}

/// numpy saves a transposed array column-major (`fortran_order: True`); `run --input` reads
/// it as the array it is, not as its bytes in C order. The node test's Transpose gives the
/// expected output from either file.
#[test]
fn run_reads_a_column_major_npy_as_its_array() {
    let case = refs().join("node/test_transpose_default");
    let (shape, data) = load_npy(&case.join("input.npy"));
    let dir = tempfile::tempdir().unwrap();
    // The same array, its bytes column-major: the C-order bytes of the axes reversed.
    let x = convlens_core::Tensor::new(shape.clone(), data).unwrap();
    let perm: Vec<usize> = (0..shape.len()).rev().collect();
    let col_major = convlens_core::kernels::reference::transpose(&x, &perm).unwrap();
    let f_path = dir.path().join("fortran.npy");
    {
        use npyz::WriterBuilder;
        let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut f = std::fs::File::create(&f_path).unwrap();
        let mut w = npyz::WriteOptions::<f32>::new().default_dtype().order(npyz::Order::Fortran).shape(&dims).writer(&mut f).begin_nd().unwrap();
        w.extend(col_major.data.iter().copied()).unwrap();
        w.finish().unwrap();
    }
    let (_, want) = load_npy(&case.join("output_0.npy"));
    for input in [case.join("input.npy"), f_path] {
        let out = dir.path().join("out");
        let o = convlens(&["run", case.join("model.onnx").to_str().unwrap(), "--input", input.to_str().unwrap(), "--dump", out.to_str().unwrap(), "--backend", "ref"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (_, got) = load_npy(&out.join("transposed.npy"));
        assert_eq!(got, want, "{}", input.display());
    }
}
