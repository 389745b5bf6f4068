import { expect, test, type Page } from "@playwright/test";
import { configuredGroup, csrf, hydrated, stranger, watchErrors } from "./helpers";

/** Starts an execution of the plan from the wizard and lands on its dashboard. */
async function startFromWizard(page: Page, planId: string, kind: "Drill" | "Disaster failover") {
  await page.goto("/executions");
  await hydrated(page);
  const wizard = page.getByTestId("failover-wizard");
  await wizard.getByTestId("wizard-plan").selectOption(planId);
  await expect(wizard.getByTestId("wizard-readiness")).toContainText("Billing");
  await wizard.getByTestId("wizard-ack").check();
  await wizard.getByText(kind, { exact: true }).click();
  await wizard.getByTestId("wizard-start").click();
  await expect(page).toHaveURL(/\/executions\/exec-[0-9a-f]{16}$/);
  await hydrated(page);
}

/** Every server row of the dashboard shows `verified`. */
async function allVerified(page: Page) {
  const rows = page.getByTestId("wave").locator("tbody tr");
  const n = await rows.count();
  expect(n).toBeGreaterThan(2);
  await expect(page.getByTestId("wave").locator("tbody tr", { hasText: "verified" })).toHaveCount(n);
}

test("an operator runs a drill, a failover that a second person approves, followed live, and fails back home", async ({ page, browser, request }) => {
  test.setTimeout(420_000);
  const errors = watchErrors(page);
  const group = await configuredGroup(request);
  const headers = await csrf(request);
  const plan = await (await request.post("/api/v1/recovery-plans", { headers, data: { name: "Billing", protection_group_ids: [group] } })).json();
  const approver = `bob${Date.now() % 100000}`;
  expect((await request.post("/api/v1/users", { headers, data: { username: approver, role: "approver", password: "bob-one-time-pass-1" } })).status()).toBe(201);

  // The drill: it runs at once, and the dashboard follows it without a reload.
  await startFromWizard(page, plan.id, "Drill");
  await expect(page.getByTestId("execution-title")).toContainText("Billing — drill");
  await expect(page.getByTestId("execution-phase")).toContainText(/running|returning standbys|succeeded/);
  await expect(page.getByTestId("gantt")).toBeVisible();
  await expect(page.getByTestId("execution-phase")).toContainText("succeeded", { timeout: 120_000 });
  await allVerified(page);
  await expect(page.getByTestId("event-log")).toContainText("standby stopped and released by DRS");
  await expect(page.getByTestId("rto-clock")).toContainText("RTO");

  // DRS swapped the standbys' volumes; the old ones are listed, kept under the retention rule.
  await page.goto("/executions");
  await expect(page.getByTestId("swapped-volumes").locator("tbody tr").first()).toBeVisible();

  // The drill is in the drill history, with the RTO trend and its printable evidence report.
  await page.goto("/reports");
  await hydrated(page);
  await expect(page.getByTestId("rto-trend")).toBeVisible();
  const row = page.getByTestId("history-row").first();
  await expect(row).toContainText("Billing");
  await expect(row).toContainText("met");
  const href = await row.getByTestId("report-html").getAttribute("href");
  await page.goto(href!);
  await expect(page.locator("h1")).toContainText("Drill of Billing — evidence report");
  await expect(page.locator("body")).toContainText("RTO met");

  // The failover: a request that the requester cannot approve themselves.
  await startFromWizard(page, plan.id, "Disaster failover");
  await expect(page.getByTestId("execution-phase")).toContainText("awaiting approval");
  await page.getByTestId("decision-comment").fill("my own request");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("alert")).toContainText("SELF_APPROVAL");

  // A second person approves from the approvals inbox.
  const bob = await stranger(browser);
  const bobErrors = watchErrors(bob);
  await bob.request.post("/api/v1/session", { data: { username: approver, password: "bob-one-time-pass-1" } });
  const bobCsrf = await csrf(bob.request);
  expect((await bob.request.post("/api/v1/session/password", { headers: bobCsrf,
    data: { current_password: "bob-one-time-pass-1", new_password: "bob approves failovers" } })).status()).toBe(200);
  await bob.goto("/approvals");
  await hydrated(bob);
  const card = bob.getByTestId("approval").filter({ hasText: "disaster failover of Billing" });
  await card.getByTestId("decision-comment").fill("region is down, go");
  await card.getByRole("button", { name: "Approve" }).click();
  await expect(bob.getByTestId("approval")).toHaveCount(0);

  // The requester's dashboard moves on by itself, to every server verified in its standby.
  await expect(page.getByTestId("execution-phase")).toContainText(/running|succeeded/);
  await expect(page.getByTestId("execution-phase")).toContainText("succeeded", { timeout: 120_000 });
  await expect(page.getByTestId("execution-title")).toContainText("disaster failover");
  await allVerified(page);
  await expect(page.getByTestId("event-log")).toContainText(`approved by ${approver}`);

  // Stakeholders get a status page without internals.
  await page.getByTestId("share-execution").click();
  const link = await page.getByTestId("execution-share-url").getAttribute("href");
  const stakeholder = await stranger(browser);
  await stakeholder.goto(link!);
  await expect(stakeholder.getByTestId("status-execution")).toContainText("Failover: Billing");
  await expect(stakeholder.getByTestId("status-execution")).toContainText("100%");
  const text = await stakeholder.locator("main").innerText();
  expect(text).not.toMatch(/\bi-[0-9a-f]{8}|\b\d{12}\b|\b\d+\.\d+\.\d+\.\d+\b|admin|bob/);
  // Home again: a failback into the original instances, approved by the second person, with its proof.
  // The prerequisites first: the originals run and lack the AWSDRS tag until the operator allows both.
  await page.getByTestId("check-prerequisites").click();
  await expect(page.getByTestId("prerequisites")).toContainText("ORIGINAL_NOT_STOPPED");
  await page.getByTestId("failback-request").getByText("may stop the original instances").click();
  await page.getByTestId("failback-request").getByText("may tag the originals").click();
  await page.getByTestId("check-prerequisites").click();
  await expect(page.getByTestId("prerequisites")).toHaveText("Every prerequisite passes: 6 servers go home, 0 stay on DR.");
  await page.getByTestId("request-failback").click();
  await expect(page.getByTestId("execution-title")).toContainText("Billing — failback");
  await expect(page.getByTestId("execution-phase")).toContainText("awaiting approval");
  await bob.goto("/approvals");
  await hydrated(bob);
  const back = bob.getByTestId("approval").filter({ hasText: "failback of Billing" });
  await back.getByTestId("decision-comment").fill("primary region is healthy again");
  await back.getByRole("button", { name: "Approve" }).click();
  await expect(bob.getByTestId("approval")).toHaveCount(0);
  await expect(page.getByTestId("execution-phase")).toContainText("succeeded", { timeout: 150_000 });
  await allVerified(page);
  const proof = page.getByTestId("round-trip-proof").locator("tbody tr");
  await expect(proof.first()).toBeVisible();
  await expect(page.getByTestId("round-trip-proof").locator("tbody tr", { hasText: "identical" })).toHaveCount(await proof.count());

  // The one failed request is the refused self-approval, answered 403 like the REST API would.
  expect(errors).toEqual(["Failed to load resource: the server responded with a status of 403 (Forbidden)"]);
  expect(bobErrors).toEqual([]);
});
