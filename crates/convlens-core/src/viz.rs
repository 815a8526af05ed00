//! Turning activations into pixels: one colour ramp and per-tile value ranges, shared by the
//! CLI's PNG grids and the browser's feature-map tiles.

/// A perceptually ordered dark-to-bright ramp (inferno-like): 5 stops, linearly interpolated.
/// `t` in [0, 1]; NaN maps to the darkest colour.
pub fn colormap(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [[0.0, 0.0, 4.0], [87.0, 16.0, 110.0], [188.0, 55.0, 84.0], [249.0, 142.0, 9.0], [252.0, 255.0, 164.0]];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * 4.0;
    let i = (t as usize).min(3);
    let f = t - i as f32;
    let mut out = [0u8; 3];
    for c in 0..3 {
        out[c] = (STOPS[i][c] + (STOPS[i + 1][c] - STOPS[i][c]) * f).round() as u8;
    }
    out
}

/// (min, max) of a slice; (0, 0) when empty.
pub fn value_range(v: &[f32]) -> (f32, f32) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
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
}
