#!/usr/bin/env bash
# Installs what is needed, builds the console and serves it on http://127.0.0.1:3000 against the bundled
# simulated estate, with the embedded store in ./data. Extra arguments go to `roundtrip serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-site.sh
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
exec "$target_dir/debug/roundtrip" serve --data-dir data "$@"
