#!/usr/bin/env bash
# Installs what the tests need and runs every test: unit, conformance, API and AWS adapter tests (cargo test
# --workspace, with moto started on 127.0.0.1) and browser (Playwright in Debian's Chromium against the
# built console).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build-site.sh

# moto on loopback for the AWS adapter tests (DynamoDB, EC2, STS); stopped on exit.
venv="${ROUNDTRIP_MOTO_VENV:-$HOME/.cache/roundtrip/moto-venv}"
moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_log=$(mktemp)
MOTO_EC2_LOAD_DEFAULT_AMIS=false "$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$moto_log"' EXIT
moto_up() { python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$moto_port/moto-api/', timeout=1)" 2>/dev/null; }
for _ in $(seq 1 150); do
  moto_up && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$moto_log"; exit 1; }
  sleep 0.1
done
moto_up || { echo "moto did not start"; cat "$moto_log"; exit 1; }
export ROUNDTRIP_MOTO_ENDPOINT="http://127.0.0.1:$moto_port"
# Fixed credentials and region, so no SDK client ever looks for the instance metadata service.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL || true

# frontend is excluded: building it with the rest would unify Leptos's `hydrate` feature into the
# server-side test binaries (its browser executor panics outside a browser). It has no tests of its own.
cargo test --workspace --exclude frontend --locked

cd end2end
set +e
CI=true PLAYWRIGHT_JSON_OUTPUT_NAME=playwright-report/results.json npx playwright test --reporter=list,json
status=$?
set -e
node -e 'const s=require("./playwright-report/results.json").stats; console.log(`e2e: ${s.expected} passed, ${s.unexpected + s.flaky} failed, ${s.skipped} skipped`)' || true
exit $status
