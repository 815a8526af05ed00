//! `convlens`: the inference core from the command line, and its test bed.

mod commands;
mod explain;
mod images;
mod index;
mod models;
mod npy;
mod visualize;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "convlens", version, about = "Look inside the classic ImageNet CNNs: classify, inspect, dump and visualise layers, benchmark.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// CPU threads for the kernels (default: every core; 1 for onnxruntime's one-thread figures)
    #[arg(long, global = true, env = "CONVLENS_THREADS")]
    threads: Option<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    /// Scalar reference kernels (the test oracle; slow)
    Ref,
    /// Packed GEMM with SIMD for every conv, no Winograd
    Gemm,
    /// Packed GEMM with SIMD (AVX2+FMA when the CPU has it), Winograd for 3x3 stride-1 convs
    Cpu,
    /// WGSL kernels through wgpu on the best Vulkan adapter (lavapipe when there is no GPU)
    Webgpu,
    /// As webgpu, with conv and FC weights stored as f16 (half the memory; needs shader-f16)
    WebgpuF16,
}

/// Which kernels a GPU plan runs ungrouped convolutions with (`bench --gpu-conv`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GpuConvArg {
    /// Direct on a software adapter (lavapipe, SwiftShader), tiled on a GPU
    ForAdapter,
    /// Workgroup-memory tiles (what a GPU runs)
    Tiled,
    /// No workgroup memory, no barriers (what a CPU emulation runs)
    Direct,
}

impl GpuConvArg {
    pub fn kernels(self) -> convlens_gpu::ConvKernels {
        match self {
            GpuConvArg::ForAdapter => convlens_gpu::ConvKernels::ForAdapter,
            GpuConvArg::Tiled => convlens_gpu::ConvKernels::Tiled,
            GpuConvArg::Direct => convlens_gpu::ConvKernels::Direct,
        }
    }
}

impl BackendArg {
    pub fn engine_kind(self) -> convlens_engine::EngineKind {
        use convlens_engine::EngineKind;
        match self {
            BackendArg::Ref => EngineKind::Reference,
            BackendArg::Gemm => EngineKind::Gemm,
            BackendArg::Cpu => EngineKind::Cpu,
            BackendArg::Webgpu => EngineKind::WebGpu(convlens_gpu::WeightPrecision::F32),
            BackendArg::WebgpuF16 => EngineKind::WebGpu(convlens_gpu::WeightPrecision::F16),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FitArg {
    /// Resize the shorter side to 256, centre-crop 224 (default)
    Crop,
    /// Squash the whole image to 224x224
    Squash,
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// googlenet | vgg16 | squeezenet | PATH.onnx
    #[arg(long, default_value = "googlenet")]
    pub model: String,
    /// Where built-in model names find their .onnx files (else $CONVLENS_MODELS, else the user cache dir)
    #[arg(long, env = "CONVLENS_MODELS")]
    pub models_dir: Option<PathBuf>,
    /// Use the built-in architecture with seeded random weights (outputs are meaningless; labelled UNTRAINED)
    #[arg(long)]
    pub untrained: bool,
    /// Never download a missing model file
    #[arg(long)]
    pub offline: bool,
    /// Hold fully connected layers' weights in half precision (f16): VGG16 in 306 MB instead
    /// of 553, products and sums still f32 (accuracy: docs/BENCHMARKS.md)
    #[arg(long)]
    pub fc_f16: bool,
}

impl ModelArgs {
    pub fn precision(&self) -> convlens_core::onnx::WeightPrecision {
        if self.fc_f16 {
            convlens_core::onnx::WeightPrecision::FcF16
        } else {
            convlens_core::onnx::WeightPrecision::F32
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Top-K ImageNet classes for each image.
    ///
    /// Images are resized so the shorter side is 256, then centre-cropped to 224 (--fit squash
    /// resizes straight to 224), and normalised as the model family expects (Caffe BGR mean
    /// subtraction for BVLC GoogLeNet; ImageNet mean/std RGB for VGG16 and SqueezeNet).
    Classify {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// One JSON object per image
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value = "crop")]
        fit: FitArg,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Per-layer table: output shape, parameters, multiply-adds, activation memory, receptive field;
    /// totals, modules with their branches, classifier heads, and the lessons measured from the model.
    Inspect {
        #[arg(long)]
        json: bool,
        /// googlenet | vgg16 | squeezenet (built-in definitions, no weights needed) | PATH.onnx
        model: String,
    },
    /// Run on an .npy input and dump every node's output as DIR/<tensor name>.npy ('/' and ':' become '_').
    Run {
        /// googlenet | vgg16 | squeezenet | PATH.onnx
        model: String,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        dump: PathBuf,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        #[arg(long, env = "CONVLENS_MODELS")]
        models_dir: Option<PathBuf>,
        #[arg(long)]
        untrained: bool,
        /// Hold fully connected layers' weights in half precision (as `classify --fc-f16`)
        #[arg(long)]
        fc_f16: bool,
    },
    /// Every channel of one layer as a tiled, colour-mapped PNG (each tile scaled to its own range).
    Maps {
        /// googlenet | vgg16 | squeezenet | PATH.onnx
        model: String,
        image: PathBuf,
        /// Layer (node) name or output tensor name; `inspect` lists them
        #[arg(long)]
        layer: String,
        #[arg(long)]
        out: PathBuf,
        /// One colour scale for all channels instead of one per channel
        #[arg(long)]
        shared_scale: bool,
        #[arg(long, env = "CONVLENS_MODELS")]
        models_dir: Option<PathBuf>,
        #[arg(long)]
        untrained: bool,
    },
    /// Why the network said a class: a heatmap by CAM, Grad-CAM, saliency, guided backprop or
    /// occlusion, with the deletion curve's area as a faithfulness score. Writes DIR/heatmap.npy,
    /// weights.npy (cam, gradcam) or grad.npy (saliency, guided), and overlay.png.
    Explain {
        /// googlenet | vgg16 | squeezenet | PATH.onnx
        model: String,
        /// A photo (resized and cropped as `classify` does); or give --input
        image: Option<PathBuf>,
        /// The model's input tensor as is (.npy, no preprocessing), as `run` takes it
        #[arg(long, conflicts_with = "image")]
        input: Option<PathBuf>,
        #[arg(long, value_enum)]
        method: explain::MethodArg,
        /// The tensor Grad-CAM weighs (as `run --dump` names tensors); default: the last conv block's output
        #[arg(long)]
        layer: Option<String>,
        /// The class to explain (default: the top-1)
        #[arg(long)]
        class: Option<usize>,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        #[arg(long)]
        out: PathBuf,
        /// Occlusion: the grey square's side and its step, in input pixels
        #[arg(long, default_value_t = 32)]
        patch: usize,
        #[arg(long, default_value_t = 16)]
        stride: usize,
        /// Deletion curve: pixels removed in this many equal steps (0: no curve)
        #[arg(long, default_value_t = 20)]
        deletion_steps: usize,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CONVLENS_MODELS")]
        models_dir: Option<PathBuf>,
        #[arg(long)]
        untrained: bool,
    },
    /// What a channel looks for: an input optimized to maximize its mean activation (Fourier,
    /// colour-decorrelated parameterization, jitter/scale/rotation each step, Adam, seeded).
    /// Writes DIR/input.npy (the model's input, as `run --input` takes it) and DIR/image.png.
    Visualize {
        /// googlenet | vgg16 | squeezenet | PATH.onnx
        model: String,
        /// The layer's tensor name (as `run --dump` names tensors)
        #[arg(long)]
        layer: String,
        #[arg(long)]
        channel: usize,
        #[arg(long, default_value_t = 256)]
        steps: usize,
        /// Image side; the models here take their fixed input size (224)
        #[arg(long)]
        size: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CONVLENS_MODELS")]
        models_dir: Option<PathBuf>,
        #[arg(long)]
        untrained: bool,
    },
    /// Dataset examples: every photo under DIR through the model, and for every channel of every
    /// layer the K photos that excite it most (its largest value) and where; one file that
    /// `index-merge` combines with others and the app opens (docs/INDEX_FORMAT.md)
    Index {
        /// googlenet | vgg16 | squeezenet | PATH.onnx
        model: String,
        /// A folder of photos (JPEG, PNG, WebP, GIF, BMP; subfolders too)
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Photos kept per channel
        #[arg(long, default_value_t = 9)]
        top: usize,
        /// Only every N-th photo from the I-th of the sorted listing (I/N), for batch systems;
        /// `index-merge` combines the shards into the index of the whole folder
        #[arg(long, value_parser = index::parse_shard)]
        shard: Option<(usize, usize)>,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CONVLENS_MODELS")]
        models_dir: Option<PathBuf>,
        #[arg(long)]
        untrained: bool,
    },
    /// Merges indexes of one model (shards of a collection) into one: per channel, the best
    /// photos of all of them
    IndexMerge {
        #[arg(required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Time forward passes on a fixed input: median/min/max ms and GFLOP/s (2 x multiply-adds).
    Bench {
        /// googlenet | vgg16 | squeezenet | PATH.onnx
        model: String,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Also print the 10 slowest layers
        #[arg(long)]
        layers: bool,
        /// Also time an explanation (its backward pass) against the forward pass it explains
        #[arg(long, value_enum)]
        explain: Option<explain::MethodArg>,
        #[arg(long, env = "CONVLENS_MODELS")]
        models_dir: Option<PathBuf>,
        #[arg(long)]
        untrained: bool,
        /// Hold fully connected layers' weights in half precision (as `classify --fc-f16`)
        #[arg(long)]
        fc_f16: bool,
        /// With a webgpu backend: the conv kernels to plan with (to compare them on one adapter)
        #[arg(long, value_enum, default_value = "for-adapter")]
        gpu_conv: GpuConvArg,
    },
}

fn model_args(model: String, models_dir: Option<PathBuf>, untrained: bool) -> ModelArgs {
    ModelArgs { model, models_dir, untrained, offline: false, fc_f16: false }
}

fn model_args_f16(model: String, models_dir: Option<PathBuf>, untrained: bool, fc_f16: bool) -> ModelArgs {
    ModelArgs { fc_f16, ..model_args(model, models_dir, untrained) }
}

fn main() -> ExitCode {
    // `convlens inspect vgg16 | head` should stop quietly, as other Unix tools do, instead of
    // panicking on the closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    convlens_core::par::set_threads(threads);
    let result = match cli.command {
        Command::Classify { model, backend, top, json, fit, images } => commands::classify(&model, backend, top, json, fit, &images),
        Command::Inspect { json, model } => commands::inspect(&model, json),
        Command::Run { model, input, dump, backend, models_dir, untrained, fc_f16 } => {
            commands::run_dump(&model_args_f16(model, models_dir, untrained, fc_f16), &input, &dump, backend)
        }
        Command::Maps { model, image, layer, out, shared_scale, models_dir, untrained } => {
            commands::maps(&model_args(model, models_dir, untrained), &image, &layer, &out, shared_scale)
        }
        Command::Explain { model, image, input, method, layer, class, backend, out, patch, stride, deletion_steps, json, models_dir, untrained } => {
            let what = explain::Request { image, input, method, layer, class, out, patch, stride, deletion_steps, json };
            explain::explain(&model_args(model, models_dir, untrained), backend, &what)
        }
        Command::Index { model, dir, out, top, shard, backend, json, models_dir, untrained } => {
            let what = index::Request { dir: &dir, out: &out, k: top, shard, json };
            index::index(&model_args(model, models_dir, untrained), backend, &what)
        }
        Command::IndexMerge { inputs, out, json } => index::merge(&inputs, &out, json),
        Command::Visualize { model, layer, channel, steps, size, seed, backend, out, json, models_dir, untrained } => {
            let what = visualize::Request { layer: &layer, channel, steps, size, seed, out: &out, json };
            visualize::visualize(&model_args(model, models_dir, untrained), backend, &what)
        }
        Command::Bench { model, backend, runs, layers, explain: Some(method), models_dir, untrained, fc_f16, .. } => {
            let _ = layers;
            explain::bench(&model_args_f16(model, models_dir, untrained, fc_f16), backend, method, runs)
        }
        Command::Bench { model, backend, runs, layers, explain: None, models_dir, untrained, fc_f16, gpu_conv } => {
            commands::bench(&model_args_f16(model, models_dir, untrained, fc_f16), backend, runs, layers, gpu_conv)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes, outermost first.
            let msg = e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
            eprintln!("error: {msg}");
            // Bad input the user can fix (a layer, a class, a model without a class score): 2.
            if e.downcast_ref::<explain::BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
