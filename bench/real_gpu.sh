#!/usr/bin/env bash
# Issue 10's real-GPU figures and a parity check, in one run on a lent GPU machine (the
# workplace's `device` tool: x86-64, NVIDIA driver, onnxruntime and numpy, no Rust, no network).
#
#   bash bench/real_gpu.sh prepare   here: a release CLI, the two test models and the Vulkan
#                                    loader into .gpu/ (ignored; ~45 MB, under the 64 MiB a run
#                                    may carry)
#   bash bench/real_gpu.sh run       there, as the device run's command with carry [".gpu"];
#                                    everything it prints also goes to $OUT/real_gpu.log
#
# What `run` does: the adapter wgpu picks; every layer of SqueezeNet (real weights) and of the
# GoogLeNet graph against onnxruntime (bench/gpu_parity.py: f32 at testkit's GPU_LAYER_TOL,
# f16 weights at GPU_F16_LAYER_TOL); then `convlens bench --backend webgpu --layers` for
# SqueezeNet, GoogLeNet and VGG16 (the built-in seeded graphs: VGG16's 553 MB of weights
# cannot travel), f32 and f16 weights, the tiled kernels a GPU plans against the direct ones a
# software adapter gets, both layer by layer (`bench/kernel_choice.py`: what the faster of the
# two for every layer would give), and the CPU path on all the machine's cores beside them; the
# CPU path's speed-up from 1 to 16 threads.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu
RUNS=${RUNS:-50}

prepare() {
    set -e
    local models=${CONVLENS_MODELS:-../shared/models}
    cargo build --release -p convlens-cli
    rm -rf "$CARRY" && mkdir -p "$CARRY"
    strip -o "$CARRY/convlens" target/release/convlens
    cp "$models/squeezenet1.1.onnx" "$models/googlenet-synthetic.onnx" "${CONVLENS_IMAGES:-../shared/images}/chelsea.png" "$CARRY/"
    (cd "$CARRY" && apt-get download libvulkan1 >/dev/null)
    du -sh "$CARRY"
    echo "now: device run, command 'bash bench/real_gpu.sh run', carry [\"$CARRY\"], timeout_s 540"
}

step() { echo; echo "== $*"; }

run() {
    local out=${OUT:-/tmp/real_gpu_out}
    mkdir -p "$out"
    exec > >(tee "$out/real_gpu.log") 2>&1
    for f in "$CARRY"/*.deb; do dpkg -x "$f" /; done
    ldconfig
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
    export CONVLENS_MODELS=$PWD/$CARRY XDG_RUNTIME_DIR=/tmp
    local cl=$PWD/$CARRY/convlens failed=0
    step "machine"
    nvidia-smi -L 2>/dev/null || true
    nproc
    step "parity: every layer against onnxruntime (CPU) on a seeded input"
    python3 bench/gpu_parity.py "$CARRY/squeezenet1.1.onnx" --convlens "$cl" --backend webgpu || failed=1
    python3 bench/gpu_parity.py "$CARRY/squeezenet1.1.onnx" --convlens "$cl" --backend webgpu-f16 --tol 1e-2 || failed=1
    python3 bench/gpu_parity.py "$CARRY/googlenet-synthetic.onnx" --convlens "$cl" --backend webgpu --input-scale 60 || failed=1
    python3 bench/gpu_parity.py "$CARRY/googlenet-synthetic.onnx" --convlens "$cl" --backend webgpu-f16 --input-scale 60 --tol 1e-2 || failed=1
    python3 bench/gpu_parity.py "$CARRY/squeezenet1.1.onnx" --convlens "$cl" --backend cpu || failed=1
    step "classify: the real SqueezeNet's top-5 on the GPU and on the CPU (a photo of a cat)"
    for b in webgpu cpu; do "$cl" classify --model "$CARRY/squeezenet1.1.onnx" --backend "$b" "$CARRY/chelsea.png" || failed=1; done
    for model in squeezenet googlenet vgg16; do
        step "$model: WebGPU f32 (tiled kernels, as a GPU plans them), f16 weights, direct kernels; CPU on every core"
        CONVLENS_TOP_LAYERS=1000 timeout 120 "$cl" bench "$model" --untrained --backend webgpu --runs "$RUNS" --layers | tee "$out/$model-tiled.txt" || failed=1
        timeout 120 "$cl" bench "$model" --untrained --backend webgpu-f16 --runs "$RUNS" || failed=1
        CONVLENS_TOP_LAYERS=1000 timeout 120 "$cl" bench "$model" --untrained --backend webgpu --gpu-conv direct --runs "$RUNS" --layers | tee "$out/$model-direct.txt" || failed=1
        # Whether choosing the kernel layer by layer (timed at plan time) would pay on this GPU.
        python3 bench/kernel_choice.py "$out/$model-tiled.txt" "$out/$model-direct.txt" || failed=1
        timeout 120 "$cl" bench "$model" --untrained --runs 10 || failed=1
    done
    step "the CPU path's thread scaling on this machine's cores (a user's desktop has 4-16; here only 2)"
    for model in squeezenet googlenet; do
        for t in 1 2 4 8 16; do timeout 60 "$cl" bench "$model" --untrained --runs 30 --threads "$t" 2>&1 | head -1 || failed=1; done
    done
    step "done: $([ $failed = 0 ] && echo 'every step passed' || echo 'a step FAILED (above)')"
    return $failed
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash bench/real_gpu.sh prepare|run" >&2; exit 2 ;;
esac
