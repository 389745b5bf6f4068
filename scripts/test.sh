#!/usr/bin/env bash
# Installs what the tests need and runs every test: unit, conformance, API (cargo test --workspace) and
# browser (Playwright in Debian's Chromium against the built console).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build-site.sh
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
