//! Turning activations into pixels: one colour ramp and per-tile value ranges, shared by the
//! CLI's PNG grids and the browser's feature-map tiles.

use crate::kernels::simd::{fmax, fmin};
use crate::par;

/// The colour ramp's five stops (RGB), evenly spaced over 0..1.
const STOPS: [[f32; 3]; 5] = [[0.0, 0.0, 4.0], [87.0, 16.0, 110.0], [188.0, 55.0, 84.0], [249.0, 142.0, 9.0], [252.0, 255.0, 164.0]];

/// A perceptually ordered dark-to-bright ramp (inferno-like): 5 stops, linearly interpolated.
/// `t` in [0, 1]; NaN maps to the darkest colour.
pub fn colormap(t: f32) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * 4.0;
    let i = (t as usize).min(3);
    let f = t - i as f32;
    let mut out = [0u8; 3];
    for c in 0..3 {
        // Rounds half away from zero as `round` does for these non-negative values, without
        // `round`'s libm call on wasm (a live frame colours every pixel of the layer).
        out[c] = (STOPS[i][c] + (STOPS[i + 1][c] - STOPS[i][c]) * f + 0.5) as u8;
    }
    out
}

/// (min, max) of a slice; (0, 0) when empty.
pub fn value_range(v: &[f32]) -> (f32, f32) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    // Not f32::min/max: libm calls on wasm. A NaN is passed over (x first: NaN compares false).
    v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (fmin(x, lo), fmax(x, hi)))
}

/// One channel as RGBA pixels (for canvas ImageData), scaled so lo..hi spans the ramp.
pub fn channel_rgba(plane: &[f32], lo: f32, hi: f32) -> Vec<u8> {
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut out = Vec::with_capacity(plane.len() * 4);
    for &v in plane {
        let [r, g, b] = colormap((v - lo) / span);
        out.extend_from_slice(&[r, g, b, 255]);
    }
    out
}

/// A layer's channels as colour-mapped tiles at display size: what the explorer paints, and
/// all it needs in live mode (the GPU backend computes the same on the device).
#[derive(Clone, Debug, PartialEq)]
pub struct Tiles {
    pub channels: usize,
    pub tile_h: usize,
    pub tile_w: usize,
    /// Pixels per side of the layer that one tile pixel averages.
    pub factor: usize,
    /// `channels` tiles of tile_h x tile_w RGBA pixels, channel after channel.
    pub rgba: Vec<u8>,
    /// Per channel (min, max, mean) over the full-resolution map.
    pub stats: Vec<[f32; 3]>,
    /// The colour scale's ends when it is shared by every tile.
    pub shared: Option<(f32, f32)>,
}

/// Tile side for a map of `h` x `w` shown at most `max_side` pixels a side: the block factor
/// and the tile size (edge blocks are partial).
pub fn tile_geometry(h: usize, w: usize, max_side: usize) -> (usize, usize, usize) {
    let factor = h.max(w).div_ceil(max_side.max(1)).max(1);
    (factor, h.div_ceil(factor), w.div_ceil(factor))
}

/// Channels, rows and columns of what `tiles` draws: [1, C, H, W], [1, C] (one pixel per
/// channel), anything else one row.
fn planes(shape: &[usize], len: usize) -> (usize, usize, usize) {
    match shape {
        [_, c, h, w] => (*c, *h, *w),
        [_, c] => (*c, 1, 1),
        _ => (1, 1, len),
    }
}

/// `Tiles` as the explorer draws them every live frame, on the kernels' pool: each channel
/// read once (its range, and every block's sum row by row), then coloured. The colours and
/// the (min, max) are bit for bit `tiles_reference`'s (a block is summed in the same order);
/// the mean is the sum of the block sums, equal within float rounding.
pub fn tiles(data: &[f32], shape: &[usize], max_side: usize, shared: bool) -> Tiles {
    let (c, h, w) = planes(shape, data.len());
    let plane = h * w;
    let (factor, th, tw) = tile_geometry(h, w, max_side);
    let per_tile = th * tw;
    let mut means = vec![0.0f32; c * per_tile];
    let mut stats = vec![[0.0f32; 3]; c];
    // A few tasks per thread: channels are equal work, but a helper may start late.
    let parts = par::chunks(c, 4 * par::threads(), 1);
    {
        let (m_out, s_out) = (par::SharedMut::new(&mut means), par::SharedMut::new(&mut stats));
        par::for_each(parts.len(), &|t| {
            let mut sums = vec![0.0f32; tw];
            for ch in parts[t].clone() {
                // SAFETY: tasks take disjoint channels.
                let (m, s) = unsafe { (m_out.slice(ch * per_tile, per_tile), s_out.slice(ch, 1)) };
                s[0] = channel_blocks(&data[ch * plane..(ch + 1) * plane], w, factor, &mut sums, m);
            }
        });
    }
    let global = stats.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| (lo.min(s[0]), hi.max(s[1])));
    let mut rgba = vec![0u8; c * per_tile * 4];
    {
        let out = par::SharedMut::new(&mut rgba);
        par::for_each(parts.len(), &|t| {
            for ch in parts[t].clone() {
                let (lo, hi) = if shared { global } else { (stats[ch][0], stats[ch][1]) };
                let span = if hi > lo { hi - lo } else { 1.0 };
                // SAFETY: tasks take disjoint channels.
                let px = unsafe { out.slice(ch * per_tile * 4, per_tile * 4) };
                colour(&means[ch * per_tile..(ch + 1) * per_tile], lo, span, px);
            }
        });
    }
    Tiles { channels: c, tile_h: th, tile_w: tw, factor, rgba, stats, shared: shared.then_some(global) }
}

/// One channel's (min, max, mean) and its blocks' means into `means` (row-major tiles).
/// `sums` holds a tile row's running sums; a block's values are added row by row, left to
/// right, as the reference adds them.
fn channel_blocks(p: &[f32], w: usize, factor: usize, sums: &mut [f32], means: &mut [f32]) -> [f32; 3] {
    if p.is_empty() {
        return [0.0, 0.0, 0.0];
    }
    const L: usize = 8;
    let (mut lo, mut hi) = ([f32::INFINITY; L], [f32::NEG_INFINITY; L]);
    let mut total = 0.0f32;
    let tw = sums.len();
    for (ty, rows) in p.chunks(factor * w).enumerate() {
        sums.fill(0.0);
        for row in rows.chunks_exact(w) {
            // Eight lanes of compare-and-select: min/max vectorize; a NaN is passed over.
            let mut lanes = row.chunks_exact(L);
            for v in &mut lanes {
                for i in 0..L {
                    lo[i] = fmin(v[i], lo[i]);
                    hi[i] = fmax(v[i], hi[i]);
                }
            }
            for &x in lanes.remainder() {
                lo[0] = fmin(x, lo[0]);
                hi[0] = fmax(x, hi[0]);
            }
            // A width known at build time lets the compiler add many blocks at once (live
            // tiles use factors 1 to 4).
            match factor {
                1 => add_blocks(sums, row, 1),
                2 => add_blocks(sums, row, 2),
                3 => add_blocks(sums, row, 3),
                4 => add_blocks(sums, row, 4),
                _ => add_blocks(sums, row, factor),
            }
        }
        let rows_in = rows.len() / w;
        for (tx, (m, &s)) in means[ty * tw..(ty + 1) * tw].iter_mut().zip(sums.iter()).enumerate() {
            let cols = factor.min(w - tx * factor);
            *m = s / (rows_in * cols) as f32;
            total += s;
        }
    }
    let lo = lo.iter().fold(f32::INFINITY, |a, &x| fmin(x, a));
    let hi = hi.iter().fold(f32::NEG_INFINITY, |a, &x| fmax(x, a));
    [lo, hi, total / p.len() as f32]
}

/// `colormap((m - lo) / span)` for every mean, as RGBA into `out`: sixteen pixels at a time,
/// each ramp segment chosen by selects instead of a table lookup so the compiler vectorizes
/// it; the same operations in the same order as `colormap`, so the same bytes.
fn colour(means: &[f32], lo: f32, span: f32, out: &mut [u8]) {
    const L: usize = 16;
    let mut px = [0u32; L];
    let whole = means.chunks_exact(L);
    let tail = whole.remainder();
    for (m, o) in whole.zip(out.chunks_exact_mut(4 * L)) {
        for k in 0..L {
            let t = (m[k] - lo) / span;
            let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * 4.0;
            // (t as usize).min(3) for t in 0..=4, as a compare chain.
            let (s, i) = if t >= 3.0 { (3, 3.0) } else if t >= 2.0 { (2, 2.0) } else if t >= 1.0 { (1, 1.0) } else { (0, 0.0) };
            let f = t - i;
            let mut v = 255u32 << 24;
            for c in 0..3 {
                let a = match s {
                    3 => STOPS[3][c],
                    2 => STOPS[2][c],
                    1 => STOPS[1][c],
                    _ => STOPS[0][c],
                };
                let d = match s {
                    3 => STOPS[4][c] - STOPS[3][c],
                    2 => STOPS[3][c] - STOPS[2][c],
                    1 => STOPS[2][c] - STOPS[1][c],
                    _ => STOPS[1][c] - STOPS[0][c],
                };
                v |= ((a + d * f + 0.5) as i32 as u32) << (8 * c);
            }
            px[k] = v;
        }
        for (b, p) in o.chunks_exact_mut(4).zip(&px) {
            b.copy_from_slice(&p.to_le_bytes());
        }
    }
    let done = means.len() - tail.len();
    for (m, p) in tail.iter().zip(out[4 * done..].chunks_exact_mut(4)) {
        let [r, g, b] = colormap((m - lo) / span);
        p.copy_from_slice(&[r, g, b, 255]);
    }
}

/// Adds a row's blocks of `factor` values (the last one maybe fewer) into their running sums,
/// each block left to right. Inlined, so a constant `factor` is compiled for its width.
#[inline(always)]
fn add_blocks(sums: &mut [f32], row: &[f32], factor: usize) {
    // Whole blocks apart from the partial last one: `chunks` would check each block's length.
    let whole = row.chunks_exact(factor);
    let tail = whole.remainder();
    for (s, block) in sums.iter_mut().zip(whole) {
        let mut acc = *s;
        for &x in block {
            acc += x;
        }
        *s = acc;
    }
    if let Some(s) = sums.get_mut(row.len() / factor).filter(|_| !tail.is_empty()) {
        for &x in tail {
            *s += x;
        }
    }
}

/// The reference for `Tiles`: per-channel stats at full resolution, each tile pixel the mean
/// of its factor x factor block, coloured on the channel's own range or the shared one.
/// `shape` is [1, C, H, W] or [1, C] (one pixel per channel).
pub fn tiles_reference(data: &[f32], shape: &[usize], max_side: usize, shared: bool) -> Tiles {
    let (c, h, w) = planes(shape, data.len());
    let plane = h * w;
    let (factor, th, tw) = tile_geometry(h, w, max_side);
    let stats: Vec<[f32; 3]> = (0..c)
        .map(|ch| {
            let p = &data[ch * plane..(ch + 1) * plane];
            let (lo, hi) = value_range(p);
            [lo, hi, p.iter().sum::<f32>() / plane.max(1) as f32]
        })
        .collect();
    let global = stats.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| (lo.min(s[0]), hi.max(s[1])));
    let mut rgba = Vec::with_capacity(c * th * tw * 4);
    for ch in 0..c {
        let (lo, hi) = if shared { global } else { (stats[ch][0], stats[ch][1]) };
        let span = if hi > lo { hi - lo } else { 1.0 };
        let p = &data[ch * plane..(ch + 1) * plane];
        for ty in 0..th {
            for tx in 0..tw {
                let (mut sum, mut n) = (0.0f32, 0usize);
                for y in ty * factor..((ty + 1) * factor).min(h) {
                    for x in tx * factor..((tx + 1) * factor).min(w) {
                        sum += p[y * w + x];
                        n += 1;
                    }
                }
                let [r, g, b] = colormap((sum / n as f32 - lo) / span);
                rgba.extend_from_slice(&[r, g, b, 255]);
            }
        }
    }
    Tiles { channels: c, tile_h: th, tile_w: tw, factor, rgba, stats, shared: shared.then_some(global) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_ends_and_middle() {
        assert_eq!(colormap(0.0), [0, 0, 4]);
        assert_eq!(colormap(1.0), [252, 255, 164]);
        assert_eq!(colormap(0.5), [188, 55, 84]);
        assert_eq!(colormap(f32::NAN), [0, 0, 4]);
        assert_eq!(channel_rgba(&[1.0, 3.0], 1.0, 3.0), vec![0, 0, 4, 255, 252, 255, 164, 255]);
        assert_eq!(value_range(&[2.0, -1.0, 5.0]), (-1.0, 5.0));
    }

    #[test]
    fn tiles_average_blocks_and_colour_by_range() {
        // One 3x3 channel shown at most 2 px a side: factor 2, 2x2 tiles, partial edge blocks.
        let data = [0.0, 2.0, 4.0, 2.0, 4.0, 6.0, 8.0, 8.0, 8.0];
        let t = tiles(&data, &[1, 1, 3, 3], 2, false);
        assert_eq!((t.factor, t.tile_h, t.tile_w), (2, 2, 2));
        assert_eq!(t.stats, vec![[0.0, 8.0, 42.0 / 9.0]]);
        // Block means 2, 5, 8, 8 on the 0..8 range: t = 0.25, 0.625, 1, 1.
        let px: Vec<[u8; 3]> = t.rgba.chunks(4).map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!(px, vec![colormap(0.25), colormap(0.625), colormap(1.0), colormap(1.0)]);
        // Shared scale across two channels: the second (all 10) is at the top of 0..10.
        let two = tiles(&[0.0, 5.0, 10.0, 10.0], &[1, 2, 1, 2], 8, true);
        assert_eq!(two.shared, Some((0.0, 10.0)));
        assert_eq!(&two.rgba[8..11], &colormap(1.0));
        assert_eq!(&two.rgba[4..7], &colormap(0.5));
        // A flat channel does not divide by zero.
        assert_eq!(&tiles(&[3.0; 4], &[1, 1, 2, 2], 2, false).rgba[..3], &colormap(0.0));
    }
}
