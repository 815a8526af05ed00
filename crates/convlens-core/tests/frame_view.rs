//! The network's view cut from raw camera planes and decoded photos (`frame_view`) against the
//! long way round: the image crate's triangle resize of the whole frame, then the crop
//! (`preprocess::crop_rgb_whole_resize`), of the frame's pixels, then for YUV the standards' equations in
//! f64 per output pixel.

use convlens_core::frame_view::{crop_frame, Layout, Plane, RawFrame, YuvSpace};
use convlens_core::preprocess::{crop_rgb_whole_resize, Fit};

/// Levels the window-only f32 resample may differ from the image crate's whole-frame one:
/// rounding of the filter's sums (RGB), and for YUV the reference's rounding of the filtered
/// Y, U, V to bytes before converting (half a level each, times up to 2.1 in the matrices).
const VIEW_LEVELS: i32 = 2;
const VIEW_LEVELS_YUV: i32 = 3;

/// A frame with structure at several scales: ramps, a ring pattern and hard edges.
fn scene(w: usize, h: usize) -> Vec<[f64; 3]> {
    (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
                let ring = (((fx - 0.5).powi(2) + (fy - 0.4).powi(2)).sqrt() * 40.0).sin();
                let block = if (x / 37 + y / 23) % 2 == 0 { 40.0 } else { 0.0 };
                [(230.0 * fx + 20.0 * ring).clamp(0.0, 255.0), (200.0 * fy + block).clamp(0.0, 255.0), (128.0 + 100.0 * ring).clamp(0.0, 255.0)]
            })
        })
        .collect()
}

/// RGB to Y, U, V by the standard's definition (Kr, Kb; limited range: Y 16..235, chroma 16..240).
fn to_yuv(rgb: [f64; 3], s: YuvSpace) -> [f64; 3] {
    let (kr, kb) = (s.kr as f64, s.kb as f64);
    let y = kr * rgb[0] + (1.0 - kr - kb) * rgb[1] + kb * rgb[2];
    let (u, v) = ((rgb[2] - y) / (2.0 * (1.0 - kb)), (rgb[0] - y) / (2.0 * (1.0 - kr)));
    if s.full_range {
        [y, u + 128.0, v + 128.0]
    } else {
        [16.0 + y * 219.0 / 255.0, 128.0 + u * 224.0 / 255.0, 128.0 + v * 224.0 / 255.0]
    }
}

/// The inverse, f64, for the reference.
fn to_rgb(yuv: [f64; 3], s: YuvSpace) -> [f64; 3] {
    let (kr, kb) = (s.kr as f64, s.kb as f64);
    let (y, u, v) = if s.full_range { (yuv[0], yuv[1] - 128.0, yuv[2] - 128.0) } else { ((yuv[0] - 16.0) * 255.0 / 219.0, (yuv[1] - 128.0) * 255.0 / 224.0, (yuv[2] - 128.0) * 255.0 / 224.0) };
    let r = y + 2.0 * (1.0 - kr) * v;
    let b = y + 2.0 * (1.0 - kb) * u;
    let g = (y - kr * r - kb * b) / (1.0 - kr - kb);
    [r, g, b]
}

struct Made {
    bytes: Vec<u8>,
    planes: Vec<Plane>,
    /// Each pixel's stored values: R, G, B, or Y, U, V (chroma repeated over its 2x2 block).
    pixels: Vec<u8>,
}

/// `scene` as `layout` bytes, each plane after `pad` spare bytes and with `pad` spare bytes per row.
fn make(layout: Layout, w: usize, h: usize, s: YuvSpace, pad: usize) -> Made {
    let px = scene(w, h);
    let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut bytes = Vec::new();
    let mut planes = Vec::new();
    let mut plane = |bytes: &mut Vec<u8>, row_bytes: usize, rows: usize, f: &dyn Fn(usize, usize) -> u8| {
        bytes.extend(std::iter::repeat_n(7u8, pad));
        planes.push(Plane { offset: bytes.len(), stride: row_bytes + pad });
        for y in 0..rows {
            bytes.extend((0..row_bytes).map(|x| f(x, y)));
            bytes.extend(std::iter::repeat_n(9u8, pad));
        }
    };
    let yuv: Vec<[f64; 3]> = px.iter().map(|&p| to_yuv(p, s)).collect();
    // A 2x2 block's chroma: its top-left pixel's (what a camera's subsampling keeps varies; the
    // decoder must only read the right sample).
    let chroma = |x: usize, y: usize, c: usize| yuv[(2 * y) * w + 2 * x][c];
    match layout {
        Layout::I420 | Layout::Nv12 => {
            plane(&mut bytes, w, h, &|x, y| q(yuv[y * w + x][0]));
            if layout == Layout::I420 {
                plane(&mut bytes, cw, ch, &|x, y| q(chroma(x, y, 1)));
                plane(&mut bytes, cw, ch, &|x, y| q(chroma(x, y, 2)));
            } else {
                plane(&mut bytes, 2 * cw, ch, &|x, y| q(chroma(x / 2, y, 1 + x % 2)));
            }
        }
        Layout::Rgba | Layout::Bgra => {
            let order = if layout == Layout::Rgba { [0, 1, 2] } else { [2, 1, 0] };
            plane(&mut bytes, 4 * w, h, &|x, y| if x % 4 == 3 { 255 } else { q(px[y * w + x / 4][order[x % 4]]) });
        }
        Layout::Rgb => plane(&mut bytes, 3 * w, h, &|x, y| q(px[y * w + x / 3][x % 3])),
    }
    let pixels = match layout {
        Layout::Rgba | Layout::Bgra | Layout::Rgb => px.iter().flat_map(|p| p.map(q)).collect(),
        _ => (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).flat_map(|(x, y)| [q(yuv[y * w + x][0]), q(chroma(x / 2, y / 2, 1)), q(chroma(x / 2, y / 2, 2))]).collect(),
    };
    Made { bytes, planes, pixels }
}

#[test]
fn the_view_of_every_layout_and_colour_space_matches_the_whole_frame_converted_then_cropped() {
    let full601 = YuvSpace { full_range: true, ..YuvSpace::BT601 };
    let cases = [
        (Layout::I420, 640, 480, YuvSpace::BT601, 0),
        (Layout::I420, 321, 241, YuvSpace::BT709, 5),
        (Layout::Nv12, 640, 360, full601, 3),
        (Layout::Nv12, 300, 500, YuvSpace::BT601, 0),
        (Layout::Rgba, 640, 480, YuvSpace::BT601, 0),
        (Layout::Bgra, 250, 260, YuvSpace::BT601, 8),
        (Layout::Rgb, 1203, 901, YuvSpace::BT601, 0),
        (Layout::Rgb, 150, 97, YuvSpace::BT601, 4),
    ];
    for (layout, w, h, space, pad) in cases {
        let m = make(layout, w, h, space, pad);
        let frame = RawFrame { layout, width: w, height: h, planes: &m.planes, bytes: &m.bytes, space };
        for fit in [Fit::ResizeAndCenterCrop, Fit::Squash] {
            let got = crop_frame(&frame, 224, fit).unwrap();
            // The stored values resized and cropped as a photo would be, then (YUV) converted.
            let filtered = crop_rgb_whole_resize(&m.pixels, w, h, 3, 224, fit).unwrap();
            let (want, levels): (Vec<u8>, i32) = match layout {
                Layout::Rgba | Layout::Bgra | Layout::Rgb => (filtered, VIEW_LEVELS),
                _ => (filtered.chunks_exact(3).flat_map(|p| to_rgb([p[0] as f64, p[1] as f64, p[2] as f64], space).map(|v| v.round().clamp(0.0, 255.0) as u8)).collect(), VIEW_LEVELS_YUV),
            };
            assert_eq!(got.len(), want.len());
            let worst = got.iter().zip(&want).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap();
            assert!(worst <= levels, "{layout:?} {w}x{h} {space:?} pad {pad} {fit:?}: {worst} levels");
        }
    }
}

#[test]
fn pure_colours_come_back_through_each_matrix() {
    // Encoded by the standards' forward equations, decoded by the cut: within a level.
    for space in [YuvSpace::BT601, YuvSpace::BT709, YuvSpace { full_range: true, ..YuvSpace::BT601 }, YuvSpace { full_range: true, ..YuvSpace::BT709 }] {
        for colour in [[255.0, 0.0, 0.0], [0.0, 255.0, 0.0], [0.0, 0.0, 255.0], [255.0, 255.0, 255.0], [30.0, 60.0, 90.0]] {
            let [y, u, v] = to_yuv(colour, space).map(|c| c.round() as u8);
            // A flat 4x4 I420 frame of that colour.
            let bytes: Vec<u8> = [vec![y; 16], vec![u; 4], vec![v; 4]].concat();
            let planes = [Plane { offset: 0, stride: 4 }, Plane { offset: 16, stride: 2 }, Plane { offset: 20, stride: 2 }];
            let frame = RawFrame { layout: Layout::I420, width: 4, height: 4, planes: &planes, bytes: &bytes, space };
            let got = crop_frame(&frame, 2, Fit::Squash).unwrap();
            for (c, &want) in colour.iter().enumerate() {
                let diff = (got[c] as f64 - want).abs();
                assert!(diff <= 1.5, "{space:?} {colour:?}: channel {c} is {} (yuv {y} {u} {v})", got[c]);
            }
        }
    }
}

#[test]
fn names_from_webcodecs() {
    assert_eq!(Layout::from_webcodecs("I420"), Some(Layout::I420));
    assert_eq!(Layout::from_webcodecs("NV12"), Some(Layout::Nv12));
    assert_eq!(Layout::from_webcodecs("BGRX"), Some(Layout::Bgra));
    assert_eq!(Layout::from_webcodecs("I444"), None, "not read here: the caller falls back to a canvas");
    assert_eq!(YuvSpace::from_webcodecs(Some("bt709"), Some(true)), YuvSpace { full_range: true, ..YuvSpace::BT709 });
    assert_eq!(YuvSpace::from_webcodecs(None, None), YuvSpace::BT601);
}

#[test]
fn planes_that_do_not_fit_are_an_error_not_a_panic() {
    let bytes = vec![0u8; 640 * 480 * 3 / 2 - 1];
    let planes = [Plane { offset: 0, stride: 640 }, Plane { offset: 640 * 480, stride: 320 }, Plane { offset: 640 * 480 * 5 / 4, stride: 320 }];
    let frame = RawFrame { layout: Layout::I420, width: 640, height: 480, planes: &planes, bytes: &bytes, space: YuvSpace::BT601 };
    assert!(crop_frame(&frame, 224, Fit::ResizeAndCenterCrop).unwrap_err().to_string().contains("does not fit"));
    let short_stride = [Plane { offset: 0, stride: 639 }, planes[1], planes[2]];
    let bytes = vec![0u8; 640 * 480 * 3 / 2];
    let frame = RawFrame { planes: &short_stride, bytes: &bytes, ..frame };
    assert!(crop_frame(&frame, 224, Fit::ResizeAndCenterCrop).is_err());
    let two = [planes[0], planes[1]];
    assert!(crop_frame(&RawFrame { planes: &two, ..frame }, 224, Fit::Squash).unwrap_err().to_string().contains("2 planes"));
}
