/**
 * Test support: a report page in real headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core: a fresh profile, offline), with what went wrong on it collected — page errors,
 * console errors, dialogs (a script that ran would open them) — and every URL it requested.
 */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface OpenedPage {
  page: Page;
  /** Page errors, console errors and dialogs, in order. */
  problems: string[];
  requests: string[];
}

export interface Browser {
  /** Opens `file` from file:// and waits for `ready` (a selector) to appear. */
  open(file: string, ready: string): Promise<OpenedPage>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
      offline: true,
    });
  } catch (e) {
    await fs.rm(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    async open(file, ready) {
      const page = await context.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('dialog', (d) => {
        problems.push(`dialog: ${d.message()}`);
        void d.dismiss();
      });
      page.on('request', (q) => requests.push(q.url()));
      await page.goto(pathToFileURL(file).href);
      await page.locator(ready).waitFor({ timeout: 5_000 });
      return { page, problems, requests };
    },
    async close() {
      await context.close();
      await fs.rm(profile, { recursive: true, force: true });
    },
  };
}
