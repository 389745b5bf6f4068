import { expect, type APIRequestContext, type Page } from "@playwright/test";

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
