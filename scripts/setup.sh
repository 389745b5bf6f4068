#!/usr/bin/env bash
# Installs what Roundtrip needs on a fresh Debian machine with Rust stable (idempotent; pinned versions).
#   scripts/setup.sh          build prerequisites: the wasm target and wasm-bindgen-cli
#   scripts/setup.sh --test   also test prerequisites: Debian's Chromium and the end2end npm packages
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

rustup target add wasm32-unknown-unknown >/dev/null
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock. Not --locked: one of its locked
# dependencies is not in the registry (see docs/development.md).
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wb_version"; then
  echo "setup: installing wasm-bindgen-cli $wb_version (several minutes, once)"
  cargo install wasm-bindgen-cli --version "$wb_version"
fi

if [ "${1:-}" = "--test" ]; then
  if ! [ -x /usr/bin/chromium ] || ! command -v npm >/dev/null; then
    echo "setup: installing Chromium (and Node.js if missing) from Debian"
    as_root apt-get update -qq
    pkgs=(chromium)
    command -v npm >/dev/null || pkgs+=(nodejs npm)
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ready (wasm-bindgen $wb_version)"
