import { expect, test, type APIRequestContext } from "@playwright/test";
import { csrf, hydrated, watchErrors } from "./helpers";

/** A configured group of the billing application, through the API with the admin's session. */
async function configuredGroup(request: APIRequestContext): Promise<string> {
  const headers = await csrf(request);
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

test("an operator makes a recovery plan from a group's dr:wave tags and moves a server to another wave", async ({ page, request }) => {
  const errors = watchErrors(page);
  await configuredGroup(request);
  await page.goto("/recovery-plans");
  await hydrated(page);
  const form = page.getByTestId("new-plan-form");
  await form.getByLabel("Name").fill("Billing failover");
  await form.getByLabel(/Billing \(\d+ pairs\)/).check();
  await form.getByRole("button", { name: "Create plan" }).click();
  await expect(page).toHaveURL(/\/recovery-plans\/plan-[0-9a-f]{16}$/);
  await expect(page.getByTestId("plan-name")).toHaveText("Billing failover");
  await hydrated(page);
  const waves = page.getByTestId("wave");
  await expect(waves).toHaveCount(3);
  const secondWave = await waves.nth(1).getByTestId("plan-pair").count();
  const thirdWave = await waves.nth(2).getByTestId("plan-pair").count();
  expect(secondWave).toBeGreaterThan(1);

  // An emptied wave is refused on save (no empty waves); moving one of several is fine.
  await waves.nth(1).getByTestId("plan-pair").first().getByLabel("Move to wave").selectOption("2");
  await expect(waves.nth(2).getByTestId("plan-pair")).toHaveCount(thirdWave + 1);
  await waves.nth(1).getByText("Wait for an approver before this wave").check();
  await page.getByRole("button", { name: "Save plan" }).click();
  await expect(page.getByRole("status")).toContainText("Saved (version 2).");

  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("wave").nth(1).getByTestId("plan-pair")).toHaveCount(secondWave - 1);
  await expect(page.getByTestId("wave").nth(2).getByTestId("plan-pair")).toHaveCount(thirdWave + 1);
  await expect(page.getByTestId("wave").nth(1).getByText("Wait for an approver before this wave")).toBeChecked();
  expect(errors).toEqual([]);
});
