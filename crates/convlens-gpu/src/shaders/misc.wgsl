// Element-wise and small ops: ReLU, LRN across channels, copy into a channel slice (for
// concatenation inputs that could not be written in place), softmax over rows.

struct Params {
    n: u32, c: u32, plane: u32, size: u32,
    alpha: f32, beta: f32, bias: f32, relu: u32,
    _unused: u32, out_c_offset: u32, rows: u32, row_len: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * 65535u * 64u;
}

@compute @workgroup_size(64)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n) { return; }
    y[i] = max(x[i], 0.0);
}

// ONNX LRN: channels [c - floor((size-1)/2), c + ceil((size-1)/2)].
@compute @workgroup_size(64)
fn lrn(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n) { return; }
    let ch = i / p.plane;
    let px = i % p.plane;
    let before = (p.size - 1u) / 2u;
    let after = p.size - 1u - before;
    let lo = select(0u, ch - before, ch >= before);
    let hi = min(ch + after, p.c - 1u);
    var sq = 0.0;
    for (var k = lo; k <= hi; k = k + 1u) {
        let v = x[k * p.plane + px];
        sq = sq + v * v;
    }
    y[i] = x[i] / pow(p.bias + p.alpha / f32(p.size) * sq, p.beta);
}

// x (c channels of `plane`) into channels [offset, offset + c) of y.
@compute @workgroup_size(64)
fn copy_channels(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n) { return; }
    y[p.out_c_offset * p.plane + i] = x[i];
}

var<workgroup> red: array<f32, 256>;

// One workgroup per row of `row_len` values.
@compute @workgroup_size(256)
fn softmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let base = wg.x * p.row_len;
    var m = -3.402823e38;
    for (var i = lid.x; i < p.row_len; i = i + 256u) { m = max(m, x[base + i]); }
    red[lid.x] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid.x < s) { red[lid.x] = max(red[lid.x], red[lid.x + s]); }
        workgroupBarrier();
    }
    let mx = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var i = lid.x; i < p.row_len; i = i + 256u) { sum = sum + exp(x[base + i] - mx); }
    red[lid.x] = sum;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid.x < s) { red[lid.x] = red[lid.x] + red[lid.x + s]; }
        workgroupBarrier();
    }
    let total = red[0];
    for (var i = lid.x; i < p.row_len; i = i + 256u) { y[base + i] = exp(x[base + i] - mx) / total; }
}

// Softmax along a middle axis (opset >= 13): `rows` outer blocks of `row_len` x `plane`
// values; one invocation per (outer, inner) pair walks the axis.
@compute @workgroup_size(64)
fn softmax_inner(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.rows * p.plane) { return; }
    let base = (i / p.plane) * p.row_len * p.plane + i % p.plane;
    var m = -3.402823e38;
    for (var k = 0u; k < p.row_len; k = k + 1u) { m = max(m, x[base + k * p.plane]); }
    var sum = 0.0;
    for (var k = 0u; k < p.row_len; k = k + 1u) { sum = sum + exp(x[base + k * p.plane] - m); }
    for (var k = 0u; k < p.row_len; k = k + 1u) { y[base + k * p.plane] = exp(x[base + k * p.plane] - m) / sum; }
}
