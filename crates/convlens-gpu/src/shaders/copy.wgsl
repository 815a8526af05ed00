// Copies a tensor into a slice of another: concatenation inputs that could not be written in
// place (along any axis), and reshapes whose input could not be aliased.

struct Params {
    n: u32, in_row: u32, out_row: u32, offset: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// x, as rows of in_row values, into y's rows of out_row values at `offset` within each.
@compute @workgroup_size(64)
fn copy_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    let row = i / p.in_row;
    y[row * p.out_row + p.offset + i % p.in_row] = x[i];
}
