//! How long the network's view of a picture takes to cut, side by side in one run:
//! `frame_view::crop_frame` on a camera frame's I420 planes (what the worker does with a
//! VideoFrame), `preprocess::crop_rgb` on the same picture as RGBA (a dropped photo in the
//! worker) and as RGB (the CLI's decoded photo), both resampling only the crop window, against
//! the image crate's resize of the whole picture, then the crop (`crop_rgb_whole_resize`: crop_rgb
//! until 2026-12-02).
//!   cargo run --release -p convlens-core --example frame_view_bench [WIDTH HEIGHT RUNS]

use std::time::Instant;

use convlens_core::frame_view::{crop_frame, Layout, Plane, RawFrame, YuvSpace};
use convlens_core::preprocess::{crop_rgb, crop_rgb_whole_resize, Fit};

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
    let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let fit = Fit::ResizeAndCenterCrop;
    let planes_ms = median_ms(runs, || crop_frame(&frame, 224, fit).unwrap()[0]);
    let rgba_ms = median_ms(runs, || crop_rgb(&rgba, w, h, 4, 224, fit).unwrap()[0]);
    let rgb_ms = median_ms(runs, || crop_rgb(&rgb, w, h, 3, 224, fit).unwrap()[0]);
    let whole_ms = median_ms(runs, || crop_rgb_whole_resize(&rgba, w, h, 4, 224, fit).unwrap()[0]);
    println!(
        "{w}x{h} to 224x224, median of {runs}: I420 planes {planes_ms:.3} ms, RGBA window {rgba_ms:.3} ms, RGB window {rgb_ms:.3} ms; \
         RGBA whole-picture resize (the image crate) {whole_ms:.3} ms: window {:.2}x its time",
        rgba_ms / whole_ms
    );
}
