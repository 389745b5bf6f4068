import { expect, test } from "@playwright/test";
import { configuredGroup, hydrated, watchErrors } from "./helpers";

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

  // A new wave takes a server; an empty wave can be removed, one with servers cannot; the title follows a rename.
  await page.getByTestId("add-wave").click();
  await page.getByTestId("add-wave").click();
  await expect(page.getByTestId("wave")).toHaveCount(5);
  await expect(page.getByTestId("wave").nth(0).getByTestId("remove-wave")).toBeDisabled();
  await page.getByTestId("wave").nth(4).getByTestId("remove-wave").click();
  await expect(page.getByTestId("wave")).toHaveCount(4);
  await page.getByTestId("wave").nth(2).getByTestId("plan-pair").first().getByLabel("Move to wave").selectOption("3");
  await page.getByLabel("Name", { exact: true }).fill("Billing failover, split");
  await page.getByRole("button", { name: "Save plan" }).click();
  await expect(page.getByRole("status")).toContainText("Saved (version 3).");
  await expect(page.getByTestId("plan-name")).toHaveText("Billing failover, split");
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("wave")).toHaveCount(4);
  await expect(page.getByTestId("wave").nth(3).getByTestId("plan-pair")).toHaveCount(1);
  expect(errors).toEqual([]);
});
