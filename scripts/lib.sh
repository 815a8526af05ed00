# Shared by scripts/*.sh: each ensure_* installs only what is missing.

step() { printf '\n== %s\n' "$*"; }

ensure_rust_targets() {
  local installed
  installed=$(rustup target list --installed)
  for t in "$@"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
}

ensure_python_deps() {
  python3 -c 'import onnxruntime, onnx, numpy, PIL' 2>/dev/null || pip install -q -r tests/reference/requirements.txt
}

ensure_node() {
  command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs; }
  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
}

ensure_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

# onnxruntime's outputs for the Rust tests; redone only when the script or its inputs change.
make_references() {
  local out=target/refs stamp
  stamp=$(cat tests/reference/make_refs.py tests/reference/make_node_tests.py tests/reference/requirements.txt | sha256sum | cut -c1-16)
  if [ "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$out"
    python3 tests/reference/make_refs.py --out "$out"
    echo "$stamp" > "$out/.stamp"
  fi
}

# The wasm-bindgen version Cargo.lock pins: the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_web_tools() {
  # npm for wasm-opt; node also runs Trunk's CSP hook (scripts/csp.mjs).
  ensure_node
  ensure_rust_targets wasm32-unknown-unknown
  # std's source, rebuilt with atomics for the threaded worker (scripts/build_threaded_worker.sh).
  rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
  local wbg
  wbg=$(wasm_bindgen_version)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg" ]; then
    # Not --locked: its lock file wants a webpki-roots release this registry lacks.
    cargo install wasm-bindgen-cli --version "$wbg"
  fi
  if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "0.21.14" ]; then
    # 0.22 needs a newer rustc than this machine's. Its release profile (fat LTO, one codegen
    # unit) took 12.7 min of a fresh CI run to build a tool that only drives the build.
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
      cargo install --locked trunk --version 0.21.14
  fi
  # Debian's binaryen is too old for Rust 1.95's wasm; npm's binaryen 132 is what Trunk.toml pins.
  if [ ! -x tools/node_modules/.bin/wasm-opt ]; then
    mkdir -p tools && (cd tools && npm install --silent --no-audit --no-fund binaryen@132 playwright-core@1)
  fi
  # The end-to-end test's accessibility check.
  if [ ! -f tools/node_modules/axe-core/axe.min.js ]; then
    mkdir -p tools && (cd tools && npm install --silent --no-audit --no-fund axe-core@4)
  fi
  export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
}

# Models served next to the app: whatever $CONVLENS_MODELS holds (zoo files, test models).
# models/index.json lists them, so the app asks only for files that are there.
fill_models_folder() {
  if [ -n "${CONVLENS_MODELS:-}" ] && [ -d "$CONVLENS_MODELS" ]; then
    find "$CONVLENS_MODELS" -maxdepth 1 \( -name '*.onnx' -o -name catalog.json \) -exec cp -u {} www/models/ \;
  fi
  # A catalog.json (models or mirrors a lab hosts) is listed too, so the app asks for it only when it is there.
  (cd www/models && printf '[%s]\n' "$(ls *.onnx catalog.json 2>/dev/null | sed 's/.*/"&"/' | paste -sd, -)") > www/models/index.json
}
