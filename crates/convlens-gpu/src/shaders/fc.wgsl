// Fully connected at batch 1: y[n] = alpha * dot(x, W[n, :]) + bias[n], optional ReLU. W is
// bound in row chunks (`n0` is the chunk's first row) so a weight larger than the device's
// maxStorageBufferBindingSize (VGG16's fc6: 411 MB) runs as several dispatches.

struct Params {
    k: u32, rows: u32, n0: u32, relu: u32,
    alpha: f32, has_bias: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// Weights are read only through this, so the f16-weight variant (see `f16_weights` in
// plan/pipelines.rs) changes the binding's element type and this line alone.
fn weight(i: u32) -> f32 { return wt[i]; }

var<workgroup> part: array<f32, 64>;

// One workgroup per output row: 64 invocations stride over k, then reduce.
@compute @workgroup_size(64)
fn fc(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * 65535u;
    if (r >= p.rows) { return; }
    var s = 0.0;
    for (var i = lid.x; i < p.k; i = i + 64u) {
        s = s + x[i] * weight(r * p.k + i);
    }
    part[lid.x] = s;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st = st >> 1u) {
        if (lid.x < st) { part[lid.x] = part[lid.x] + part[lid.x + st]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        let n = p.n0 + r;
        var v = p.alpha * part[0];
        if (p.has_bias != 0u) { v = v + bias[n]; }
        if (p.relu != 0u) { v = max(v, 0.0); }
        y[n] = v;
    }
}
