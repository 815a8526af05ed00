// Backward of a convolution to its input: dx = the transposed convolution of dy with the same
// weights (groups, strides, dilation, pads). One invocation per input value gathers every
// output it fed, so nothing is scattered and no atomics are needed. A ReLU fused into the
// forward conv is undone first: dy passes where the conv's output y was positive (and, guided,
// where dy is positive too).

struct Params {
    c_in: u32, h: u32, w: u32, m: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    sh: u32, sw: u32, pt: u32, pl: u32,
    dh: u32, dw: u32, group: u32, relu: u32,
    y_off: u32, accumulate: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// Weights are read only through this, so the f16-weight variant (see `f16_weights` in
// plan/pipelines.rs) changes the binding's element type and this line alone.
fn weight(i: u32) -> f32 { return wt[i]; }

// relu: 0 none, 1 the fused ReLU's mask, 2 guided.
fn through_relu(o: u32) -> f32 {
    let g = dy[o];
    if (p.relu == 0u) { return g; }
    if (y[p.y_off + o] <= 0.0 || (p.relu == 2u && g <= 0.0)) { return 0.0; }
    return g;
}

// The outputs along one axis that read input position `i` through kernel tap `k`:
// o * stride + k * dil - pad == i.
fn tap(i: u32, k: u32, stride: u32, dil: u32, pad: u32, len: u32) -> i32 {
    let t = i32(i + pad) - i32(k * dil);
    if (t < 0 || t % i32(stride) != 0) { return -1; }
    let o = t / i32(stride);
    if (o >= i32(len)) { return -1; }
    return o;
}

@compute @workgroup_size(64)
fn conv_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.c_in * p.h * p.w) { return; }
    let ci = i / (p.h * p.w);
    let iy = (i / p.w) % p.h;
    let ix = i % p.w;
    let cg = p.c_in / p.group;
    let mg = p.m / p.group;
    let g = ci / cg;
    let icg = ci % cg;
    var sum = 0.0;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let oy = tap(iy, ky, p.sh, p.dh, p.pt, p.oh);
        if (oy < 0) { continue; }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ox = tap(ix, kx, p.sw, p.dw, p.pl, p.ow);
            if (ox < 0) { continue; }
            let at = u32(oy) * p.ow + u32(ox);
            for (var oc = g * mg; oc < (g + 1u) * mg; oc = oc + 1u) {
                sum = sum + through_relu(oc * p.oh * p.ow + at) * weight(((oc * cg + icg) * p.kh + ky) * p.kw + kx);
            }
        }
    }
    if (p.accumulate != 0u) { sum = sum + dx[i]; }
    dx[i] = sum;
}
