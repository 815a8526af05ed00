// Max and average pooling with ONNX padding, dilation (max), ceil mode (sizes come from the
// host) and count_include_pad; global average pooling. One invocation per output value; the
// output may be a channel slice of a concatenation.

struct Params {
    c: u32, h: u32, w: u32, oh: u32,
    ow: u32, kh: u32, kw: u32, sh: u32,
    sw: u32, pt: u32, pl: u32, pb: u32,
    pr: u32, dh: u32, dw: u32, count_include_pad: u32,
    out_c_offset: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn max_pool(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    let n = p.c * p.oh * p.ow;
    if (i >= n) { return; }
    let ch = i / (p.oh * p.ow);
    let oy = (i / p.ow) % p.oh;
    let ox = i % p.ow;
    var best = -3.402823e38;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let iy = i32(oy * p.sh + ky * p.dh) - i32(p.pt);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ix = i32(ox * p.sw + kx * p.dw) - i32(p.pl);
            if (ix < 0 || ix >= i32(p.w)) { continue; }
            best = max(best, x[(ch * p.h + u32(iy)) * p.w + u32(ix)]);
        }
    }
    y[(p.out_c_offset + ch) * p.oh * p.ow + oy * p.ow + ox] = best;
}

@compute @workgroup_size(64)
fn avg_pool(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    let n = p.c * p.oh * p.ow;
    if (i >= n) { return; }
    let ch = i / (p.oh * p.ow);
    let oy = (i / p.ow) % p.oh;
    let ox = i % p.ow;
    let y0 = i32(oy * p.sh) - i32(p.pt);
    let x0 = i32(ox * p.sw) - i32(p.pl);
    // The window clipped to the padded input (count_include_pad) and to the input itself.
    let y1p = min(y0 + i32(p.kh), i32(p.h + p.pb));
    let x1p = min(x0 + i32(p.kw), i32(p.w + p.pr));
    let ya = max(y0, 0);
    let xa = max(x0, 0);
    let yb = min(y1p, i32(p.h));
    let xb = min(x1p, i32(p.w));
    var sum = 0.0;
    for (var iy = ya; iy < yb; iy = iy + 1) {
        for (var ix = xa; ix < xb; ix = ix + 1) {
            sum = sum + x[(ch * p.h + u32(iy)) * p.w + u32(ix)];
        }
    }
    var count = (yb - ya) * (xb - xa);
    if (p.count_include_pad != 0u) {
        count = (y1p - y0) * (x1p - x0);
    }
    var v = 0.0;
    if (count > 0) { v = sum / f32(count); }
    y[(p.out_c_offset + ch) * p.oh * p.ow + oy * p.ow + ox] = v;
}

@compute @workgroup_size(64)
fn global_avg_pool(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ch = flat_index(gid);
    if (ch >= p.c) { return; }
    let n = p.h * p.w;
    var sum = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        sum = sum + x[ch * n + i];
    }
    y[p.out_c_offset + ch] = sum / f32(n);
}
