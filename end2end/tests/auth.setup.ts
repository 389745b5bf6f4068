import { expect, test as setup } from "@playwright/test";
import * as path from "node:path";
import { ADMIN_PASSWORD } from "../playwright.config";

// Signs the admin in once through the login form; the console tests reuse the session cookie.
setup("the admin signs in", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Estate", exact: true })).toBeVisible();
  await page.context().storageState({ path: path.join(__dirname, "..", ".auth", "admin.json") });
});
