// Local response normalisation across channels (AlexNet, GoogLeNet), one invocation per value.

struct Params {
    n: u32, c: u32, plane: u32, size: u32,
    alpha: f32, beta: f32, bias: f32, _p: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// ONNX LRN: channels [c - floor((size-1)/2), c + ceil((size-1)/2)].
@compute @workgroup_size(64)
fn lrn(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid);
    if (i >= p.n) { return; }
    // One image after another: i's channel within its image, and where that image starts.
    let ch = (i / p.plane) % p.c;
    let px = i % p.plane;
    let img = i - (ch * p.plane + px);
    let before = (p.size - 1u) / 2u;
    let after = p.size - 1u - before;
    let lo = select(0u, ch - before, ch >= before);
    let hi = min(ch + after, p.c - 1u);
    var sq = 0.0;
    for (var k = lo; k <= hi; k = k + 1u) {
        let v = x[img + k * p.plane + px];
        sq = sq + v * v;
    }
    y[i] = x[i] / pow(p.bias + p.alpha / f32(p.size) * sq, p.beta);
}
