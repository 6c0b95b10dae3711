/**
 * A real browser for tests of what `maas serve` shows people: Debian's Chromium driven by
 * playwright-core (no browser download). A local run without it skips those tests with one
 * line saying how to enable them; MAAS_REQUIRE_TOOLS (CI) makes them run, and fail without it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { onTestFinished } from 'vitest';

export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
const REQUIRE_TOOLS = Boolean(process.env.MAAS_REQUIRE_TOOLS);
if (!HAVE_CHROMIUM && !REQUIRE_TOOLS) console.warn(`SKIPPED: the real-browser tests need Chromium at ${CHROMIUM} (apt-get install chromium)`);
/** skip only when the browser is missing and the run does not require it. */
export const SKIP_BROWSER = !HAVE_CHROMIUM && !REQUIRE_TOOLS;

/** Where tests leave screenshots for a person to look at: test-output/ under the repository root. */
export function testOutputDir(): string {
  const dir = fileURLToPath(new URL('../../test-output/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Headless Chromium, closed when the test ends. */
export async function launchBrowser(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  onTestFinished(() => browser.close());
  return browser;
}
