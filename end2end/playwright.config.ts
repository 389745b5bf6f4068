import { defineConfig } from "@playwright/test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

// The console under test: the built `roundtrip` binary on a free port, a fresh data folder, the bundled
// simulated estate, and the site built by scripts/build-site.sh. A second server runs an estate whose Name
// tags are hostile (markup, maximum length), for the escaping tests.
const port = process.env.E2E_PORT ?? "3900";
const hostilePort = String(Number(port) + 1);
const baseURL = process.env.BASE_URL ?? `http://127.0.0.1:${port}`;
const repo = path.resolve(__dirname, "..");
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const serverBin = process.env.SERVER_BIN ?? path.join(targetDir, "debug", "roundtrip");
const dataDir = process.env.E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "roundtrip-e2e-"));
const hostileDir = fs.mkdtempSync(path.join(os.tmpdir(), "roundtrip-e2e-hostile-"));
const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** The admin's password on both servers (set, so no one-time password is printed). */
export const ADMIN_PASSWORD = "e2e-first-passphrase";
export const HOSTILE_URL = `http://127.0.0.1:${hostilePort}`;
export const HOSTILE_NAME = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>";
export const LONG_NAME = "hr-web-02-" + "w".repeat(246);

// The bundled estate with two pairs renamed: one name is markup, one is as long as AWS allows (256).
const scenario = fs.readFileSync(path.join(repo, "scenarios", "default.toml"), "utf8")
  .replaceAll('Name = "hr-web-01"', `Name = '${HOSTILE_NAME}'`)
  .replaceAll('Name = "hr-web-02"', `Name = '${LONG_NAME}'`);
const hostileScenario = path.join(hostileDir, "hostile.toml");
fs.writeFileSync(hostileScenario, scenario);

const site = path.join(repo, "target", "site");
const env = { ROUNDTRIP_ADMIN_PASSWORD: ADMIN_PASSWORD, RUST_LOG: "warn" };

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
  projects: [
    { name: "sign-in", testMatch: /auth\.setup\.ts/ },
    { name: "console", dependencies: ["sign-in"], testIgnore: /failover\.spec\.ts/,
      use: { storageState: path.join(__dirname, ".auth", "admin.json") } },
    // Last: a real failover leaves the standbys running as recovery instances (failing back is a later issue).
    { name: "failover", dependencies: ["console"], testMatch: /failover\.spec\.ts/,
      use: { storageState: path.join(__dirname, ".auth", "admin.json") } },
  ],
  webServer: process.env.NO_WEBSERVER ? undefined : [
    {
      // Virtual time runs 120 times faster and the runner steps every second, so a drill of three waves
      // takes seconds and a failback (reverse replication syncs for minutes) well under a minute.
      command: `"${serverBin}" serve --listen 127.0.0.1:${port} --data-dir "${dataDir}" --site-root "${site}" --speed 120`,
      cwd: repo,
      env: { ...env, ROUNDTRIP_RUNNER_INTERVAL_MS: "1000" },
      url: `${baseURL}/api/v1/health`,
      reuseExistingServer: false,
      timeout: 120_000,
      stdout: "pipe",
    },
    {
      command: `"${serverBin}" serve --listen 127.0.0.1:${hostilePort} --data-dir "${hostileDir}" --scenario "${hostileScenario}" --site-root "${site}"`,
      cwd: repo,
      env,
      url: `${HOSTILE_URL}/api/v1/health`,
      reuseExistingServer: false,
      timeout: 120_000,
      stdout: "pipe",
    },
  ],
});
