//! What a channel looks for: an input optimized to maximize one channel's mean activation, as in
//! Olah et al., "Feature Visualization" (Distill 2017). The image is parameterized in a
//! decorrelated space (a Fourier spectrum scaled by 1/frequency per colour, mixed by the
//! ImageNet colour correlation, through a sigmoid), jittered, scaled and rotated a little at
//! every step (transformation robustness), and climbed with Adam from a seeded start, so a
//! run is reproducible. The model's part (forward, then backward to the input) is a closure:
//! the CLI runs it on an `Engine` with `grad::backward`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Preprocess, ValueId};
use crate::tensor::Tensor;

/// ImageNet's colour correlation, square-rooted (Lucid's `color_correlation_svd_sqrt`).
const COLOR_SQRT: [[f32; 3]; 3] = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub steps: usize,
    pub seed: u64,
    /// Adam's step size on the spectrum.
    pub lr: f32,
    /// Random translation, up to this many pixels each way.
    pub jitter: usize,
    /// Random scale in [1 - scale, 1 + scale].
    pub scale: f32,
    /// Random rotation, up to this many degrees each way.
    pub rotate_deg: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { steps: 256, seed: 0, lr: 0.05, jitter: 8, scale: 0.05, rotate_deg: 5.0 }
    }
}

/// Where a channel's value is made before its ReLU: the ReLU's input, through a concat to the
/// branch that holds the channel (in a graph with its ReLUs split out, `Graph::unfused`). A
/// channel that is 0 everywhere after its ReLU has no gradient; before it, it does (Lucid
/// visualizes InceptionV1's pre-ReLU tensors for the same reason).
pub fn pre_relu(graph: &Graph, v: ValueId, channel: usize) -> (ValueId, usize) {
    let Some(node) = graph.producers()[v].map(|p| &graph.nodes[p]) else { return (v, channel) };
    match &node.op {
        Op::Relu => (node.inputs[0], channel),
        Op::Concat { axis: 1 } => {
            let mut offset = 0;
            for &input in &node.inputs {
                let c = graph.shape(input)[1];
                if channel < offset + c {
                    let (pv, pc) = pre_relu(graph, input, channel - offset);
                    return if pv == input { (v, channel) } else { (pv, pc) };
                }
                offset += c;
            }
            (v, channel)
        }
        _ => (v, channel),
    }
}

/// One step's objective and its gradient with respect to the input, on any CPU backend: the
/// mean of `channel` of `value` ([1, C, H, W]) after a forward pass keeping every layer.
pub fn channel_objective(graph: &Graph, backend: &mut dyn crate::exec::Backend, value: ValueId, channel: usize, x: &Tensor) -> Result<(f32, Tensor)> {
    let shape = graph.shape(value).to_vec();
    let plane = shape[2] * shape[3];
    let out = crate::exec::run(graph, backend, x, &crate::exec::Keep::All, &mut |_, _| {})?;
    let kept = |v: ValueId| out.get(v);
    let get = crate::grad::explain::f32_source(graph, x, &kept);
    let a = get(value).ok_or_else(|| Error::Input("the layer was not kept".into()))?;
    let mean = a.data[channel * plane..(channel + 1) * plane].iter().sum::<f32>() / plane as f32;
    let mut seed = Tensor::zeros(&shape)?;
    seed.data[channel * plane..(channel + 1) * plane].fill(1.0 / plane as f32);
    let grads = crate::grad::backward(graph, &get, value, seed, None, &[], crate::grad::ReluRule::Plain)?;
    let g = match grads.get(&graph.input) {
        Some(g) => g.clone(),
        None => Tensor::zeros(graph.shape(graph.input))?,
    };
    Ok((mean, g))
}

/// A random similarity transform, as sampled for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    pub dy: f32,
    pub dx: f32,
    pub scale: f32,
    pub angle: f32,
}

impl Transform {
    pub const IDENTITY: Transform = Transform { dy: 0.0, dx: 0.0, scale: 1.0, angle: 0.0 };

    /// For each output pixel, the four input pixels it blends and their weights (bilinear,
    /// edges clamped): the transform and, scattered the other way, its adjoint.
    fn taps(&self, h: usize, w: usize) -> Vec<[(usize, f32); 4]> {
        let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
        let (s, c) = (self.angle.sin() / self.scale, self.angle.cos() / self.scale);
        let mut out = Vec::with_capacity(h * w);
        for y in 0..h {
            for x in 0..w {
                // Where this output pixel comes from: the inverse similarity about the centre.
                let (py, px) = (y as f32 - cy - self.dy, x as f32 - cx - self.dx);
                let sy = (c * py - s * px + cy).clamp(0.0, h as f32 - 1.0);
                let sx = (s * py + c * px + cx).clamp(0.0, w as f32 - 1.0);
                let (y0, x0) = (sy.floor() as usize, sx.floor() as usize);
                let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
                let (ty, tx) = (sy - y0 as f32, sx - x0 as f32);
                out.push([
                    (y0 * w + x0, (1.0 - ty) * (1.0 - tx)),
                    (y0 * w + x1, (1.0 - ty) * tx),
                    (y1 * w + x0, ty * (1.0 - tx)),
                    (y1 * w + x1, ty * tx),
                ]);
            }
        }
        out
    }
}

/// The optimized image and its optimizer state.
pub struct Visualizer {
    h: usize,
    w: usize,
    /// One spectrum per decorrelated colour, H x W each.
    spectrum: Vec<Complex32>,
    /// 1/frequency per coefficient, times the normalisation of the inverse FFT.
    scale: Vec<f32>,
    adam_m: Vec<Complex32>,
    adam_v: Vec<Complex32>,
    t: i32,
    rng: StdRng,
    settings: Settings,
    preprocess: Preprocess,
    fft: (Arc<dyn Fft<f32>>, Arc<dyn Fft<f32>>, Arc<dyn Fft<f32>>, Arc<dyn Fft<f32>>),
}

/// What one step saw: the objective on this step's transformed image.
/// A step between `begin_step` and `end_step`: the transform's taps and the image it rendered.
pub struct PendingStep {
    taps: Vec<[(usize, f32); 4]>,
    rgb: Vec<f32>,
}

pub type ObjectiveAndGrad<'a> = dyn FnMut(&Tensor) -> Result<(f32, Tensor)> + 'a;

impl Visualizer {
    /// For a model input of `shape` [1, 3, H, W] and its preprocessing.
    pub fn new(shape: &[usize], preprocess: Preprocess, settings: Settings) -> Result<Self> {
        let [1, 3, h, w] = shape[..] else { return Err(Error::Input(format!("feature visualization needs a [1, 3, H, W] image input, not {shape:?}"))) };
        let mut rng = StdRng::seed_from_u64(settings.seed);
        let normal = Normal::new(0.0f32, 0.01).unwrap();
        let spectrum = (0..3 * h * w).map(|_| Complex32::new(normal.sample(&mut rng), normal.sample(&mut rng))).collect();
        let norm = 1.0 / ((h * w) as f32).sqrt() / 4.0;
        let scale = (0..h * w)
            .map(|i| {
                let (fy, fx) = ((i / w).min(h - i / w) as f32 / h as f32, (i % w).min(w - i % w) as f32 / w as f32);
                let f = (fy * fy + fx * fx).sqrt().max(1.0 / h.max(w) as f32);
                norm / f
            })
            .collect();
        let mut planner = FftPlanner::new();
        let fft = (planner.plan_fft_forward(w), planner.plan_fft_inverse(w), planner.plan_fft_forward(h), planner.plan_fft_inverse(h));
        Ok(Visualizer {
            h,
            w,
            spectrum,
            scale,
            adam_m: vec![Complex32::new(0.0, 0.0); 3 * h * w],
            adam_v: vec![Complex32::new(0.0, 0.0); 3 * h * w],
            t: 0,
            rng,
            settings,
            preprocess,
            fft,
        })
    }

    /// A 2-D FFT of one H x W plane in place: rows, then columns.
    fn fft2(&self, plane: &mut [Complex32], inverse: bool) {
        let (h, w) = (self.h, self.w);
        let (row, col) = if inverse { (&self.fft.1, &self.fft.3) } else { (&self.fft.0, &self.fft.2) };
        for r in plane.chunks_mut(w) {
            row.process(r);
        }
        let mut column = vec![Complex32::new(0.0, 0.0); h];
        for x in 0..w {
            for y in 0..h {
                column[y] = plane[y * w + x];
            }
            col.process(&mut column);
            for y in 0..h {
                plane[y * w + x] = column[y];
            }
        }
    }

    /// The decorrelated planes: Re(IFFT(spectrum * scale)), [3, H*W].
    fn planes(&self) -> Vec<f32> {
        let n = self.h * self.w;
        let mut out = vec![0.0; 3 * n];
        for d in 0..3 {
            let mut buf: Vec<Complex32> = (0..n).map(|i| self.spectrum[d * n + i] * self.scale[i]).collect();
            self.fft2(&mut buf, true);
            for i in 0..n {
                out[d * n + i] = buf[i].re;
            }
        }
        out
    }

    /// RGB in 0..1, [3, H*W]: the planes mixed by the colour correlation, through a sigmoid.
    pub fn image(&self) -> Vec<f32> {
        let n = self.h * self.w;
        let x = self.planes();
        let m = color_matrix();
        let mut rgb = vec![0.0; 3 * n];
        for c in 0..3 {
            for i in 0..n {
                let v: f32 = (0..3).map(|d| m[c][d] * x[d * n + i]).sum();
                rgb[c * n + i] = 1.0 / (1.0 + (-v).exp());
            }
        }
        rgb
    }

    /// RGB pixels 0..255, H x W x 3 (for a PNG).
    pub fn rgb8(&self) -> Vec<u8> {
        let n = self.h * self.w;
        let rgb = self.image();
        let mut out = Vec::with_capacity(3 * n);
        for i in 0..n {
            for c in 0..3 {
                out.push((rgb[c * n + i] * 255.0).round().clamp(0.0, 255.0) as u8);
            }
        }
        out
    }

    /// The image as the model's input tensor (its preprocessing applied), untransformed.
    pub fn input(&self) -> Tensor {
        self.to_input(&self.image())
    }

    fn to_input(&self, rgb: &[f32]) -> Tensor {
        let (n, p) = (self.h * self.w, &self.preprocess);
        let mut data = vec![0.0; 3 * n];
        for c in 0..3 {
            let dst = if p.bgr { 2 - c } else { c };
            for i in 0..n {
                data[dst * n + i] = (rgb[c * n + i] * 255.0 * p.scale - p.mean[c]) / p.std[c];
            }
        }
        Tensor { shape: vec![1, 3, self.h, self.w], data }
    }

    fn sample_transform(&mut self) -> Transform {
        let s = &self.settings;
        let j = s.jitter as f32;
        let (dy, dx) = if s.jitter > 0 { (self.rng.random_range(-j..=j).round(), self.rng.random_range(-j..=j).round()) } else { (0.0, 0.0) };
        let scale = if s.scale > 0.0 { self.rng.random_range(1.0 - s.scale..=1.0 + s.scale) } else { 1.0 };
        let angle = if s.rotate_deg > 0.0 { self.rng.random_range(-s.rotate_deg..=s.rotate_deg).to_radians() } else { 0.0 };
        Transform { dy, dx, scale, angle }
    }

    /// The transformed image's input tensor, and d objective / d spectrum given the
    /// objective's gradient with respect to that tensor (`grad_of`).
    fn render(&self, t: &Transform) -> (Tensor, Vec<[(usize, f32); 4]>, Vec<f32>) {
        let n = self.h * self.w;
        let rgb = self.image();
        let taps = t.taps(self.h, self.w);
        let mut moved = vec![0.0; 3 * n];
        for c in 0..3 {
            for (i, tap) in taps.iter().enumerate() {
                moved[c * n + i] = tap.iter().map(|&(j, wt)| wt * rgb[c * n + j]).sum();
            }
        }
        (self.to_input(&moved), taps, rgb)
    }

    /// d objective / d spectrum from d objective / d the transformed input tensor.
    fn spectrum_grad(&self, g_input: &Tensor, taps: &[[(usize, f32); 4]], rgb: &[f32]) -> Vec<Complex32> {
        let (n, p) = (self.h * self.w, &self.preprocess);
        // Through the preprocessing, then the transform's adjoint (scatter the taps back).
        let mut g_rgb = vec![0.0f32; 3 * n];
        for c in 0..3 {
            let src = if p.bgr { 2 - c } else { c };
            let k = 255.0 * p.scale / p.std[c];
            for (i, tap) in taps.iter().enumerate() {
                let g = g_input.data[src * n + i] * k;
                for &(j, wt) in tap {
                    g_rgb[c * n + j] += wt * g;
                }
            }
        }
        // Through the sigmoid and the colour mix (its transpose).
        let m = color_matrix();
        let mut g_planes = vec![0.0f32; 3 * n];
        for c in 0..3 {
            for i in 0..n {
                let s = rgb[c * n + i];
                let g = g_rgb[c * n + i] * s * (1.0 - s);
                for d in 0..3 {
                    g_planes[d * n + i] += m[c][d] * g;
                }
            }
        }
        // Through Re(IFFT(S * scale)): d/dRe S + i d/dIm S = scale * FFT(g).
        let mut out = vec![Complex32::new(0.0, 0.0); 3 * n];
        for d in 0..3 {
            let mut buf: Vec<Complex32> = g_planes[d * n..(d + 1) * n].iter().map(|&g| Complex32::new(g, 0.0)).collect();
            self.fft2(&mut buf, false);
            for i in 0..n {
                out[d * n + i] = buf[i] * self.scale[i];
            }
        }
        out
    }

    /// One Adam step up the objective on a freshly transformed image; returns the objective.
    pub fn step(&mut self, objective: &mut ObjectiveAndGrad<'_>) -> Result<f32> {
        let (x, pending) = self.begin_step();
        let (value, g_input) = objective(&x)?;
        Ok(self.end_step(pending, value, &g_input))
    }

    /// `step` in two halves, for a caller whose objective is asynchronous (a GPU in a browser):
    /// the transformed input to evaluate, and what `end_step` needs to take the step.
    pub fn begin_step(&mut self) -> (Tensor, PendingStep) {
        let t = self.sample_transform();
        let (x, taps, rgb) = self.render(&t);
        (x, PendingStep { taps, rgb })
    }

    /// The Adam step from the objective's `value` and gradient `g_input` at `begin_step`'s input.
    pub fn end_step(&mut self, pending: PendingStep, value: f32, g_input: &Tensor) -> f32 {
        let PendingStep { taps, rgb } = pending;
        let g = self.spectrum_grad(g_input, &taps, &rgb);
        self.t += 1;
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let lr = self.settings.lr;
        let adam = |m: &mut f32, v: &mut f32, g: f32| -> f32 {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            lr * (*m / c1) / ((*v / c2).sqrt() + eps)
        };
        for ((s, gi), (m, v)) in self.spectrum.iter_mut().zip(&g).zip(self.adam_m.iter_mut().zip(self.adam_v.iter_mut())) {
            s.re += adam(&mut m.re, &mut v.re, gi.re);
            s.im += adam(&mut m.im, &mut v.im, gi.im);
        }
        value
    }
}

/// The colour correlation scaled so its largest column has norm 1 (as Lucid does).
fn color_matrix() -> [[f32; 3]; 3] {
    let max_norm = (0..3).map(|d| (0..3).map(|c| COLOR_SQRT[c][d] * COLOR_SQRT[c][d]).sum::<f32>().sqrt()).fold(0.0, f32::max);
    let mut m = COLOR_SQRT;
    for row in m.iter_mut() {
        for v in row.iter_mut() {
            *v /= max_norm;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// d (r . input(spectrum)) / d spectrum against central differences, through a
    /// non-trivial transform: the FFT adjoint, the colour mix, the sigmoid, the bilinear taps
    /// and the preprocessing are each in the chain.
    #[test]
    fn the_parameterization_gradient_matches_central_differences() {
        let mut v = Visualizer::new(&[1, 3, 6, 5], Preprocess::imagenet_rgb(), Settings::default()).unwrap();
        // A spectrum large enough that the sigmoid is not linear.
        let mut rng = StdRng::seed_from_u64(3);
        for s in v.spectrum.iter_mut() {
            *s = Complex32::new(rng.random_range(-40.0..40.0), rng.random_range(-40.0..40.0));
        }
        let t = Transform { dy: 1.0, dx: -1.0, scale: 1.04, angle: 0.07 };
        let (x, taps, rgb) = v.render(&t);
        let r = Tensor { shape: x.shape.clone(), data: (0..x.data.len()).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let g = v.spectrum_grad(&r, &taps, &rgb);
        let dot = |v: &Visualizer| -> f64 { v.render(&t).0.data.iter().zip(&r.data).map(|(a, b)| *a as f64 * *b as f64).sum() };
        let h = 1e-2f32;
        let mut worst = 0.0f64;
        let scale = g.iter().fold(1e-9f64, |m, c| m.max(c.re.abs() as f64).max(c.im.abs() as f64));
        for i in (0..v.spectrum.len()).step_by(7) {
            for part in 0..2 {
                let orig = v.spectrum[i];
                let bump = |s: &mut Complex32, d: f32| if part == 0 { s.re += d } else { s.im += d };
                bump(&mut v.spectrum[i], h);
                let up = dot(&v);
                v.spectrum[i] = orig;
                bump(&mut v.spectrum[i], -h);
                let down = dot(&v);
                v.spectrum[i] = orig;
                let numeric = (up - down) / (2.0 * h as f64);
                let analytic = if part == 0 { g[i].re } else { g[i].im } as f64;
                worst = worst.max((numeric - analytic).abs() / scale);
            }
        }
        // f32 rendering: central differences of step 1e-2 agree to ~1e-3 of the gradient's scale.
        assert!(worst < 1e-2, "parameterization gradient off by {worst:e}");
    }

    #[test]
    fn the_same_seed_gives_the_same_start_and_another_seed_does_not() {
        let a = Visualizer::new(&[1, 3, 8, 8], Preprocess::imagenet_rgb(), Settings { seed: 5, ..Default::default() }).unwrap();
        let b = Visualizer::new(&[1, 3, 8, 8], Preprocess::imagenet_rgb(), Settings { seed: 5, ..Default::default() }).unwrap();
        let c = Visualizer::new(&[1, 3, 8, 8], Preprocess::imagenet_rgb(), Settings { seed: 6, ..Default::default() }).unwrap();
        assert_eq!(a.input(), b.input());
        assert_ne!(a.input(), c.input());
    }
}
