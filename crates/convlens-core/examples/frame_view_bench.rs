//! How long the network's view of a live camera frame takes to cut, side by side in one run:
//! `frame_view::crop_frame` on the frame's I420 planes (what the worker does with a VideoFrame)
//! against `preprocess::crop_rgb` on the same frame as RGBA (a whole-frame resize, then the crop).
//!   cargo run --release -p convlens-core --example frame_view_bench [WIDTH HEIGHT RUNS]

use std::time::Instant;

use convlens_core::frame_view::{crop_frame, Layout, Plane, RawFrame, YuvSpace};
use convlens_core::preprocess::{crop_rgb, Fit};

fn median_ms(runs: usize, mut f: impl FnMut() -> u8) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            std::hint::black_box(f());
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (w, h, runs) = (args.first().copied().unwrap_or(640), args.get(1).copied().unwrap_or(480), args.get(2).copied().unwrap_or(200));
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let yuv: Vec<u8> = (0..w * h + 2 * cw * ch).map(|i| (i * 31 % 251) as u8).collect();
    let planes = [Plane { offset: 0, stride: w }, Plane { offset: w * h, stride: cw }, Plane { offset: w * h + cw * ch, stride: cw }];
    let frame = RawFrame { layout: Layout::I420, width: w, height: h, planes: &planes, bytes: &yuv, space: YuvSpace::BT601 };
    let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 37 % 251) as u8).collect();
    let planes_ms = median_ms(runs, || crop_frame(&frame, 224, Fit::ResizeAndCenterCrop).unwrap()[0]);
    let rgba_ms = median_ms(runs, || crop_rgb(&rgba, w, h, 4, 224, Fit::ResizeAndCenterCrop).unwrap()[0]);
    println!("{w}x{h} to 224x224, median of {runs}: I420 planes (frame_view) {planes_ms:.3} ms, RGBA whole frame (crop_rgb) {rgba_ms:.3} ms: {:.2}x", planes_ms / rgba_ms);
}
