// General small matrix product for Gemm and MatMul shapes the fully connected kernel does not
// take (a constant A, transposed A, a dynamic B, M > 1): Y = alpha * A' B' + beta * C, with A'
// and B' read through (row, column) strides so transposes cost nothing, and C broadcast the
// same way. One invocation per output; these layers are small.

struct Params {
    m: u32, n: u32, k: u32, relu: u32,
    a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
    c_rs: u32, c_cs: u32, has_c: u32, a_base: u32,
    alpha: f32, beta: f32, b_base: u32, y_base: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.m * p.n) { return; }
    let row = i / p.n;
    let col = i % p.n;
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk = kk + 1u) {
        acc = acc + a[p.a_base + row * p.a_rs + kk * p.a_cs] * b[p.b_base + kk * p.b_rs + col * p.b_cs];
    }
    var v = p.alpha * acc;
    if (p.has_c != 0u) { v = v + p.beta * c[row * p.c_rs + col * p.c_cs]; }
    if (p.relu != 0u) { v = max(v, 0.0); }
    y[p.y_base + i] = v;
}
