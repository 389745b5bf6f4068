import { expect, test } from "@playwright/test";
import { csrf, hydrated, watchErrors } from "./helpers";

test("the estate overview shows the bundled estate and its problems", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/");
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Estate", exact: true })).toBeVisible();
  const dr = page.getByTestId("estate-slice").filter({ hasText: "recovery" }).filter({ hasText: "us-west-2" });
  await expect(dr).toContainText("STALLED 1");
  await expect(dr).toContainText("running 1");
  expect(errors).toEqual([]);
});

test("the group form checks input in the browser before sending it", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/protection-groups/new");
  await hydrated(page);
  await page.getByRole("button", { name: "Create protection group" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "give the protection group a name" }).first()).toBeVisible();
  await expect(page).toHaveURL(/\/protection-groups\/new$/);
  expect(errors).toEqual([]);
});

test("an operator creates a group, sees the conflicts, accepts the ready pairs and finds them after a reload", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/protection-groups/new");
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill("Shop estate");
  await page.getByRole("button", { name: "Create protection group" }).click();
  await expect(page).toHaveURL(/\/matching\?group=pg-/);

  // Every bundled conflict is shown with its reason.
  await expect(page.getByRole("heading", { name: "Conflicts (1)" })).toBeVisible();
  await expect(page.getByTestId("conflict")).toContainText("2 standbys are named \"shop-web-02\"");

  // Filtering to conflicts shows only conflict rows: one source server and both standbys.
  await hydrated(page);
  await page.getByLabel("Status").selectOption("conflict");
  const rows = page.getByTestId("match-row");
  await expect(rows).toHaveCount(3);
  for (const status of await rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-status")))) {
    expect(status).toBe("conflict");
  }
  await page.getByLabel("Status").selectOption("unmatched");
  await expect(page.getByTestId("match-row").filter({ hasText: "AWSDRS_TAG_NOT_EXACT" })).toHaveCount(1);
  await expect(page.getByTestId("match-row").filter({ hasText: "NO_NAME" })).toHaveCount(1);

  // Fifty rows a page; the pager walks the rest.
  await page.getByLabel("Status").selectOption("");
  await expect(page.locator("#row-count")).toContainText("Showing 1–50 of");
  await expect(page.getByTestId("match-row")).toHaveCount(50);
  await page.getByRole("button", { name: "Next →" }).click();
  await expect(page.locator("#row-count")).toContainText("Showing 51–100 of");
  await page.getByLabel("Search names and ids").fill("billing-db-01");
  await expect(page.getByTestId("match-row")).toHaveCount(1);
  await expect(page.locator("#row-count")).toContainText("Showing 1–1 of 1 rows");
  await page.getByLabel("Search names and ids").fill("");

  // Accept the clean pairs.
  const accept = page.getByRole("button", { name: /Accept all ready pairs \(\d+\)/ });
  const label = (await accept.textContent()) ?? "";
  const n = Number(/\((\d+)\)/.exec(label)?.[1]);
  expect(n).toBeGreaterThan(80);
  await accept.click();
  await expect(page.getByRole("status")).toContainText(`Accepted ${n} pairs`);
  await expect(page.getByRole("button", { name: "Accept all ready pairs (0)" })).toBeDisabled();

  // They are stored: a fresh page load shows them as accepted.
  await page.reload();
  await hydrated(page);
  await page.getByLabel("Status").selectOption("accepted");
  await expect(page.locator("#row-count")).toContainText(`of ${n} rows`);
  expect(errors).toEqual([]);
});

test("the REST API answers next to the console", async ({ request }) => {
  const health = await request.get("/api/v1/health");
  expect(health.ok()).toBeTruthy();
  expect(await health.json()).toMatchObject({ status: "ok", cloud: "simulated" });
  const missing = await request.get("/api/v1/protection-groups/pg-0123456789abcdef");
  expect(missing.status()).toBe(404);
  expect((await missing.json()).error.code).toBe("PROTECTION_GROUP_NOT_FOUND");
});

test("an operator previews, applies and rolls back the launch-into configuration, and sees readiness", async ({ page, request }) => {
  const errors = watchErrors(page);
  // Start from no groups (earlier tests paired the standbys), then a group with its ready pairs, through the API.
  const headers = await csrf(request);
  for (const s of (await (await request.get("/api/v1/protection-groups")).json()).protection_groups) {
    expect((await request.delete(`/api/v1/protection-groups/${s.group.id}`, { headers })).status()).toBe(204);
  }
  const g = await (await request.post("/api/v1/protection-groups", { headers, data: {
    name: "Configured", primary: { account_id: "111111111111", region: "us-east-1" },
    dr: { account_id: "222222222222", region: "us-west-2" }, selection: { kind: "tags", tags: { app: "billing" } } } })).json();
  const report = await (await request.post("/api/v1/drs/instances/match", { headers, data: { protection_group_id: g.id } })).json();
  const pairs = report.pairs.filter((p: any) => p.status === "ready").map((p: any) => ({ source_server_id: p.source_server_id, standby_instance_id: p.standby_instance_id }));
  expect((await request.post(`/api/v1/protection-groups/${g.id}/instance-pairs`, { headers, data: { pairs } })).status()).toBe(201);

  await page.goto(`/protection-groups/${g.id}/configuration`);
  await hydrated(page);
  await page.getByRole("button", { name: "Preview changes (dry run)" }).click();
  await expect(page.getByTestId("preview-summary")).toContainText(`${pairs.length} servers would change`);
  await expect(page.getByTestId("preview-summary")).toContainText("Nothing was written");

  await page.getByRole("button", { name: `Apply to ${pairs.length} servers` }).click();
  await expect(page.getByTestId("results-summary")).toContainText(`${pairs.length} applied`);
  await expect(page.locator("#progress-text")).toHaveText(`${pairs.length} of ${pairs.length} servers`);
  await expect(page.locator('tr[data-state="configured"]')).toHaveCount(pairs.length);

  // Rollback asks first.
  await page.getByRole("button", { name: "Roll back…" }).click();
  await page.getByRole("button", { name: "Roll back", exact: true }).click();
  await expect(page.getByTestId("results-summary")).toContainText(`${pairs.length} restored`);
  await expect(page.locator('tr[data-state="not configured"]')).toHaveCount(pairs.length);

  // The group page shows readiness with its failing checks and their remediation.
  await page.goto(`/protection-groups/${g.id}`);
  await hydrated(page);
  await page.getByRole("button", { name: "Evaluate now" }).click();
  const panel = page.getByTestId("readiness");
  await expect(panel.locator(".verdict")).toHaveAttribute("data-verdict", "blocked");
  await expect(panel.locator('tr[data-check="launch_config.applied"]')).toContainText("Apply the launch-into configuration");
  expect(errors).toEqual([]);
});
