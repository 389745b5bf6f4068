import { expect, test, request as playwrightRequest } from "@playwright/test";
import { hydrated, signIn, stranger, watchErrors } from "./helpers";
import { ADMIN_PASSWORD, HOSTILE_NAME, HOSTILE_URL, LONG_NAME } from "../playwright.config";

test("without signing in there is only the login page; a wrong password says so; signing out ends the session", async ({ browser }) => {
  const page = await stranger(browser);
  const errors = watchErrors(page);
  await page.goto("/protection-groups");
  await expect(page).toHaveURL(/\/login\?next=\/protection-groups$/);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("login-error")).toContainText("The user name or password is wrong.");
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/protection-groups$/);
  await hydrated(page);
  await expect(page.getByTestId("user-menu")).toContainText("admin");
  await expect(page.getByTestId("user-role")).toHaveText("admin");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=/);
  expect(errors).toEqual([]);
});

test("an admin adds an operator, who must replace the one-time password before anything else", async ({ page, browser }) => {
  const errors = watchErrors(page);
  await page.goto("/admin/users");
  await hydrated(page);
  const form = page.getByTestId("new-user-form");
  await form.getByLabel("User name").fill("olivia");
  await form.getByLabel("Role").selectOption("operator");
  await form.getByLabel("One-time password").fill("first-time-secret-1");
  await form.getByRole("button", { name: "Create user" }).click();
  await expect(page.getByRole("status")).toContainText("Created olivia (operator)");
  await expect(page.getByTestId("user-row").filter({ hasText: "olivia" })).toContainText("one-time password");

  const olivia = await stranger(browser);
  const oliviaErrors = watchErrors(olivia);
  await signIn(olivia, "olivia", "first-time-secret-1");
  await expect(olivia).toHaveURL(/\/account$/);
  await expect(olivia.getByTestId("must-change")).toBeVisible();
  await olivia.goto("/protection-groups");
  await expect(olivia).toHaveURL(/\/account$/, { timeout: 10_000 });
  await hydrated(olivia);
  const pw = olivia.getByTestId("password-form");
  await pw.getByLabel("Current password").fill("first-time-secret-1");
  await pw.getByLabel("New password (at least 12 characters)").fill("a password of my own");
  await pw.getByLabel("New password again").fill("a password of my own");
  await pw.getByRole("button", { name: "Change password" }).click();
  await expect(olivia.getByRole("status")).toContainText("Password changed.");
  await olivia.goto("/protection-groups");
  await hydrated(olivia);
  await expect(olivia.getByTestId("user-role")).toHaveText("operator");
  await expect(olivia.getByRole("link", { name: "Users" })).toHaveCount(0);
  expect(errors).toEqual([]);
  expect(oliviaErrors).toEqual([]);
});

test("an API token is shown once, works, and stops working when revoked", async ({ page, baseURL }) => {
  const errors = watchErrors(page);
  await page.goto("/admin/tokens");
  await hydrated(page);
  const form = page.getByTestId("new-token-form");
  await form.getByLabel("Name").fill("pipeline");
  await form.getByLabel("Role").selectOption("viewer");
  await form.getByRole("button", { name: "Create token" }).click();
  const secret = (await page.getByTestId("token-secret").textContent()) ?? "";
  expect(secret).toMatch(/^rt_[0-9a-f]{12}_[0-9a-f]{48}$/);
  const api = await playwrightRequest.newContext({ baseURL, extraHTTPHeaders: { authorization: `Bearer ${secret}` }, storageState: { cookies: [], origins: [] } });
  expect((await api.get("/api/v1/estate")).status()).toBe(200);
  await page.reload();
  await hydrated(page);
  await expect(page.locator("body")).not.toContainText(secret);
  await page.getByRole("button", { name: "Revoke…" }).first().click();
  await page.getByRole("button", { name: "Revoke", exact: true }).click();
  await expect(page.getByTestId("tokens-table").locator("tr").filter({ hasText: "pipeline" })).toContainText("revoked");
  expect((await api.get("/api/v1/estate")).status()).toBe(401);
  expect(errors).toEqual([]);
});

test("a share link shows stakeholders the verdicts and the message, and nothing internal", async ({ page, browser }) => {
  const errors = watchErrors(page);
  await page.goto("/share-links");
  await hydrated(page);
  const form = page.getByTestId("new-share-link-form");
  await form.getByLabel("Name (the page title)").fill("Incident bridge");
  await form.getByLabel("Message for stakeholders").fill("Failover drill at 14:00 UTC");
  await form.getByRole("button", { name: "Create link" }).click();
  const path = (await page.getByTestId("share-link-url").textContent()) ?? "";
  expect(path).toMatch(/^\/status\/sl_/);

  const guest = await stranger(browser);
  const guestErrors = watchErrors(guest);
  await guest.goto(path);
  await hydrated(guest);
  await expect(guest.getByTestId("status-title")).toHaveText("Incident bridge");
  await expect(guest.getByTestId("status-message")).toHaveText("Failover drill at 14:00 UTC");
  await expect(guest.getByTestId("user-menu")).toHaveCount(0);
  const html = await guest.content();
  expect(html).not.toMatch(/\b[is]-[0-9a-f]{8,17}\b/);
  expect(html).not.toMatch(/\b\d{12}\b/);
  expect(html).not.toMatch(/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/);
  expect(html).not.toContain("admin");

  await page.getByRole("button", { name: "Revoke…" }).first().click();
  await page.getByRole("button", { name: "Revoke", exact: true }).click();
  await expect(page.getByTestId("share-link-row").filter({ hasText: "Incident bridge" })).toContainText("revoked");
  await guest.reload();
  await expect(guest.getByRole("heading", { name: "This link does not work" })).toBeVisible();
  expect(errors).toEqual([]);
  expect(guestErrors).toEqual([]);
});

test("the audit page lists this session's actions and the chain verifies", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/audit");
  await hydrated(page);
  await expect(page.getByTestId("audit-table")).toContainText("auth.login");
  await expect(page.getByTestId("audit-table")).toContainText("user.create");
  await page.getByLabel("Action starts with").fill("share_link.");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByTestId("audit-table").locator("tbody tr")).toHaveCount(2);
  await page.getByTestId("verify-chain").click();
  await expect(page.getByTestId("chain-ok")).toContainText("Chain intact");
  expect(errors).toEqual([]);
});

test("Name tags holding markup render as inert text, and the longest names stay bounded", async ({ page }) => {
  const errors = watchErrors(page);
  const signedIn = await page.request.post(`${HOSTILE_URL}/api/v1/session`, { data: { username: "admin", password: ADMIN_PASSWORD } });
  expect(signedIn.status()).toBe(200);
  const headers = { "x-csrf-token": (await signedIn.json()).csrf_token };
  const group = await (await page.request.post(`${HOSTILE_URL}/api/v1/protection-groups`, { headers, data: {
    name: "Hostile names", primary: { account_id: "111111111111", region: "us-east-1" },
    dr: { account_id: "222222222222", region: "us-west-2" }, selection: { kind: "all" } } })).json();
  await page.goto(`${HOSTILE_URL}/matching?group=${group.id}`);
  await hydrated(page);
  await page.getByLabel("Search names and ids").fill("pwned");
  const row = page.getByTestId("match-row").first();
  await expect(row).toContainText(HOSTILE_NAME);
  expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined();
  expect(await page.locator("img[src=x]").count()).toBe(0);

  await page.getByLabel("Search names and ids").fill("hr-web-02-www");
  const long = page.getByTestId("match-row").first().getByText(LONG_NAME).first();
  await expect(long).toBeVisible();
  const box = await long.boundingBox();
  expect(box!.width).toBeLessThan(420);
  expect(box!.height).toBeLessThan(60);
  expect(errors).toEqual([]);
});

test("an admin tests cloud access and sees every read pass in each account and region", async ({ page }) => {
  await page.goto("/admin/cloud");
  await hydrated(page);
  await expect(page.getByTestId("cloud-kind")).toContainText("simulated");
  const accounts = page.getByTestId("cloud-accounts").locator("tbody tr");
  await expect(accounts.first()).toBeVisible();
  const places = await accounts.count();
  await page.getByTestId("test-access").click();
  await expect(page.getByTestId("access-summary")).toContainText(/All \d+ checks passed\./);
  const rows = page.getByTestId("access-report").locator("tbody tr");
  // At least the instance read per account and region, each marked ok.
  expect(await rows.count()).toBeGreaterThanOrEqual(places);
  await expect(page.getByTestId("access-report").getByText("missing")).toHaveCount(0);
  // The simulated estate's accounts come from its scenario: registering one is refused, with the reason.
  const form = page.getByTestId("new-account-form");
  await form.getByLabel("Account id").fill("123456789012");
  await form.getByLabel("Name").fill("another");
  await form.getByLabel("Regions (comma-separated)").fill("us-east-1");
  await form.getByRole("button", { name: "Save account" }).click();
  await expect(page.getByRole("alert")).toContainText("fixed");
});
