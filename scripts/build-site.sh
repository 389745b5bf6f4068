#!/usr/bin/env bash
# Builds the console and the server with plain cargo + wasm-bindgen (no cargo-leptos needed).
# Output: target/site/pkg/webapp.{js,wasm,css} in the repository, and the `roundtrip` binary in the cargo
# target directory ($CARGO_TARGET_DIR, default ./target). Usage: scripts/build-site.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug; flag=()
if [ "${1:-}" = "--release" ]; then profile=release; flag=(--release); fi
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export LEPTOS_OUTPUT_NAME=webapp

cargo build --locked -p frontend --lib --target wasm32-unknown-unknown "${flag[@]}"
if [ "$profile" = release ]; then
  cargo build --locked -p server --bin roundtrip --profile server-release
else
  cargo build --locked -p server --bin roundtrip
fi

site=target/site
rm -rf "$site" && mkdir -p "$site/pkg"
wasm-bindgen --target web --no-typescript --out-name webapp --out-dir "$site/pkg" \
  "$target_dir/wasm32-unknown-unknown/$profile/frontend.wasm"
# Leptos loads <name>.wasm when LEPTOS_OUTPUT_NAME was set at compile time.
mv "$site/pkg/webapp_bg.wasm" "$site/pkg/webapp.wasm"
if [ "$profile" = release ] && command -v wasm-opt >/dev/null; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$site/pkg/webapp.wasm" -o "$site/pkg/webapp.wasm"
fi
cp style/main.css "$site/pkg/webapp.css"
cp -r public/. "$site/"
echo "site built in $site ($profile)"
