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
  stamp=$(cat tests/reference/make_refs.py tests/reference/requirements.txt | sha256sum | cut -c1-16)
  if [ "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$out"
    python3 tests/reference/make_refs.py --out "$out"
    echo "$stamp" > "$out/.stamp"
  fi
}
