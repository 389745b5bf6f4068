// Time to the first render of the matching page of a large protection group, in headless Chromium.
//
//   node end2end/bench/matching-render.mjs [--servers 5000] [--runs 5]
//
// It starts the `roundtrip` binary ($SERVER_BIN, default $CARGO_TARGET_DIR/release/roundtrip) on a free port
// with a generated estate of --servers source servers and their standbys, the console from target/site
// (build it with scripts/build-site.sh --release for the figures in docs/benchmarks.md), and a protection
// group of every server. Then, --runs times, a fresh page opens /matching?group=<id>, which matches the
// whole group on the server and shows the first page of rows. Reported, from the navigation's start
// (performance.now() in the page): the first match row on screen, the console hydrated, and the rows
// counted. Only 127.0.0.1 is contacted.
import { chromium } from "playwright-core";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const servers = arg("--servers", 5000);
const runs = arg("--runs", 5);
const repo = path.resolve(import.meta.dirname, "..", "..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const bin = process.env.SERVER_BIN ?? path.join(target, "release", "roundtrip");
const site = path.join(repo, "target", "site");
const password = "render-bench-passphrase";

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const base = `http://127.0.0.1:${port}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "roundtrip-render-"));
const scenario = path.join(dir, "estate.toml");
fs.writeFileSync(scenario, execFileSync(bin, ["sim", "generate", "--servers", String(servers)], { maxBuffer: 1 << 30 }));
const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir, "--scenario", scenario,
  "--site-root", site], { env: { ...process.env, ROUNDTRIP_ADMIN_PASSWORD: password, RUST_LOG: "warn" }, stdio: "ignore" });
const stop = () => { server.kill(); fs.rmSync(dir, { recursive: true, force: true }); };

try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/api/v1/health`)).ok) break; } catch { /* not yet */ }
    if (i > 600) throw new Error("the server never answered");
    await new Promise((r) => setTimeout(r, 200));
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 } });
  const session = await context.request.post("/api/v1/session", { data: { username: "admin", password } });
  if (!session.ok()) throw new Error(`sign-in: ${session.status()}`);
  const csrf = (await session.json()).csrf_token;
  const created = await context.request.post("/api/v1/protection-groups", {
    headers: { "x-csrf-token": csrf },
    data: { name: "Everything", primary: { account_id: "111111111111", region: "us-east-1" },
      dr: { account_id: "222222222222", region: "us-west-2" }, selection: { kind: "all" } },
  });
  if (!created.ok()) throw new Error(`group: ${created.status()} ${await created.text()}`);
  const group = (await created.json()).id;
  const results = [];
  for (let r = 0; r < runs; r++) {
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`/matching?group=${group}`, { waitUntil: "commit" });
    const firstRow = await (await page.waitForFunction(
      () => document.querySelector('[data-testid="match-row"]') ? performance.now() : false, null,
      { timeout: 120_000, polling: "raf" })).jsonValue();
    const hydrated = await (await page.waitForFunction(
      () => document.querySelector('#hydrated[data-hydrated="true"]') ? performance.now() : false, null,
      { timeout: 120_000, polling: "raf" })).jsonValue();
    const rows = await page.locator('[data-testid="match-row"]').count();
    const nodes = await page.evaluate(() => document.getElementsByTagName("*").length);
    results.push({ firstRow, hydrated, rows, nodes, errors: errors.length });
    await page.close();
  }
  await browser.close();
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  console.log("| servers | runs | first row (median) | first row (runs) | hydrated (median) | rows on the page | DOM elements | page errors |");
  console.log("|---:|---:|---:|---|---:|---:|---:|---:|");
  console.log(`| ${servers} | ${runs} | ${median(results.map((r) => r.firstRow)).toFixed(0)} ms | ${results.map((r) => r.firstRow.toFixed(0)).join(", ")} ms | ${median(results.map((r) => r.hydrated)).toFixed(0)} ms | ${results[0].rows} | ${results[0].nodes} | ${results.reduce((n, r) => n + r.errors, 0)} |`);
} finally {
  stop();
}
