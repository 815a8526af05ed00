// ReLU left as its own node (a ReLU that follows a Conv or Gemm is fused into their kernels),
// and Clip (MobileNet v2's ReLU6): values held to [lo, hi].

struct Params {
    n: u32, _p0: u32, lo: f32, hi: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    y[i] = max(x[i], 0.0);
}

@compute @workgroup_size(64)
fn clip(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    y[i] = min(max(x[i], p.lo), p.hi);
}
