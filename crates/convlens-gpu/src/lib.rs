//! ConvLens on WebGPU through wgpu. The GPU crate knows nothing of the UI: it takes a core
//! `Graph`, plans it once (buffers, pipelines, bind groups, uniforms), and runs a forward pass
//! as one command encoder, reading back only the tensors asked for.
//!
//! Kernels live in `shaders/*.wgsl`, one file per family, loaded with `include_str!`; the
//! planner is `plan/` (memory, weights, pipelines, one file per op family, run, tiles).

mod plan;

use std::collections::HashMap;

use convlens_core::graph::ValueId;
use convlens_core::Tensor;

pub use plan::{backward_unsupported, f16_weights, ConvKernels, GpuModel, PlanOptions, Residency, Timing, WeightPrecision, F16_WEIGHT_FILES, PROGRESS_PARTS, PROGRESS_PART_MS};

/// Every kernel file as wgpu compiles it: the shared prelude (`shaders/prelude.wgsl`), then the file.
macro_rules! kernel_file {
    ($name:literal) => {
        ($name, concat!(include_str!("shaders/prelude.wgsl"), include_str!(concat!("shaders/", $name))))
    };
}

pub const SHADERS: &[(&str, &str)] = &[
    kernel_file!("conv.wgsl"),
    kernel_file!("pool.wgsl"),
    kernel_file!("relu.wgsl"),
    kernel_file!("lrn.wgsl"),
    kernel_file!("copy.wgsl"),
    kernel_file!("softmax.wgsl"),
    kernel_file!("fc.wgsl"),
    kernel_file!("viz.wgsl"),
    kernel_file!("add.wgsl"),
    kernel_file!("affine.wgsl"),
    kernel_file!("matmul.wgsl"),
    kernel_file!("conv_back.wgsl"),
    kernel_file!("pool_back.wgsl"),
    kernel_file!("lrn_back.wgsl"),
    kernel_file!("fc_back.wgsl"),
    kernel_file!("grad_misc.wgsl"),
    kernel_file!("transpose.wgsl"),
];

#[derive(Debug)]
pub struct GpuError(pub String);

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GpuError {}

pub type Result<T> = std::result::Result<T, GpuError>;

/// Words in an adapter's name (or a browser's adapter info) that mean a CPU emulation of a GPU.
pub const SOFTWARE_ADAPTERS: &[&str] = &["swiftshader", "llvmpipe", "lavapipe", "softpipe", "software", "microsoft basic render"];

/// An adapter and device with the limits the models need.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: String,
    /// A CPU emulation (SwiftShader, lavapipe): convolutions then take the kernel made for
    /// SIMD lanes (`conv_direct`). From wgpu's adapter info; the browser's worker, which asks
    /// the page's adapter more, may set it too; `PlanOptions::conv` overrides it.
    pub software: bool,
    /// Why the device was lost, once it has been (driver reset, tab in the background too long).
    lost: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Gpu {
    /// Whether this device can store weights as f16 (`WeightPrecision::F16`).
    pub fn has_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    /// The best adapter wgpu finds (`WGPU_BACKEND` may narrow it); an error, not a panic,
    /// when there is none.
    pub async fn new() -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError(format!("no WebGPU/Vulkan adapter: {e}")))?;
        let info = adapter.get_info();
        // Ask for what the adapter has: VGG16 needs large buffers, split by binding size anyway.
        let limits = adapter.limits();
        // Per-layer times from timestamp queries, and f16 weights, where the adapter has them.
        let features = adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("convlens"),
                required_limits: limits,
                required_features: features,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError(format!("cannot open the GPU device: {e}")))?;
        // Browsers may hide the adapter's name; the device type still tells a CPU emulation apart.
        let name = if info.name.is_empty() { "unnamed adapter".to_string() } else { info.name.clone() };
        let lost = std::sync::Arc::new(std::sync::Mutex::new(None));
        let on_lost = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = on_lost.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        // Errors outside an error scope would panic natively (wgpu's default); every call that
        // can fail has a scope, so anything else is logged, not fatal.
        device.on_uncaptured_error(std::sync::Arc::new(|e| log_error(&format!("uncaptured GPU error: {e}"))));
        let software = info.device_type == wgpu::DeviceType::Cpu || SOFTWARE_ADAPTERS.iter().any(|s| name.to_lowercase().contains(s));
        Ok(Gpu { device, queue, adapter: format!("{name}, {:?}", info.device_type), software, lost })
    }

    /// An error when the device has been lost, so callers fall back instead of waiting on it.
    pub fn check_lost(&self) -> Result<()> {
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(why) => Err(GpuError(format!("the GPU device was lost ({why})"))),
            None => Ok(()),
        }
    }
}

/// Output of one forward pass.
pub struct GpuRun {
    pub values: HashMap<ValueId, Tensor>,
    /// Wall time from submission to the readback being available.
    pub total_ms: f64,
    /// Milliseconds per graph node (0 for nodes that need no dispatch, e.g. an in-place
    /// Concat); empty unless the pass was timed.
    pub layer_ms: Vec<f64>,
    /// How `layer_ms` was measured.
    pub clock: Option<LayerClock>,
}

/// How per-layer GPU times were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerClock {
    /// Timestamp queries written at the start and end of each layer's compute pass.
    Timestamps,
    /// No timestamp queries on this adapter: each layer submitted alone and awaited, timed by
    /// the CPU clock (includes submission latency, so small layers read high).
    PerPass,
}

impl std::fmt::Display for LayerClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayerClock::Timestamps => "GPU timestamp queries",
            LayerClock::PerPass => "one submission per layer, CPU clock",
        })
    }
}

/// Plans `graph` on a new device: blocking, for native callers (CLI, tests).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_blocking(graph: &convlens_core::Graph, options: PlanOptions) -> Result<GpuModel> {
    pollster::block_on(async { GpuModel::plan_checked(Gpu::new().await?, graph, options).await })
}

fn log_error(msg: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys_console_error(msg);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{msg}");
}

#[cfg(target_arch = "wasm32")]
fn web_sys_console_error(msg: &str) {
    #[wasm_bindgen::prelude::wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = console, js_name = error)]
        fn console_error(s: &str);
    }
    console_error(msg);
}
