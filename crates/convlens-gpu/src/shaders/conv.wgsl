// Convolution as an implicit GEMM: out[oc, p] = sum_k W[oc, k] * im2col[k, p], with k over
// (input channel, ky, kx) and p over output pixels. A 16x16 workgroup computes a 16-channel x
// 16-pixel tile, staging 16-deep slices of the weights and of the gathered input in
// workgroup memory. Bias and ReLU are fused; the output can be a channel slice of a larger
// buffer, so Inception branches write straight into their concatenation. A batch runs one
// image per dispatch: x_base and y_base are where the image starts in x and y.

struct Params {
    c_in: u32, h: u32, w: u32, m: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    sh: u32, sw: u32, pt: u32, pl: u32,
    dh: u32, dw: u32, group: u32, relu: u32,
    out_c_offset: u32, has_bias: u32, x_base: u32, y_base: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
// The same binding as `conv_direct` reads it: in blocks of 8 output channels, [m/8][k][8]
// (`ops::conv::by_blocks_of_8`), so one step's 8 weights are two vec4 loads (one of packed
// halves with f16 weights, `f16_weights`). Entry points that read `wt` never read this, so the
// two declarations never meet in one pipeline.
@group(0) @binding(1) var<storage, read> wt8: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// Weights are read only through these two, so the f16-weight variant (see `f16_weights` in
// plan/pipelines.rs) changes the bindings' element types and these lines alone.
fn weight(i: u32) -> f32 { return wt[i]; }
fn weights8(at: u32) -> array<vec4<f32>, 2> { return array<vec4<f32>, 2>(wt8[2u * at], wt8[2u * at + 1u]); }

const T: u32 = 16u;
var<workgroup> a_tile: array<array<f32, 16>, 16>; // [oc][k]
var<workgroup> b_tile: array<array<f32, 16>, 16>; // [k][pixel]

// Where output pixel `pix`'s window starts in the input (row, column; may be negative, in
// the padding). The tiled kernels work this out once per invocation, not once per value they
// gather: integer division is tens of instructions on a GPU.
fn window(pix: u32) -> vec2<i32> {
    let oy = pix / p.ow;
    return vec2<i32>(i32(oy * p.sh) - i32(p.pt), i32((pix - oy * p.ow) * p.sw) - i32(p.pl));
}

// Input value k of the im2col column whose window starts at `at`: k runs over (channel from
// c0, ky, kx). A 1x1 kernel needs no division at all.
fn gather(k: u32, at: vec2<i32>, c0: u32) -> f32 {
    let khw = p.kh * p.kw;
    var c = k;
    var ky = 0u;
    var kx = 0u;
    if (khw != 1u) {
        c = k / khw;
        let r = k - c * khw;
        ky = r / p.kw;
        kx = r - ky * p.kw;
    }
    let iy = at.x + i32(ky * p.dh);
    let ix = at.y + i32(kx * p.dw);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return 0.0;
    }
    return x[p.x_base + ((c0 + c) * p.h + u32(iy)) * p.w + u32(ix)];
}

fn store(oc: u32, pix: u32, acc: f32) {
    var v = acc;
    if (p.has_bias != 0u) { v = v + bias[oc]; }
    if (p.relu != 0u) { v = max(v, 0.0); }
    y[p.y_base + (p.out_c_offset + oc) * p.oh * p.ow + pix] = v;
}

// group == 1: tiled.
@compute @workgroup_size(16, 16)
fn conv_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let npix = p.oh * p.ow;
    let pix = wg.x * T + lid.x;
    let oc = wg.y * T + lid.y;
    let kdim = p.c_in * p.kh * p.kw;
    let at = window(pix);
    var acc = 0.0;
    for (var k0 = 0u; k0 < kdim; k0 = k0 + T) {
        // Thread (lx, ly) loads weight (oc row ly, k lx) and input (k ly, pixel lx).
        let ka = k0 + lid.x;
        let oc_a = wg.y * T + lid.y;
        a_tile[lid.y][lid.x] = select(0.0, weight(oc_a * kdim + ka), oc_a < p.m && ka < kdim);
        let kb = k0 + lid.y;
        b_tile[lid.y][lid.x] = select(0.0, gather(kb, at, 0u), kb < kdim && pix < npix);
        workgroupBarrier();
        for (var k = 0u; k < T; k = k + 1u) {
            acc = acc + a_tile[lid.y][k] * b_tile[k][lid.x];
        }
        workgroupBarrier();
    }
    if (oc < p.m && pix < npix) {
        store(oc, pix, acc);
    }
}

// group == 1 on layers with >= 64 output channels: a 64-channel x 64-pixel tile per
// workgroup, each invocation accumulating a 4x4 block in registers (channels ty + 16i, pixels
// tx + 16j), so every value read from workgroup memory feeds four multiply-adds, not one.
var<workgroup> a_big: array<array<f32, 16>, 64>; // [oc][k]
var<workgroup> b_big: array<array<f32, 64>, 16>; // [k][pixel]

@compute @workgroup_size(16, 16)
fn conv_tiled_4x4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let npix = p.oh * p.ow;
    let kdim = p.c_in * p.kh * p.kw;
    let p0 = wg.x * 64u;
    let oc0 = wg.y * 64u;
    let t = lid.y * 16u + lid.x;
    // The one pixel this invocation gathers for (e % 64 is the same for every r below).
    let pix = p0 + t % 64u;
    let at = window(pix);
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < kdim; k0 = k0 + T) {
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = t + 256u * r;
            let oc = oc0 + e / 16u;
            let ka = k0 + e % 16u;
            a_big[e / 16u][e % 16u] = select(0.0, weight(oc * kdim + ka), oc < p.m && ka < kdim);
            let kb = k0 + e / 64u;
            b_big[e / 64u][e % 64u] = select(0.0, gather(kb, at, 0u), kb < kdim && pix < npix);
        }
        workgroupBarrier();
        for (var k = 0u; k < T; k = k + 1u) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a[i] = a_big[lid.y + 16u * i][k];
                b[i] = b_big[k][lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i][j] = acc[i][j] + a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        let oc = oc0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let pix = p0 + lid.x + 16u * j;
            if (oc < p.m && pix < npix) {
                store(oc, pix, acc[i][j]);
            }
        }
    }
}

// Grouped and depthwise convolutions: one invocation per output value.
@compute @workgroup_size(64)
fn conv_grouped(@builtin(global_invocation_id) gid: vec3<u32>) {
    let npix = p.oh * p.ow;
    let i = flat_index(gid);
    if (i >= p.m * npix) { return; }
    let oc = i / npix;
    let pix = i % npix;
    let cg = p.c_in / p.group;
    let mg = p.m / p.group;
    let c0 = (oc / mg) * cg;
    let kdim = cg * p.kh * p.kw;
    let at = window(pix);
    var acc = 0.0;
    for (var k = 0u; k < kdim; k = k + 1u) {
        acc = acc + weight(oc * kdim + k) * gather(k, at, c0);
    }
    store(oc, pix, acc);
}

// group == 1 on a software GPU (SwiftShader, lavapipe), which runs invocations as SIMD lanes:
// there a barrier switches every lane group's coroutine, a workgroup-memory read is a per-lane
// gather, and a private array indexed in a loop lives in memory, so this kernel has none of
// them; what it costs is about one per-lane load each, so each invocation keeps 4 pixels x 8
// channels in eight vec4 registers and loads 4 inputs and the 8 channels' weights, laid out
// side by side (`weights8`), per 32 multiply-adds. Lanes hold consecutive pixels (a pointwise
// or stride-1 row is then one vector load), a workgroup shares its 8 output channels (a weight
// is then the same address for all lanes), and (channel, ky, kx) are walked without dividing.
fn tap(ic: u32, iy: i32, ix: i32) -> f32 {
    if (iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w)) {
        return x[p.x_base + (ic * p.h + u32(iy)) * p.w + u32(ix)];
    }
    return 0.0;
}

fn store8(oc0: u32, px: u32, npix: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (px >= npix) { return; }
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (oc0 + i < p.m) { store(oc0 + i, px, lo[i]); }
        if (oc0 + 4u + i < p.m) { store(oc0 + 4u + i, px, hi[i]); }
    }
}

// DIRECT_LANES invocations a workgroup, 4 pixels each (DIRECT_LANES apart) x 8 channels: 64
// pixels, so a 13x13 map fills 88% of its lanes.
const DIRECT_LANES: u32 = 16u;

@compute @workgroup_size(16)
fn conv_direct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let npix = p.oh * p.ow;
    let kdim = p.c_in * p.kh * p.kw;
    let plane = p.h * p.w;
    let oc0 = wg.y * 8u;
    // Lanes past the last pixel compute the last one again and store nothing.
    let pa = wg.x * 4u * DIRECT_LANES + lid.x;
    let last = npix - 1u;
    let q = vec4<u32>(min(pa, last), min(pa + DIRECT_LANES, last), min(pa + 2u * DIRECT_LANES, last), min(pa + 3u * DIRECT_LANES, last));
    // This workgroup's block of weights, in steps of (k, 8 channels).
    let blk = wg.y * kdim;
    // acc<pixel><channels 0-3 | 4-7>
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0);
    var c0 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0);
    var d0 = vec4<f32>(0.0); var d1 = vec4<f32>(0.0);
    if (p.kh * p.kw == 1u && p.sh == 1u && p.sw == 1u && p.pt == 0u && p.pl == 0u) {
        for (var k = 0u; k < kdim; k = k + 1u) {
            let base = p.x_base + k * plane;
            let xv = vec4<f32>(x[base + q.x], x[base + q.y], x[base + q.z], x[base + q.w]);
            let w = weights8(blk + k);
            a0 = fma(w[0], vec4<f32>(xv.x), a0); a1 = fma(w[1], vec4<f32>(xv.x), a1);
            b0 = fma(w[0], vec4<f32>(xv.y), b0); b1 = fma(w[1], vec4<f32>(xv.y), b1);
            c0 = fma(w[0], vec4<f32>(xv.z), c0); c1 = fma(w[1], vec4<f32>(xv.z), c1);
            d0 = fma(w[0], vec4<f32>(xv.w), d0); d1 = fma(w[1], vec4<f32>(xv.w), d1);
        }
    } else {
        let y0 = vec4<i32>((q / p.ow) * p.sh) - i32(p.pt);
        let x0 = vec4<i32>((q % p.ow) * p.sw) - i32(p.pl);
        var k = 0u;
        for (var ic = 0u; ic < p.c_in; ic = ic + 1u) {
            for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
                let iy = y0 + i32(ky * p.dh);
                for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
                    let ix = x0 + i32(kx * p.dw);
                    let xv = vec4<f32>(tap(ic, iy.x, ix.x), tap(ic, iy.y, ix.y), tap(ic, iy.z, ix.z), tap(ic, iy.w, ix.w));
                    let w = weights8(blk + k);
                    a0 = fma(w[0], vec4<f32>(xv.x), a0); a1 = fma(w[1], vec4<f32>(xv.x), a1);
                    b0 = fma(w[0], vec4<f32>(xv.y), b0); b1 = fma(w[1], vec4<f32>(xv.y), b1);
                    c0 = fma(w[0], vec4<f32>(xv.z), c0); c1 = fma(w[1], vec4<f32>(xv.z), c1);
                    d0 = fma(w[0], vec4<f32>(xv.w), d0); d1 = fma(w[1], vec4<f32>(xv.w), d1);
                    k = k + 1u;
                }
            }
        }
    }
    store8(oc0, pa, npix, a0, a1);
    store8(oc0, pa + DIRECT_LANES, npix, b0, b1);
    store8(oc0, pa + 2u * DIRECT_LANES, npix, c0, c1);
    store8(oc0, pa + 3u * DIRECT_LANES, npix, d0, d1);
}
