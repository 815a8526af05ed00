// Copies a tensor into a channel slice of another: concatenation inputs that could not be
// written in place, and reshapes whose input could not be aliased.

struct Params {
    n: u32, plane: u32, out_c_offset: u32, _p: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// x (c channels of `plane`) into channels [offset, offset + c) of y.
@compute @workgroup_size(64)
fn copy_channels(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    y[p.out_c_offset * p.plane + i] = x[i];
}
