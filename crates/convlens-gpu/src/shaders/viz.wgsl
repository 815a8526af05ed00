// Feature-map tiles drawn on the GPU: per-channel min/max/mean, the shared range, and each
// channel colour-mapped into RGBA at display size, so live mode reads back tile pixels and a
// few stats instead of whole activations. The ramp and rounding match convlens_core::viz.

struct Params {
    channels: u32, h: u32, w: u32, offset: u32,
    factor: u32, tile_h: u32, tile_w: u32, shared_scale: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> rgba: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> wg_lo: array<f32, 64>;
var<workgroup> wg_hi: array<f32, 64>;
var<workgroup> wg_sum: array<f32, 64>;

// Tree reduction over the 64 invocations' (min, max, sum): the results end up in wg_*[0].
fn reduce(li: u32, lo: f32, hi: f32, sum: f32) {
    wg_lo[li] = lo;
    wg_hi[li] = hi;
    wg_sum[li] = sum;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s / 2u) {
        if (li < s) {
            wg_lo[li] = min(wg_lo[li], wg_lo[li + s]);
            wg_hi[li] = max(wg_hi[li], wg_hi[li + s]);
            wg_sum[li] = wg_sum[li] + wg_sum[li + s];
        }
        workgroupBarrier();
    }
}

// One workgroup per channel: min, max and mean over the full-resolution plane.
@compute @workgroup_size(64)
fn channel_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let ch = wid.x;
    let plane = p.h * p.w;
    let base = p.offset + ch * plane;
    var lo = 3.0e38;
    var hi = -3.0e38;
    var sum = 0.0;
    for (var i = li; i < plane; i = i + 64u) {
        let v = x[base + i];
        lo = min(lo, v);
        hi = max(hi, v);
        sum = sum + v;
    }
    reduce(li, lo, hi, sum);
    if (li == 0u) {
        stats[ch * 3u] = wg_lo[0];
        stats[ch * 3u + 1u] = wg_hi[0];
        stats[ch * 3u + 2u] = wg_sum[0] / f32(max(plane, 1u));
    }
}

// One workgroup: the range over every channel, after the per-channel stats.
@compute @workgroup_size(64)
fn shared_range(@builtin(local_invocation_index) li: u32) {
    var lo = 3.0e38;
    var hi = -3.0e38;
    for (var c = li; c < p.channels; c = c + 64u) {
        lo = min(lo, stats[c * 3u]);
        hi = max(hi, stats[c * 3u + 1u]);
    }
    reduce(li, lo, hi, 0.0);
    if (li == 0u) {
        stats[p.channels * 3u] = wg_lo[0];
        stats[p.channels * 3u + 1u] = wg_hi[0];
    }
}

// The inferno-like ramp of convlens_core::viz::colormap: 5 stops, linear between them.
fn ramp(t_in: f32) -> vec3<f32> {
    var stops = array<vec3<f32>, 5>(
        vec3<f32>(0.0, 0.0, 4.0), vec3<f32>(87.0, 16.0, 110.0), vec3<f32>(188.0, 55.0, 84.0),
        vec3<f32>(249.0, 142.0, 9.0), vec3<f32>(252.0, 255.0, 164.0));
    var t = t_in;
    if (t != t) { t = 0.0; } // NaN: the darkest colour
    t = clamp(t, 0.0, 1.0) * 4.0;
    let i = min(u32(t), 3u);
    let f = t - f32(i);
    return stops[i] + (stops[i + 1u] - stops[i]) * f;
}

// One invocation per tile pixel: the mean of its factor x factor block, coloured on the range.
@compute @workgroup_size(64)
fn colorize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    let tile = p.tile_h * p.tile_w;
    if (i >= p.channels * tile) { return; }
    let ch = i / tile;
    let ty = (i % tile) / p.tile_w;
    let tx = i % p.tile_w;
    let base = p.offset + ch * p.h * p.w;
    var sum = 0.0;
    var n = 0u;
    for (var y = ty * p.factor; y < min((ty + 1u) * p.factor, p.h); y = y + 1u) {
        for (var xx = tx * p.factor; xx < min((tx + 1u) * p.factor, p.w); xx = xx + 1u) {
            sum = sum + x[base + y * p.w + xx];
            n = n + 1u;
        }
    }
    var lo = stats[ch * 3u];
    var hi = stats[ch * 3u + 1u];
    if (p.shared_scale != 0u) {
        lo = stats[p.channels * 3u];
        hi = stats[p.channels * 3u + 1u];
    }
    var span = hi - lo;
    if (!(hi > lo)) { span = 1.0; }
    // floor(v + 0.5), not round(): WGSL rounds halves to even, Rust's f32::round away from 0.
    let c = vec3<u32>(floor(ramp((sum / f32(n) - lo) / span) + 0.5));
    rgba[i] = c.x | (c.y << 8u) | (c.z << 16u) | (255u << 24u);
}
