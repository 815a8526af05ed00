// Backward of the ops that map values one to one: a ReLU left as its own node (its mask from
// the forward output y), a copy (a Concat's channel slice, a Reshape, an Add's operand of the
// output's shape), and a per-channel scale (BatchNorm at inference). `accumulate` adds to
// what an earlier consumer of the same value left in dx.

struct Params {
    n: u32, off: u32, mode: u32, accumulate: u32,
    c: u32, plane: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> aux: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn store(i: u32, v: f32) {
    if (p.accumulate != 0u) { dx[i] = dx[i] + v; } else { dx[i] = v; }
}

// aux: the ReLU's forward output, read from `off`; mode 2 is guided.
@compute @workgroup_size(64)
fn relu_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    var g = dy[i];
    if (aux[p.off + i] <= 0.0 || (p.mode == 2u && g <= 0.0)) { g = 0.0; }
    store(i, g);
}

// dy read from `off`: a Concat input's slice of the Concat's gradient.
@compute @workgroup_size(64)
fn copy_from(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    store(i, dy[p.off + i]);
}

// aux: the per-channel scale.
@compute @workgroup_size(64)
fn scale_channels(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    store(i, dy[i] * aux[(i / p.plane) % p.c]);
}
