import { defineConfig } from "@playwright/test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

// The console under test: the built `roundtrip` binary on a free port, a fresh data folder, the bundled
// simulated estate, and the site built by scripts/build-site.sh.
const port = process.env.E2E_PORT ?? "3900";
const baseURL = process.env.BASE_URL ?? `http://127.0.0.1:${port}`;
const repo = path.resolve(__dirname, "..");
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const serverBin = process.env.SERVER_BIN ?? path.join(targetDir, "debug", "roundtrip");
const dataDir = process.env.E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "roundtrip-e2e-"));
const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export default defineConfig({
  testDir: "./tests",
  timeout: 90_000,
  expect: { timeout: 20_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  use: {
    baseURL,
    browserName: "chromium",
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: chromiumArgs },
  },
  webServer: process.env.NO_WEBSERVER ? undefined : {
    command: `"${serverBin}" serve --listen 127.0.0.1:${port} --data-dir "${dataDir}" --site-root "${path.join(repo, "target", "site")}"`,
    cwd: repo,
    url: `${baseURL}/api/v1/health`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: "pipe",
  },
});
