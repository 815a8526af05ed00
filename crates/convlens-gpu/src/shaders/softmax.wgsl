// Softmax over rows (opset < 13, or the last axis) and along a middle axis (opset >= 13).

struct Params {
    rows: u32, row_len: u32, plane: u32, _p: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

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
    let i = flat_index(gid);
    if (i >= p.rows * p.plane) { return; }
    let base = (i / p.plane) * p.row_len * p.plane + i % p.plane;
    var m = -3.402823e38;
    for (var k = 0u; k < p.row_len; k = k + 1u) { m = max(m, x[base + k * p.plane]); }
    var sum = 0.0;
    for (var k = 0u; k < p.row_len; k = k + 1u) { sum = sum + exp(x[base + k * p.plane] - m); }
    for (var k = 0u; k < p.row_len; k = k + 1u) { y[base + k * p.plane] = exp(x[base + k * p.plane] - m) / sum; }
}
