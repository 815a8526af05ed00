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
ensure_apt mesa-vulkan-drivers   # lavapipe: the wgpu backend's tests run on it
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

step "onnxruntime references"
make_references

step "native tests (release: the scalar oracle runs whole networks)"
cargo test --release -p convlens-core -p convlens-engine -p convlens-cli -p convlens-gpu -p convlens-testkit

# An AVX-512 machine runs the sixteen-lane kernels above; the kernels again with AVX-512 off
# check the eight-lane (AVX2) ones that CPUs without it (Zen 1-3, most laptops) run.
if grep -q avx512f /proc/cpuinfo 2>/dev/null; then
  CONVLENS_NO_AVX512=1 cargo test --release -p convlens-core --test kernels
fi

step "core builds for the browser (wasm32 + simd128)"
cargo build --release -p convlens-core --target wasm32-unknown-unknown

# Node 20's concurrent GC crashes (V8_Fatal in MarkCompactCollector::ProcessEphemerons, reached
# from WasmMemoryGrow) when a large wasm test binary grows its memory, mid-test or at teardown;
# with --single-threaded-gc every test exits 0. A run still counts as passed when libtest
# printed "test result: ok. 1 passed" and Node died only afterwards.
NODE_WASI=(node --no-warnings --single-threaded-gc)
wasi_test() {
  local wasm=$1 name=$2 suite=$3 rc
  set +e
  "${NODE_WASI[@]}" scripts/wasi-test.mjs "$wasm" --exact "$name" > target/wasi-test.log 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ] || { [ $rc -ge 128 ] && grep -q "^test result: ok. 1 passed" target/wasi-test.log; }; then
    echo "wasm ok: $suite::$name$([ $rc -ne 0 ] && echo " (node exit $rc after the result)")"
    return 0
  fi
  cat target/wasi-test.log; echo "FAILED as wasm: $suite::$name (rc $rc)"; exit 1
}

# Every test of each suite in $1's wasm32-wasip1 test binaries, one process per test: Node 20's
# WASI aborts when one wasm instance's memory has grown through several whole-network runs.
# VGG16 on the scalar reference takes minutes as wasm; it is covered natively above.
wasi_suites() {
  local dir=$1 t wasm name
  shift
  for t in "$@"; do
    wasm=$(ls -t "$dir"/wasm32-wasip1/release/deps/"$t"-*.wasm | head -1)
    for name in $("${NODE_WASI[@]}" scripts/wasi-test.mjs "$wasm" --list --format terse | sed -n 's/: test$//p'); do
      case "$name" in vgg16_zoo_layout*) continue ;; esac
      wasi_test "$wasm" "$name" "$t"
    done
  done
}

step "kernels, importer and parity as wasm simd128 (Node/V8)"
RUSTFLAGS="-C target-feature=+simd128" cargo build --release -p convlens-core --tests --target wasm32-wasip1
CONVLENS_EXPECT_SIMD="wasm simd128" wasi_suites target kernels bad_models analytics structure_and_import parity_onnxruntime half_weights concat_in_place tiles

# The browser's threaded worker is built with relaxed SIMD too, and runs that build where the
# browser has it (scripts/build_threaded_worker.sh): its micro-kernel fuses multiply-adds, so
# the kernels and the networks are checked against their references in that build as well.
step "kernels and parity as wasm relaxed SIMD (Node/V8)"
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" CARGO_TARGET_DIR=target/relaxed cargo build --release -p convlens-core --tests --target wasm32-wasip1
# Node 20 has relaxed SIMD behind a flag; a Node that ships it may no longer know the flag.
if node --experimental-wasm-relaxed-simd -e 0 2>/dev/null; then NODE_WASI+=(--experimental-wasm-relaxed-simd); fi
CONVLENS_EXPECT_SIMD="wasm relaxed SIMD" wasi_suites target/relaxed kernels parity_onnxruntime concat_in_place

step "fuzz the ONNX importer (30 s, libFuzzer via cargo-fuzz)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/import_onnx
cp -u "$CONVLENS_MODELS"/light/*.onnx fuzz/corpus/import_onnx/ 2>/dev/null || true
# Inputs the fuzzer once broke the importer with: run first, every time.
cp -u fuzz/regressions/import_onnx/* fuzz/corpus/import_onnx/
# cargo-fuzz needs nightly flags; this machine has one stable toolchain, which allows them so.
if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run import_onnx corpus/import_onnx -- -max_total_time=30 -rss_limit_mb=4096 > ../target/fuzz.log 2>&1); then
  tail -40 target/fuzz.log; echo "FAILED: the importer fuzz target found a crash (fuzz/artifacts/)"; exit 1
fi
grep -E "^Done [0-9]+ runs" target/fuzz.log || tail -3 target/fuzz.log

step "browser app: build with Trunk, end-to-end in Chromium"
ensure_web_tools
ensure_apt chromium chromium-driver ffmpeg
fill_models_folder
# The UI/worker boundary as wasm in headless Chromium (wasm-bindgen-test, webdriver.json).
CHROMEDRIVER=/usr/bin/chromedriver cargo test --release --target wasm32-unknown-unknown -p convlens-app --test web_worker_boundary
# Every layer on the browser's WebGPU (SwiftShader) against the CPU in the same page:
# SqueezeNet, GoogLeNet with aux heads, VGG16 with fc6 split under a 128 MiB binding (~3 min).
WASM_BINDGEN_TEST_TIMEOUT=1200 CHROMEDRIVER=/usr/bin/chromedriver cargo test --release --target wasm32-unknown-unknown -p convlens-gpu --test parity_browser
trunk build --release
# The same app with a message that panics the worker: the e2e test of the recovery.
CONVLENS_NO_THREADED_WORKER=1 trunk build --release --features crash-test --dist dist-crash --public-url /crash/
node tests/e2e/app.e2e.mjs

step "all tests passed"
