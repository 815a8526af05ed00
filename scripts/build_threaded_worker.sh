#!/usr/bin/env bash
# Trunk's post_build hook (Trunk.toml): the inference worker again, built with wasm threads
# (atomics, bulk memory, shared memory; std rebuilt for them with -Z build-std, which needs
# RUSTC_BOOTSTRAP=1 on the stable toolchain and the rust-src component). The page loads it,
# as worker-mt_loader.js, only when it is cross-origin isolated; each kernel helper thread is a
# Web Worker running worker-mt_helper.js on the same memory (src/worker/threads.rs).
# Alone: TRUNK_STAGING_DIR=dist TRUNK_PROFILE=release scripts/build_threaded_worker.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${TRUNK_STAGING_DIR:?set TRUNK_STAGING_DIR (Trunk sets it for its hooks)}
# Builds that never load it (the crash-test build runs on one thread) skip it.
if [ -n "${CONVLENS_NO_THREADED_WORKER:-}" ]; then exit 0; fi
profile=${TRUNK_PROFILE:-release}
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src

# CONVLENS_WASM_FEATURES=",+relaxed-simd" adds relaxed SIMD (FMA in the micro-kernel): within
# noise of plain SIMD in Chromium 156 on the development machine, so not a variant of its own.
# Up to 4 GiB: shared memory must declare its maximum, and VGG16 needs over 1 GiB.
flags="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128${CONVLENS_WASM_FEATURES:-}"
flags+=" -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296"
flags+=" -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base"
release=()
dir=debug
if [ "$profile" = release ]; then release=(--release); dir=release; fi
RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags" CARGO_TARGET_DIR=target/mt \
  cargo build "${release[@]}" --target wasm32-unknown-unknown --bin worker -Z build-std=std,panic_abort
wasm-bindgen --target no-modules --no-typescript --out-dir "$out" --out-name worker-mt \
  "target/mt/wasm32-unknown-unknown/$dir/worker.wasm"
if [ "$profile" = release ] && command -v wasm-opt >/dev/null; then
  wasm-opt -O2 "$out/worker-mt_bg.wasm" -o "$out/worker-mt_bg.wasm"
fi
cat > "$out/worker-mt_loader.js" <<'JS'
importScripts("./worker-mt.js");wasm_bindgen("./worker-mt_bg.wasm");
JS
cat > "$out/worker-mt_helper.js" <<'JS'
// A kernel helper thread: the inference worker posts its module and memory once.
importScripts("./worker-mt.js");
self.onmessage = (e) => {
  self.onmessage = null;
  const [module, memory] = e.data;
  wasm_bindgen({ module_or_path: module, memory }).then(() => wasm_bindgen.convlens_pool_helper());
};
JS
