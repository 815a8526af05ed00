// Backward of a fully connected layer at batch 1 to its input: dx[k] = alpha * sum over the
// rows n of dy[n] W[n, k], over one chunk of rows at a time (the chunks the forward pass
// binds: VGG16's fc6 spans several). A fused ReLU's mask comes from the forward output y.

struct Params {
    k: u32, rows: u32, n0: u32, relu: u32,
    alpha: f32, accumulate: u32, _p0: u32, _p1: u32,
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
@compute @workgroup_size(64)
fn fc_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = flat_index(gid);
    if (k >= p.k) { return; }
    var sum = 0.0;
    for (var r = 0u; r < p.rows; r = r + 1u) {
        let n = p.n0 + r;
        var g = dy[n];
        if (p.relu != 0u && (y[n] <= 0.0 || (p.relu == 2u && g <= 0.0))) { g = 0.0; }
        sum = sum + g * weight(r * p.k + k);
    }
    sum = p.alpha * sum;
    if (p.accumulate != 0u) { sum = sum + dx[k]; }
    dx[k] = sum;
}
