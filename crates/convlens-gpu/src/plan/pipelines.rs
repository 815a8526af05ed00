//! Compute pipelines, made on first use: a kernel is a (file, entry point) pair that the op
//! family owning it names next to its `Params`; each file is compiled once per model, in the
//! weight precision the plan chose.

use crate::SHADERS;

/// One WGSL entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kernel {
    pub file: &'static str,
    pub entry: &'static str,
}

/// Kernel files whose weights `WeightPrecision::F16` stores as f16.
pub const F16_WEIGHT_FILES: &[&str] = &["conv.wgsl", "fc.wgsl", "conv_back.wgsl", "fc_back.wgsl"];

/// The f16-weight variant of a kernel file: weights bound as `array<f16>` (and, where a kernel
/// reads eight side by side, as packed halves) and widened in the accessors every kernel reads
/// them through. Derived rather than kept as a second copy of each kernel; a test
/// validates both variants with naga.
pub fn f16_weights(src: &str) -> String {
    const DECL: &str = "var<storage, read> wt: array<f32>;";
    const READ: &str = "fn weight(i: u32) -> f32 { return wt[i]; }";
    // Eight weights side by side (`conv_direct`): 32 bytes as two vec4s; as halves, 16 bytes
    // read as one vec4 of u32 and unpacked (a vec4<f16> load per four ran SqueezeNet 1.6x slower
    // on lavapipe; `bitcast<vec2<f16>>` of the u32s gave wrong weights there).
    const DECL8: &str = "var<storage, read> wt8: array<vec4<f32>>;";
    const READ8: &str = "fn weights8(at: u32) -> array<vec4<f32>, 2> { return array<vec4<f32>, 2>(wt8[2u * at], wt8[2u * at + 1u]); }";
    const READ8_F16: &str = "fn weights8(at: u32) -> array<vec4<f32>, 2> { let h = wt8[at]; return array<vec4<f32>, 2>(vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y)), vec4<f32>(unpack2x16float(h.z), unpack2x16float(h.w))); }";
    assert!(src.matches(DECL).count() == 1 && src.matches(READ).count() == 1, "kernel without the weight accessor");
    assert!(src.matches(DECL8).count() == src.matches(READ8).count(), "side-by-side weights without their accessor");
    let src = src
        .replace(DECL, "var<storage, read> wt: array<f16>;")
        .replace(READ, "fn weight(i: u32) -> f32 { return f32(wt[i]); }")
        .replace(DECL8, "var<storage, read> wt8: array<vec4<u32>>;")
        .replace(READ8, READ8_F16);
    format!("enable f16;\n{src}")
}

/// The pipelines a model has made so far, by kernel.
pub(crate) struct Pipelines {
    f16: bool,
    modules: Vec<(&'static str, wgpu::ShaderModule)>,
    made: Vec<(Kernel, wgpu::ComputePipeline)>,
}

impl Pipelines {
    pub fn new(f16: bool) -> Self {
        Pipelines { f16, modules: Vec::new(), made: Vec::new() }
    }

    /// The index of `kernel`'s pipeline, made now if it is the first use.
    pub fn index(&mut self, device: &wgpu::Device, kernel: Kernel) -> usize {
        if let Some(i) = self.made.iter().position(|(k, _)| *k == kernel) {
            return i;
        }
        let module = match self.modules.iter().position(|(f, _)| *f == kernel.file) {
            Some(m) => &self.modules[m].1,
            None => {
                let src = SHADERS.iter().find(|(f, _)| *f == kernel.file).map(|(_, s)| *s).unwrap_or_else(|| panic!("no kernel file {}", kernel.file));
                let src: std::borrow::Cow<str> = if self.f16 && F16_WEIGHT_FILES.contains(&kernel.file) { f16_weights(src).into() } else { src.into() };
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(kernel.file), source: wgpu::ShaderSource::Wgsl(src) });
                self.modules.push((kernel.file, module));
                &self.modules.last().expect("just pushed").1
            }
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: None,
            module,
            entry_point: Some(kernel.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.made.push((kernel, pipeline));
        self.made.len() - 1
    }

    pub fn get(&self, index: usize) -> &wgpu::ComputePipeline {
        &self.made[index].1
    }

    /// The pipelines in index order; the shader modules are dropped (pipelines keep what they need).
    pub fn finish(self) -> Vec<(Kernel, wgpu::ComputePipeline)> {
        self.made
    }
}
