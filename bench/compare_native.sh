#!/usr/bin/env bash
# Side by side, same machine and run: onnxruntime vs ConvLens (GEMM only, and GEMM + Winograd)
# on SqueezeNet, the zoo GoogLeNet graph and a zoo-layout VGG16, on one thread and on THREADS.
#   bench/compare_native.sh [RUNS] [THREADS]    (after scripts/test.sh has made target/refs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
threads=${2:-$(nproc)}
models=(../shared/models/squeezenet1.1.onnx ../shared/models/googlenet-synthetic.onnx target/refs/vgg16-seeded.onnx)
cargo build --release -q -p convlens-cli
for m in "${models[@]}"; do
  for t in $(printf '%s\n' 1 "$threads" | sort -un); do
    python3 bench/ort_native.py "$m" "$runs" "$t"
    target/release/convlens bench "$m" --backend gemm --runs "$runs" --threads "$t"
    target/release/convlens bench "$m" --backend cpu --runs "$runs" --threads "$t"
  done
done
