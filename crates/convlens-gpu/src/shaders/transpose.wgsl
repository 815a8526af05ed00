// Axes permuted, up to rank 6 (ShuffleNet's channel shuffle is a rank-5 transpose): output
// element i, split into its indices over the output dims (d0..d5), reads the input at the sum
// of index times step, where step k is the input stride of the axis that output axis k takes.
// The backward pass runs it with the inverse permutation, adding to the gradient when `acc`.

struct Params {
    n: u32, acc: u32, d1: u32, d2: u32,
    d3: u32, d4: u32, d5: u32, s0: u32,
    s1: u32, s2: u32, s3: u32, s4: u32,
    s5: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    var r = i;
    let i5 = r % p.d5; r = r / p.d5;
    let i4 = r % p.d4; r = r / p.d4;
    let i3 = r % p.d3; r = r / p.d3;
    let i2 = r % p.d2; r = r / p.d2;
    let i1 = r % p.d1; r = r / p.d1;
    let v = x[r * p.s0 + i1 * p.s1 + i2 * p.s2 + i3 * p.s3 + i4 * p.s4 + i5 * p.s5];
    if (p.acc != 0u) {
        y[i] = y[i] + v;
    } else {
        y[i] = v;
    }
}
