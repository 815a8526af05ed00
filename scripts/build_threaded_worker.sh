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

# Two builds: plain SIMD128 (worker-mt) and relaxed SIMD (worker-mt-relaxed: FMA in the
# micro-kernel, where the CPU fuses; the page picks it when the browser validates a relaxed
# instruction, `?simd=plain` opts out). Each has its own target dir, so both stay incremental.
# Up to 4 GiB: shared memory must declare its maximum, and VGG16 needs over 1 GiB.
release=()
dir=debug
if [ "$profile" = release ]; then release=(--release); dir=release; fi
build() {
  local name=$1 features=$2 target=$3
  local flags="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128$features"
  flags+=" -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296"
  flags+=" -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base"
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags" CARGO_TARGET_DIR=$target \
    cargo build "${release[@]}" --target wasm32-unknown-unknown --bin worker -Z build-std=std,panic_abort
  wasm-bindgen --target no-modules --no-typescript --out-dir "$out" --out-name "$name" \
    "$target/wasm32-unknown-unknown/$dir/worker.wasm"
  if [ "$profile" = release ] && command -v wasm-opt >/dev/null; then
    wasm-opt -O2 --enable-threads --enable-simd --enable-bulk-memory --enable-mutable-globals \
      --enable-relaxed-simd --enable-sign-ext --enable-nontrapping-float-to-int \
      "$out/${name}_bg.wasm" -o "$out/${name}_bg.wasm"
  fi
  cat > "$out/${name}_loader.js" <<JS
importScripts("./$name.js");wasm_bindgen("./${name}_bg.wasm");
JS
  cat > "$out/${name}_helper.js" <<JS
// A kernel helper thread: the inference worker posts its module and memory once.
importScripts("./$name.js");
self.onmessage = (e) => {
  self.onmessage = null;
  const [module, memory] = e.data;
  wasm_bindgen({ module_or_path: module, memory }).then(() => wasm_bindgen.convlens_pool_helper());
};
JS
}
build worker-mt "" target/mt
build worker-mt-relaxed ",+relaxed-simd" target/mt-relaxed
