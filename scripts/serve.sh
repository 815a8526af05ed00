#!/usr/bin/env bash
# Installs what is missing (wasm target, wasm-bindgen-cli matching Cargo.lock, trunk, wasm-opt),
# builds the app and serves it on http://127.0.0.1:8080. Models in $CONVLENS_MODELS are served
# next to the app; without them the app downloads the zoo files (sha256-checked) or opens
# with untrained weights.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_web_tools
fill_models_folder
exec trunk serve --release "$@"
