// A BatchNormalization that could not be folded into a conv, as a per-channel affine map
// (scale and shift precomputed at plan time from scale, bias, mean, var, epsilon).

struct Params {
    n: u32, c: u32, plane: u32, _p: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> scale: array<f32>;
@group(0) @binding(2) var<storage, read> shift: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn affine_channels(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    let ch = (i / p.plane) % p.c;
    y[i] = x[i] * scale[ch] + shift[ch];
}
