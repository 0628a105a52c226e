/** Helpers for the end-to-end tests: Debian's Chromium under playwright-core
 * (this machine cannot download a browser), mails read from the catcher's
 * directory, axe-core scans, and screenshots for docs/. */

import { AxeBuilder } from "@axe-core/playwright";
import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import PostalMime from "postal-mime";
import { chromium, type Browser, type Page } from "playwright-core";

export const BASE_URL = process.env.MARKETPLACE_URL ?? "http://127.0.0.1:8000";
const MAIL_DIR = process.env.MAIL_DIR ?? "../var/mail";
const SHOTS = process.env.SCREENSHOT_DIR ?? "";
/** The operators' command, run against the stack's own stores (its VAR_DIR). */
const ADMIN_CLI = process.env.MARKETPLACE_ADMIN ?? "../.venv/bin/marketplace-admin";

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // No sandbox as root in a container; no background traffic on a closed network.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The link of the newest mail to `to` whose path is `path` (e.g. /verify-email). */
export async function mailedLink(to: string, path: string): Promise<string> {
  return until(`a mail to ${to} with ${path}`, async () => {
    const names = (await readdir(MAIL_DIR)).filter((n) => n.endsWith(".eml")).sort().reverse();
    for (const name of names) {
      const mail = await PostalMime.parse(await readFile(join(MAIL_DIR, name)));
      if (!mail.to?.some((a) => a.address === to)) continue;
      const link = mail.text?.match(/https?:\/\/\S+/g)?.find((l) => new URL(l).pathname === path);
      if (link) return link;
    }
    return undefined;
  });
}

export interface Finding {
  page: string;
  id: string;
  impact: string;
  nodes: number;
}

/** axe-core's serious and critical findings on the page as it stands. */
export async function seriousViolations(page: Page, name: string): Promise<Finding[]> {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ page: name, id: v.id, impact: v.impact ?? "", nodes: v.nodes.length }));
}

export async function screenshot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** What an operator runs to make a registered person an administrator. */
export function grantAdmin(email: string): void {
  execFileSync(ADMIN_CLI, ["grant-admin", email], { cwd: "..", stdio: "pipe" });
}

/** What the browser saves when the button named `button` is pressed, as text. */
export async function downloaded(page: Page, button: string): Promise<string> {
  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: button, exact: true }).click();
  let text = "";
  for await (const chunk of await (await download).createReadStream()) text += String(chunk);
  return text;
}
