#!/usr/bin/env bash
# Installs what Roundtrip needs on a fresh Debian machine with Rust stable (idempotent; pinned versions).
#   scripts/setup.sh          build prerequisites: the wasm target and wasm-bindgen-cli
#   scripts/setup.sh --test   also test prerequisites: Debian's Chromium, the end2end npm packages, and moto
#                             (the AWS emulator for the DynamoDB, EC2 and STS adapter tests) in a venv
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback

MOTO_VERSION=5.2.5

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
  # moto, pinned, in a venv outside the clone (reused across runs; never the system's moto).
  venv="${ROUNDTRIP_MOTO_VENV:-$HOME/.cache/roundtrip/moto-venv}"
  if ! [ -x "$venv/bin/moto_server" ] || [ "$("$venv/bin/pip" show moto 2>/dev/null | sed -n "s/^Version: //p")" != "$MOTO_VERSION" ]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
      echo "setup: installing Python 3 and venv from Debian"
      as_root apt-get update -qq
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    echo "setup: installing moto $MOTO_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      "moto[ec2,dynamodb,sts]==$MOTO_VERSION" 'flask==3.1.3' 'flask-cors==6.0.5'
  fi
fi
echo "setup: ready (wasm-bindgen $wb_version)"
