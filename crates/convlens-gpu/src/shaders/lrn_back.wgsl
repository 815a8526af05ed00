// Backward of local response normalisation across channels (ONNX LRN: the window of channel c
// is [c - floor((size-1)/2), c + ceil((size-1)/2)]). With s_c = bias + alpha/size * sum of x^2
// over c's window and y_c = x_c s_c^-beta:
//   dx_j = dy_j s_j^-beta - 2 alpha/size beta x_j * sum over the c whose window holds j of
//          dy_c x_c s_c^(-beta-1).
// One invocation per value; each s is recomputed from x (size + 1 windows of size values).

struct Params {
    n: u32, c: u32, plane: u32, size: u32,
    alpha: f32, beta: f32, bias: f32, x_off: u32,
    accumulate: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn scale(ch: u32, px: u32) -> f32 {
    let before = (p.size - 1u) / 2u;
    let after = p.size - 1u - before;
    let lo = select(0u, ch - before, ch >= before);
    let hi = min(ch + after, p.c - 1u);
    var sq = 0.0;
    for (var k = lo; k <= hi; k = k + 1u) {
        let v = x[p.x_off + k * p.plane + px];
        sq = sq + v * v;
    }
    return p.bias + p.alpha / f32(p.size) * sq;
}

@compute @workgroup_size(64)
fn lrn_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    let j = i / p.plane;
    let px = i % p.plane;
    let before = (p.size - 1u) / 2u;
    let after = p.size - 1u - before;
    // The channels whose window holds j: [j - after, j + before].
    let lo = select(0u, j - after, j >= after);
    let hi = min(j + before, p.c - 1u);
    var sum = 0.0;
    for (var ch = lo; ch <= hi; ch = ch + 1u) {
        let s = scale(ch, px);
        let at = ch * p.plane + px;
        sum = sum + dy[at] * x[p.x_off + at] * pow(s, -p.beta) / s;
    }
    let xj = x[p.x_off + i];
    var v = dy[i] * pow(scale(j, px), -p.beta) - 2.0 * p.alpha / f32(p.size) * p.beta * xj * sum;
    if (p.accumulate != 0u) { v = v + dx[i]; }
    dx[i] = v;
}
