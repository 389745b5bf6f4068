// Developer helper: screenshots of console pages with console errors printed.
// Usage: [SHOOT_USER=admin SHOOT_PASSWORD=…] node shoot.mjs <url> <out.png> [width]
import { chromium } from "playwright-core";
const [url, out, width] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: Number(width ?? 1280), height: 900 } });
page.on("console", (m) => { console.log(`console.${m.type()}: ${m.text()}`); });
page.on("pageerror", (e) => console.log(`pageerror: ${e.message}`));
if (process.env.SHOOT_USER) {
  const r = await page.request.post(new URL("/api/v1/session", url).href,
    { data: { username: process.env.SHOOT_USER, password: process.env.SHOOT_PASSWORD ?? "" } });
  if (!r.ok()) console.log(`sign-in failed: ${r.status()}`);
}
await page.goto(url);
await page.waitForSelector('#hydrated[data-hydrated="true"]', { timeout: 60000, state: "attached" }).catch(() => console.log("did not hydrate"));
await page.waitForTimeout(500);
await page.screenshot({ path: out, fullPage: true });
await browser.close();
