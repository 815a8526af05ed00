#!/usr/bin/env bash
# Runs every test: native (scalar reference, SIMD), the same kernels as wasm simd128 under
# Node, against onnxruntime references made here. Installs what a fresh Debian machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

export CONVLENS_MODELS="${CONVLENS_MODELS:-$(realpath ../shared/models)}"
export CONVLENS_OFFLINE=1   # tests never touch the network

step "toolchain"
ensure_rust_targets wasm32-unknown-unknown wasm32-wasip1
ensure_python_deps
ensure_node

step "onnxruntime references"
make_references

step "native tests (release: the scalar oracle runs whole networks)"
cargo test --release --workspace

step "core builds for the browser (wasm32 + simd128)"
cargo build --release -p convlens-core --target wasm32-unknown-unknown

step "kernels, importer and parity as wasm simd128 (Node/V8)"
RUSTFLAGS="-C target-feature=+simd128" cargo build --release -p convlens-core --tests --target wasm32-wasip1
for t in kernels bad_models analytics structure_and_import parity_onnxruntime; do
  wasm=$(ls -t target/wasm32-wasip1/release/deps/"$t"-*.wasm | head -1)
  # VGG16 on the scalar reference takes minutes as wasm; it is covered natively above.
  node --no-warnings scripts/wasi-test.mjs "$wasm" --skip vgg16
done

step "all tests passed"
