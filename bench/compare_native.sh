#!/usr/bin/env bash
# Side by side, one thread, same machine and run: onnxruntime vs ConvLens (GEMM only, and
# GEMM + Winograd) on SqueezeNet, the zoo GoogLeNet graph and a zoo-layout VGG16.
#   bench/compare_native.sh [RUNS]     (after scripts/test.sh has made target/refs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
models=(../shared/models/squeezenet1.1.onnx ../shared/models/googlenet-synthetic.onnx target/refs/vgg16-seeded.onnx)
cargo build --release -q -p convlens-cli
for m in "${models[@]}"; do
  python3 bench/ort_native.py "$m" "$runs"
  target/release/convlens bench "$m" --backend gemm --runs "$runs"
  target/release/convlens bench "$m" --backend cpu --runs "$runs"
done
