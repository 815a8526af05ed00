//! In headless Chromium (wasm-bindgen-test): what crosses the UI/worker boundary. Messages
//! survive the app's codec (`worker_codec`: bincode; this page is not cross-origin isolated, so
//! plain bytes; the shared-memory path runs in every isolated page of the end-to-end test), and the worker's handlers load, run and answer a real
//! (constant-weight) zoo graph through the wasm simd128 core.
#![cfg(target_arch = "wasm32")]

use convlens_app::protocol::{Frame, FromWorker, LayerMaps, LayerTiles, ToWorker};
use convlens_app::worker::handle;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The onnx package's light SqueezeNet 1.0: zoo graph, every weight 0.02 (ConstantOfShape).
const LIGHT_SQUEEZENET: &[u8] = include_bytes!("../../shared/models/light/light_squeezenet.onnx");

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    use gloo::worker::Codec;
    convlens_app::worker_codec::SharedBincode::decode(convlens_app::worker_codec::SharedBincode::encode(v))
}

#[wasm_bindgen_test]
fn messages_survive_the_worker_codec() {
    let frame = Frame { width: 224, height: 224, rgba: (0..224 * 224 * 4).map(|i| (i % 251) as u8).collect() };
    match roundtrip(&ToWorker::Run { id: 7, frame: frame.clone(), squash: true, time_layers: true }) {
        ToWorker::Run { id, frame: back, squash, time_layers } => assert!(id == 7 && back == frame && squash && time_layers),
        other => panic!("{other:?}"),
    }
    // A layer's values travel as bytes: every bit back, the odd ones included.
    let data = vec![0.0, -0.0, 1.5e-45, -3.4e38, f32::MIN_POSITIVE, 1.0 / 3.0];
    let tiles = LayerTiles { tile_h: 1, tile_w: 1, factor: 1, rgba: vec![0; 4 * data.len()], stats: vec![[0.0; 3]; data.len()], shared: None, drawn_on_gpu: false };
    let maps = LayerMaps { layer: 3, ms: 1.0, shape: vec![1, 6, 1, 1], tiles, data: Some(data.clone()) };
    match roundtrip(&FromWorker::Maps(vec![maps.clone(), LayerMaps { data: None, ..maps }])) {
        FromWorker::Maps(m) => {
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(m[0].data.as_ref().unwrap()), bits(&data));
            assert!(m[1].data.is_none());
        }
        other => panic!("{other:?}"),
    }
    match roundtrip(&FromWorker::Error("bad".into())) {
        FromWorker::Error(e) => assert_eq!(e, "bad"),
        other => panic!("{other:?}"),
    }
}

/// A VideoFrame made by `new VideoFrame(source, init)`, as the page makes one from the video.
fn new_video_frame(source: &wasm_bindgen::JsValue, init: &[(&str, wasm_bindgen::JsValue)]) -> convlens_app::video_frame::VideoFrame {
    use wasm_bindgen::JsCast;
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"timestamp".into(), &0.into()).unwrap();
    for (k, v) in init {
        js_sys::Reflect::set(&options, &(*k).into(), v).unwrap();
    }
    let ctor: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"VideoFrame".into()).unwrap().unchecked_into();
    js_sys::Reflect::construct(&ctor, &js_sys::Array::of2(source, &options)).unwrap().unchecked_into()
}

/// A frame whose pixels say where they are, from a canvas: red rises from 0 to 255 across it,
/// green from top to bottom, blue is 77.
fn gradient_video_frame(w: u32, h: u32) -> convlens_app::video_frame::VideoFrame {
    let canvas = convlens_app::imaging::new_canvas(w, h).unwrap();
    let rgba: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| [(255 * x / (w - 1)) as u8, (255 * y / (h - 1)) as u8, 77, 255]))
        .collect();
    convlens_app::imaging::paint_rgba(&canvas, &rgba, w as usize, h as usize).unwrap();
    new_video_frame(&canvas, &[])
}

/// The same kind of frame as a camera gives it, I420: luma rises across it (limited range,
/// 16 to 235: grey 0 to 255), chroma neutral.
fn i420_video_frame(w: u32, h: u32) -> convlens_app::video_frame::VideoFrame {
    let (w, h) = (w as usize, h as usize);
    let mut bytes: Vec<u8> = (0..h).flat_map(|_| (0..w).map(move |x| (16.0 + 219.0 * x as f64 / (w - 1) as f64).round() as u8)).collect();
    bytes.resize(w * h + 2 * (w / 2) * (h / 2), 128);
    let data: wasm_bindgen::JsValue = js_sys::Uint8Array::from(&bytes[..]).into();
    new_video_frame(&data, &[("format", "I420".into()), ("codedWidth", (w as u32).into()), ("codedHeight", (h as u32).into())])
}

/// How far a resize of a smooth ramp may stray from the ramp's value at an output pixel's
/// centre, in 8-bit levels: rounding (twice for YUV), and the filter's reach of a few source pixels.
const CROP_LEVELS: f64 = 3.0;

/// The worst distance, in levels, of `view` (the `side` x `side` cut of a `w` x `h` frame) from
/// `ramp` evaluated where each output pixel's centre falls in the frame (2-pixel border left out).
fn ramp_error(view: &Frame, w: u32, h: u32, fit: convlens_core::preprocess::Fit, ramp: impl Fn(f64, f64) -> [f64; 3]) -> f64 {
    let side = view.width as usize;
    assert_eq!((view.height as usize, view.rgba.len()), (side, side * side * 4));
    let (sx, sy, sw, sh) = convlens_app::imaging::crop_window(w as usize, h as usize, side, fit).unwrap();
    let mut worst: f64 = 0.0;
    for y in 2..side - 2 {
        for x in 2..side - 2 {
            let (fx, fy) = (sx + (x as f64 + 0.5) * sw / side as f64 - 0.5, sy + (y as f64 + 0.5) * sh / side as f64 - 0.5);
            let want = ramp(fx / (w - 1) as f64, fy / (h - 1) as f64);
            let p = &view.rgba[(y * side + x) * 4..][..3];
            for c in 0..3 {
                worst = worst.max((p[c] as f64 - want[c]).abs());
            }
        }
    }
    worst
}

/// A live camera frame crosses by reference: the codec carries it beside the message's bytes
/// through a structured clone (as postMessage does), the receiver claims it by the message's
/// key, and the worker cuts from it exactly the window the core's crop geometry names, from its
/// planes (I420 as cameras give it, RGBA or BGRA from a canvas) or on a canvas, then releases it.
#[wasm_bindgen_test]
async fn camera_frames_cross_by_reference_and_are_cut_where_the_core_says() {
    use convlens_app::{video_frame, worker_codec};
    use convlens_core::preprocess::Fit;
    use gloo::worker::Codec;
    use wasm_bindgen::JsCast;
    video_frame::supported(true).expect("this Chromium has VideoFrame and OffscreenCanvas");
    let (w, h, side) = (640u32, 480u32, 224usize);
    let frame = gradient_video_frame(w, h);
    let key = worker_codec::attach(frame.clone().into());
    let sent = worker_codec::SharedBincode::encode(ToWorker::RunCamera { id: 4, frame: key, squash: false, time_layers: false });
    assert!(worker_codec::take_unsent(key).is_none(), "encoding took the attachment");
    let clone: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"structuredClone".into()).unwrap().unchecked_into();
    let arrived = clone.call1(&wasm_bindgen::JsValue::UNDEFINED, &sent).unwrap();
    frame.close(); // the page's own; the clone holds the buffer
    let msg: ToWorker = worker_codec::SharedBincode::decode(arrived);
    let ToWorker::RunCamera { id: 4, frame: k, .. } = msg else { panic!("{msg:?}") };
    let got: video_frame::VideoFrame = worker_codec::take_received(k).expect("the frame came with its message").unchecked_into();
    assert!(worker_codec::take_received(k).is_none(), "claimed once");
    assert_eq!((got.display_width(), got.display_height()), (w, h));
    let got_handle = got.clone();
    let from_clone = video_frame::view(got, side, Fit::ResizeAndCenterCrop).await.unwrap();
    assert!(js_sys::Reflect::get(&got_handle, &"format".into()).unwrap().is_null(), "the frame is closed once cut");
    // Before a model is loaded (as while a new one replaces the old): skipped, as for pixels,
    // and the frame released.
    let early = i420_video_frame(w, h);
    let handle_early = early.clone();
    let key = worker_codec::attach(early.into());
    let msg: ToWorker = worker_codec::SharedBincode::decode(worker_codec::SharedBincode::encode(ToWorker::RunCamera { id: 5, frame: key, squash: false, time_layers: false }));
    let state = std::rc::Rc::new(std::cell::RefCell::new(convlens_app::worker::State::default()));
    let answer = handle(&state, msg, &mut |_| {}).await;
    assert!(matches!(answer, FromWorker::Skipped { run: Some(5), ref why } if why.contains("no model")), "{answer:?}");
    assert!(js_sys::Reflect::get(&handle_early, &"format".into()).unwrap().is_null(), "released");
    assert!(worker_codec::take_received(key).is_none());
    let rgb_ramp = |fx: f64, fy: f64| [255.0 * fx, 255.0 * fy, 77.0];
    let grey_ramp = |fx: f64, _| [255.0 * fx; 3];
    for fit in [Fit::ResizeAndCenterCrop, Fit::Squash] {
        let cuts = [
            ("planes of the cloned canvas frame", if fit == Fit::Squash { video_frame::view(gradient_video_frame(w, h), side, fit).await.unwrap() } else { from_clone.clone() }, true),
            ("canvas", video_frame::crop(gradient_video_frame(w, h), side, fit).unwrap(), true),
            ("I420 planes", video_frame::view(i420_video_frame(w, h), side, fit).await.unwrap(), false),
        ];
        for (how, view, rgb) in cuts {
            let worst = if rgb { ramp_error(&view, w, h, fit, rgb_ramp) } else { ramp_error(&view, w, h, fit, grey_ramp) };
            assert!(worst <= CROP_LEVELS, "{how}, {fit:?}: {worst} levels from the ramp");
        }
    }
}

#[wasm_bindgen_test]
async fn worker_loads_runs_and_sends_maps() {
    let state = std::rc::Rc::new(std::cell::RefCell::new(convlens_app::worker::State::default()));
    let grey = || Frame { width: 224, height: 224, rgba: vec![128; 224 * 224 * 4] };
    // No model (as while a new one replaces the old): a pass and maps are skipped, not failed,
    // so a live camera keeps going; the run's id comes back (a camera frame's: above).
    let early = handle(&state, ToWorker::Run { id: 9, frame: grey(), squash: false, time_layers: false }, &mut |_| {}).await;
    assert!(matches!(roundtrip(&early), FromWorker::Skipped { run: Some(9), ref why } if why.contains("no model")), "{early:?}");
    let early = handle(&state, ToWorker::Maps { layers: vec![0], max_side: 28, shared: false, values: false }, &mut |_| {}).await;
    assert!(matches!(roundtrip(&early), FromWorker::Skipped { run: None, .. }), "{early:?}");
    let loaded = handle(&state, ToWorker::LoadOnnx { load: 1, name: "light_squeezenet".into(), bytes: LIGHT_SQUEEZENET.to_vec(), backend: convlens_app::protocol::BackendChoice::Cpu, split_relus: false }, &mut |_| {}).await;
    let FromWorker::Loaded(summary) = roundtrip(&loaded) else { panic!("{loaded:?}") };
    assert_eq!(summary.load, 1, "the load's number comes back, so the page can drop a replaced load's answer");
    // With a model, a pass that fails is an error: a frame whose pixels do not match its size.
    let bad = handle(&state, ToWorker::Run { id: 11, frame: Frame { width: 224, height: 224, rgba: vec![0; 12] }, squash: false, time_layers: false }, &mut |_| {}).await;
    assert!(matches!(bad, FromWorker::Error(_)), "{bad:?}");
    assert_eq!(summary.modules.len(), 8, "eight Fire modules");
    assert!(summary.backend.contains("wasm simd128"), "{}", summary.backend);
    let ran = handle(&state, ToWorker::Run { id: 1, frame: Frame { width: 224, height: 224, rgba: vec![128; 224 * 224 * 4] }, squash: false, time_layers: true }, &mut |_| {}).await;
    let FromWorker::Ran(run) = roundtrip(&ran) else { panic!("{ran:?}") };
    assert_eq!(run.id, 1, "the answer names the Run it answers");
    // Every weight 0.02: all 1000 classes tie, so each gets 1/1000.
    for &(_, p) in &run.heads[0].top {
        assert!((p - 1e-3).abs() < 1e-6, "{p}");
    }
    assert_eq!(run.layer_ms.len(), summary.layers.len());
    // A camera frame the worker cut out on arrival: run whole, its cut timed into the
    // preprocessing and sent back to be shown; without its picture, refused (the page then
    // sends pixels).
    {
        // A flat grey camera frame (I420, limited range: luma 126 is grey 128), by reference.
        use gloo::worker::Codec;
        let mut bytes = vec![126u8; 320 * 240];
        bytes.resize(320 * 240 * 3 / 2, 128);
        let data: wasm_bindgen::JsValue = js_sys::Uint8Array::from(&bytes[..]).into();
        let frame = new_video_frame(&data, &[("format", "I420".into()), ("codedWidth", 320.into()), ("codedHeight", 240.into())]);
        let key = convlens_app::worker_codec::attach(frame.into());
        let msg: ToWorker = convlens_app::worker_codec::SharedBincode::decode(convlens_app::worker_codec::SharedBincode::encode(ToWorker::RunCamera { id: 2, frame: key, squash: false, time_layers: false }));
        let ran = handle(&state, msg, &mut |_| {}).await;
        let FromWorker::Ran(cam) = roundtrip(&ran) else { panic!("{ran:?}") };
        let view = cam.camera_crop.as_ref().expect("the view comes back to be shown");
        assert_eq!((cam.id, view.width, view.height), (2, 224, 224));
        assert!(view.rgba.chunks_exact(4).all(|p| p[..3].iter().all(|&c| c.abs_diff(128) <= 1) && p[3] == 255), "flat grey");
        assert!(cam.preprocess_ms > 0.0);
        assert_eq!(cam.heads[0].top, run.heads[0].top, "the same picture as pixels gives the same answer");
    }
    // A camera frame that did not come with its message (a stale key): refused, and the page
    // sends pixels.
    let refused = handle(&state, ToWorker::RunCamera { id: 3, frame: 999, squash: false, time_layers: false }, &mut |_| {}).await;
    assert!(matches!(roundtrip(&refused), FromWorker::FrameRefused { id: 3, ref why } if why.contains("no camera frame")), "{refused:?}");
    let first_conv = summary.layers.iter().position(|l| l.op.starts_with("Conv")).unwrap();
    let maps = handle(&state, ToWorker::Maps { layers: vec![first_conv], max_side: 256, shared: false, values: true }, &mut |_| {}).await;
    let FromWorker::Maps(m) = roundtrip(&maps) else { panic!("{maps:?}") };
    assert_eq!(m[0].shape, summary.layers[first_conv].shape);
    let data = m[0].data.as_ref().expect("values were asked for");
    assert_eq!(data.len(), m[0].shape.iter().product::<usize>());
    // Full-size tiles coloured from those values, one per channel, by the core's reference.
    let want = convlens_core::viz::tiles_reference(data, &m[0].shape, 256, false);
    assert_eq!((m[0].tiles.tile_h, m[0].tiles.tile_w, m[0].tiles.factor), (want.tile_h, want.tile_w, 1));
    assert_eq!(m[0].tiles.rgba, want.rgba);
    // Live mode: tiles at display size, no values.
    let live = handle(&state, ToWorker::Maps { layers: vec![first_conv], max_side: 28, shared: true, values: false }, &mut |_| {}).await;
    let FromWorker::Maps(l) = roundtrip(&live) else { panic!("{live:?}") };
    assert!(l[0].data.is_none() && l[0].tiles.tile_h <= 28 && l[0].tiles.shared.is_some());
    assert_eq!(l[0].tiles.rgba.len(), m[0].shape[1] * l[0].tiles.tile_h * l[0].tiles.tile_w * 4);
    // Explanations on the last pass. Every weight is 0.02 and the picture is uniform, so the
    // class maps are equal everywhere inside: CAM is flat there; an unknown method is a word.
    let ex = handle(&state, ToWorker::Explain { id: 7, head: 0, class: 3, method: "cam".into(), layer: None, deletion_steps: 3 }, &mut |_| {}).await;
    let FromWorker::Explained(e) = roundtrip(&ex) else { panic!("{ex:?}") };
    assert_eq!((e.id, e.error.clone(), e.h * e.w), (7, None, e.heatmap.len()));
    assert_eq!(e.deletion.len(), 4, "the unchanged picture and three deletion steps: {:?} {:?}", e.deletion, e.error);
    assert!(e.layer.is_some() && e.deletion_auc.is_some());
    for method in ["gradcam", "saliency", "guided"] {
        let ex = handle(&state, ToWorker::Explain { id: 8, head: 0, class: 3, method: method.into(), layer: None, deletion_steps: 0 }, &mut |_| {}).await;
        let FromWorker::Explained(e) = roundtrip(&ex) else { panic!("{ex:?}") };
        assert!(e.error.is_none() && !e.heatmap.is_empty(), "{method}: {:?}", e.error);
    }
    let ex = handle(&state, ToWorker::Explain { id: 9, head: 0, class: 3, method: "nonsense".into(), layer: None, deletion_steps: 0 }, &mut |_| {}).await;
    let FromWorker::Explained(e) = roundtrip(&ex) else { panic!("{ex:?}") };
    assert!(e.error.as_deref().is_some_and(|m| m.contains("unknown method")), "{:?}", e.error);
    // After the deletion curve's passes, the explorer's activations are the picture's again.
    let again = handle(&state, ToWorker::Maps { layers: vec![first_conv], max_side: 256, shared: false, values: true }, &mut |_| {}).await;
    let FromWorker::Maps(a) = roundtrip(&again) else { panic!("{again:?}") };
    assert_eq!(a[0].data, m[0].data);
    // What a channel looks for, a few steps: progress first, then the answer.
    let mut progress = 0;
    let vis = handle(&state, ToWorker::Visualize { id: 3, layer: first_conv, channel: 1, steps: 8, size: 64 }, &mut |m| {
        if matches!(m, FromWorker::Visualized(ref v) if !v.done) {
            progress += 1;
        }
    })
    .await;
    let FromWorker::Visualized(v) = roundtrip(&vis) else { panic!("{vis:?}") };
    assert!(v.done && v.error.is_none() && v.step == 8, "{:?}", v.error);
    assert!(v.before_relu, "the first conv's ReLU is fused: the objective is the conv's output before it");
    assert_eq!((v.side, v.rgba.len()), (64, 64 * 64 * 4), "at the asked size");
    assert_eq!(progress, 2, "an image every 4 steps");
    // ReLUs split out: every fused conv gives its pre-activation as a layer of its own.
    let fused_convs = summary.layers.iter().filter(|l| l.op.ends_with("+Relu")).count();
    let split = handle(&state, ToWorker::SplitRelus(true), &mut |_| {}).await;
    let FromWorker::Loaded(split) = roundtrip(&split) else { panic!("{split:?}") };
    assert!(fused_convs >= 20, "{fused_convs}");
    assert_eq!(split.layers.len(), summary.layers.len() + fused_convs);
    assert_eq!(split.layers.iter().filter(|l| l.op == "Relu").count(), fused_convs);
    assert!(split.layers.iter().all(|l| !l.op.ends_with("+Relu")));
    let ran = handle(&state, ToWorker::Run { id: 1, frame: Frame { width: 224, height: 224, rgba: vec![128; 224 * 224 * 4] }, squash: false, time_layers: true }, &mut |_| {}).await;
    let FromWorker::Ran(run) = roundtrip(&ran) else { panic!("{ran:?}") };
    assert_eq!(run.layer_ms.len(), split.layers.len());
    let bad = handle(&state, ToWorker::LoadOnnx { load: 1, name: "junk".into(), bytes: vec![0xff; 64], backend: convlens_app::protocol::BackendChoice::Cpu, split_relus: false }, &mut |_| {}).await;
    assert!(matches!(bad, FromWorker::Error(ref e) if e.contains("not an ONNX model")), "{bad:?}");
}

/// The dataset-examples handlers: photos ranked on the worker's own CPU engine, a channel's
/// photos with their patch (the unit's receptive field, inside the crop), the index saved and
/// opened again with the same ranking; asked before any photo, or given a file that is not an
/// index, the worker says why.
#[wasm_bindgen_test]
async fn worker_ranks_photos_per_channel() {
    use convlens_app::protocol::{IndexCmd, IndexReply};
    let state = std::rc::Rc::new(std::cell::RefCell::new(convlens_app::worker::State::default()));
    let ask = |cmd: IndexCmd| {
        let state = state.clone();
        async move {
            match roundtrip(&handle(&state, ToWorker::Index(cmd), &mut |_| {}).await) {
                FromWorker::Index(r) => r,
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(matches!(ask(IndexCmd::Save).await, IndexReply::Error(e) if e.contains("no model")));
    let load = ToWorker::LoadOnnx { load: 1, name: "light_squeezenet".into(), bytes: LIGHT_SQUEEZENET.to_vec(), backend: convlens_app::protocol::BackendChoice::Cpu, split_relus: false };
    let FromWorker::Loaded(summary) = handle(&state, load, &mut |_| {}).await else { panic!() };
    assert!(matches!(ask(IndexCmd::Top { layer: 0, channel: 0 }).await, IndexReply::Error(e) if e.contains("no photos indexed")));
    // Three flat grey photos: a brighter one gives every first-layer channel a larger value.
    for (name, grey) in [("dark.png", 40u8), ("mid.png", 128), ("bright.png", 230)] {
        let frame = Frame { width: 300, height: 240, rgba: vec![grey; 300 * 240 * 4] };
        match ask(IndexCmd::Photo { name: name.into(), frame, thumb: vec![grey; 10] }).await {
            IndexReply::Added { error: None, .. } => {}
            other => panic!("{other:?}"),
        }
    }
    let conv = summary.layers.iter().position(|l| l.op.starts_with("Conv")).unwrap();
    let top = ask(IndexCmd::Top { layer: conv, channel: 3 }).await;
    let IndexReply::Top { hits, .. } = top else { panic!("{top:?}") };
    assert_eq!(hits.len(), 3);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    for h in &hits {
        let [t, l, b, r] = h.patch;
        assert!(t < b && l < r && b <= h.side && r <= h.side && h.side == 224, "{:?}", h.patch);
        assert_eq!(h.thumb.len(), 10, "the thumbnail comes back as it was given");
    }
    let IndexReply::Saved(bytes) = ask(IndexCmd::Save).await else { panic!() };
    assert!(matches!(ask(IndexCmd::Clear).await, IndexReply::Cleared));
    assert!(matches!(ask(IndexCmd::Load(bytes)).await, IndexReply::Opened { photos: 3, k: 9, .. }));
    let IndexReply::Top { hits: again, .. } = ask(IndexCmd::Top { layer: conv, channel: 3 }).await else { panic!() };
    assert_eq!(again, hits);
    assert!(matches!(ask(IndexCmd::Load(b"not an index".to_vec())).await, IndexReply::Error(e) if e.contains("not a ConvLens index")));
}
