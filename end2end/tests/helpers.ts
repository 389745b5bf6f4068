import { expect, type APIRequestContext, type Browser, type Page } from "@playwright/test";

/** Collects console errors and page errors; a clean console is part of every test. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));
  return errors;
}

/** Waits until the page has hydrated (the footer marker flips). */
export async function hydrated(page: Page) {
  await expect(page.locator("#hydrated")).toHaveAttribute("data-hydrated", "true", { timeout: 60_000 });
}

/** Headers for a state-changing API call made with the signed-in session: its CSRF token. */
export async function csrf(request: APIRequestContext): Promise<Record<string, string>> {
  const me = await (await request.get("/api/v1/session")).json();
  return { "x-csrf-token": me.csrf_token };
}

/** A page in a fresh browser context: nobody is signed in. */
export async function stranger(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  return context.newPage();
}

/** Signs in through the login form. */
export async function signIn(page: Page, user: string, password: string) {
  await page.goto("/login");
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** A configured group of the billing application, through the API with the admin's session. */
export async function configuredGroup(request: APIRequestContext): Promise<string> {
  const headers = await csrf(request);
  for (const p of (await (await request.get("/api/v1/recovery-plans")).json()).recovery_plans) {
    expect((await request.delete(`/api/v1/recovery-plans/${p.id}`, { headers })).status()).toBe(204);
  }
  for (const s of (await (await request.get("/api/v1/protection-groups")).json()).protection_groups) {
    await request.post(`/api/v1/protection-groups/${s.group.id}/configure-allow-launching/rollback`, { headers, data: {} });
    expect((await request.delete(`/api/v1/protection-groups/${s.group.id}`, { headers })).status()).toBe(204);
  }
  const g = await (await request.post("/api/v1/protection-groups", { headers, data: {
    name: "Billing", primary: { account_id: "111111111111", region: "us-east-1" },
    dr: { account_id: "222222222222", region: "us-west-2" }, selection: { kind: "tags", tags: { app: "billing" } } } })).json();
  const report = await (await request.post("/api/v1/drs/instances/match", { headers, data: { protection_group_id: g.id } })).json();
  const pairs = report.pairs.filter((p: any) => p.status === "ready").map((p: any) => ({ source_server_id: p.source_server_id, standby_instance_id: p.standby_instance_id }));
  expect((await request.post(`/api/v1/protection-groups/${g.id}/instance-pairs`, { headers, data: { pairs } })).status()).toBe(201);
  expect((await request.post(`/api/v1/protection-groups/${g.id}/configure-allow-launching`, { headers, data: {} })).status()).toBe(200);
  return g.id;
}

