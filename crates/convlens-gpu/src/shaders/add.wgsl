// Element-wise Add and Mul with numpy broadcasting, up to rank 4: each input is read through strides
// that are 0 along its broadcast axes.

struct Params {
    n: u32, d1: u32, d2: u32, d3: u32,
    a0: u32, a1: u32, a2: u32, a3: u32,
    b0: u32, b1: u32, b2: u32, b3: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// Output index i -> the offsets it reads in a and in b, over dims (_, d1, d2, d3).
fn operands(i: u32) -> vec2<u32> {
    let i3 = i % p.d3;
    let i2 = (i / p.d3) % p.d2;
    let i1 = (i / (p.d3 * p.d2)) % p.d1;
    let i0 = i / (p.d3 * p.d2 * p.d1);
    return vec2<u32>(i0 * p.a0 + i1 * p.a1 + i2 * p.a2 + i3 * p.a3, i0 * p.b0 + i1 * p.b1 + i2 * p.b2 + i3 * p.b3);
}

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    let o = operands(i);
    y[i] = a[o.x] + b[o.y];
}

@compute @workgroup_size(64)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    let o = operands(i);
    y[i] = a[o.x] * b[o.y];
}
