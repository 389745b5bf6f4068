import { expect, test } from "@playwright/test";
import { hydrated, watchErrors } from "./helpers";

test("an admin adds a webhook, sees only its host, and sees its failed deliveries", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/notifications");
  await hydrated(page);
  const form = page.getByTestId("new-webhook-form");
  const name = `on-call ${Date.now() % 100000}`;
  await form.getByLabel("Name").fill(name);
  // Nothing listens on port 9: every delivery fails.
  await form.getByLabel(/^URL/).fill("http://127.0.0.1:9/services/T000/B000/secret-path");
  await form.getByLabel("Wave started").check();
  await form.getByLabel(/Signing secret/).fill("a secret of sixteen or more");
  await form.getByRole("button", { name: "Save webhook" }).click();
  await expect(page.getByRole("status")).toContainText("will not be shown again");
  const card = page.getByTestId("webhook").filter({ hasText: name });
  await expect(card).toContainText("http://127.0.0.1:9/…");
  await expect(card).toContainText("Wave started");
  await expect(card).toContainText("signed");
  await expect(page.locator("body")).not.toContainText("secret-path");

  // A test notice fails to connect; the failure shows on the card after a reload.
  await card.getByTestId("test-webhook").click();
  await expect(card).toContainText("Test notice queued");
  await expect(async () => {
    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId("webhook").filter({ hasText: name }).getByTestId("webhook-failures")).toContainText("cannot connect to the receiver", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByTestId("webhooks-failing")).toBeVisible();

  // Deleting asks first.
  const again = page.getByTestId("webhook").filter({ hasText: name });
  await again.getByRole("button", { name: "Delete…" }).click();
  await again.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(page.getByTestId("webhook").filter({ hasText: name })).toHaveCount(0);
  expect(errors).toEqual([]);
});
