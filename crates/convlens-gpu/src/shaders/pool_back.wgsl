// Backward of max, average and global average pooling, one invocation per input value that
// gathers from every window holding it. Max pooling sends a window's gradient to its first
// largest input in scan order, the rule of the CPU backward (`grad::ops::max_pool`); the
// argmax is recomputed from the forward input rather than stored.

struct Params {
    c: u32, h: u32, w: u32, oh: u32,
    ow: u32, kh: u32, kw: u32, sh: u32,
    sw: u32, pt: u32, pl: u32, pb: u32,
    pr: u32, dh: u32, dw: u32, count_include_pad: u32,
    x_off: u32, accumulate: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn store(i: u32, v: f32) {
    if (p.accumulate != 0u) { dx[i] = dx[i] + v; } else { dx[i] = v; }
}

// The first output whose window can reach position `i` along an axis (windows start at
// o * stride - pad and span (k - 1) * dil + 1 positions).
fn first_window(i: u32, k: u32, stride: u32, dil: u32, pad: u32) -> u32 {
    let t = i32(i + pad) - i32((k - 1u) * dil);
    if (t <= 0) { return 0u; }
    return (u32(t) + stride - 1u) / stride;
}

// Position of the window (oy, ox)'s maximum in its channel plane at `base`.
fn window_argmax(base: u32, oy: u32, ox: u32) -> u32 {
    var best = 0.0;
    var at = 0xffffffffu;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let iy = i32(oy * p.sh + ky * p.dh) - i32(p.pt);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ix = i32(ox * p.sw + kx * p.dw) - i32(p.pl);
            if (ix < 0 || ix >= i32(p.w)) { continue; }
            let j = u32(iy) * p.w + u32(ix);
            let v = x[base + j];
            if (at == 0xffffffffu || v > best) {
                best = v;
                at = j;
            }
        }
    }
    return at;
}

@compute @workgroup_size(64)
fn max_pool_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    let plane = p.h * p.w;
    if (i >= p.c * plane) { return; }
    let ch = i / plane;
    let j = i % plane;
    let iy = j / p.w;
    let ix = j % p.w;
    var sum = 0.0;
    let last_y = min((iy + p.pt) / p.sh + 1u, p.oh);
    let last_x = min((ix + p.pl) / p.sw + 1u, p.ow);
    for (var oy = first_window(iy, p.kh, p.sh, p.dh, p.pt); oy < last_y; oy = oy + 1u) {
        for (var ox = first_window(ix, p.kw, p.sw, p.dw, p.pl); ox < last_x; ox = ox + 1u) {
            if (window_argmax(p.x_off + ch * plane, oy, ox) == j) {
                sum = sum + dy[(ch * p.oh + oy) * p.ow + ox];
            }
        }
    }
    store(i, sum);
}

@compute @workgroup_size(64)
fn avg_pool_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    let plane = p.h * p.w;
    if (i >= p.c * plane) { return; }
    let ch = i / plane;
    let iy = i32((i % plane) / p.w);
    let ix = i32(i % p.w);
    var sum = 0.0;
    let last_y = min(u32(iy + i32(p.pt)) / p.sh + 1u, p.oh);
    let last_x = min(u32(ix + i32(p.pl)) / p.sw + 1u, p.ow);
    for (var oy = first_window(u32(iy), p.kh, p.sh, 1u, p.pt); oy < last_y; oy = oy + 1u) {
        let y0 = i32(oy * p.sh) - i32(p.pt);
        let y1p = min(y0 + i32(p.kh), i32(p.h + p.pb));
        if (iy < y0 || iy >= y1p) { continue; }
        for (var ox = first_window(u32(ix), p.kw, p.sw, 1u, p.pl); ox < last_x; ox = ox + 1u) {
            let x0 = i32(ox * p.sw) - i32(p.pl);
            let x1p = min(x0 + i32(p.kw), i32(p.w + p.pr));
            if (ix < x0 || ix >= x1p) { continue; }
            // The forward kernel's count, for this window.
            var count = (min(y1p, i32(p.h)) - max(y0, 0)) * (min(x1p, i32(p.w)) - max(x0, 0));
            if (p.count_include_pad != 0u) { count = (y1p - y0) * (x1p - x0); }
            if (count > 0) { sum = sum + dy[(ch * p.oh + oy) * p.ow + ox] / f32(count); }
        }
    }
    store(i, sum);
}

@compute @workgroup_size(64)
fn global_avg_pool_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    let plane = p.h * p.w;
    if (i >= p.c * plane) { return; }
    store(i, dy[i / plane] / f32(plane));
}
