/**
 * The status page of `maas serve` (GET /, static/status.html) in a real browser: Debian's
 * Chromium against the built CLI serving two generated models behind a token. It signs in with
 * HTTP Basic as a person would, lists the models, sends a test request from its form, shows
 * rates from /metrics, stops polling while hidden, rides out a restart, and leaves screenshots
 * in test-output/ for a person to look at.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { mlp, writeModel } from '../../fixtures/models.js';
import { SKIP_BROWSER, launchBrowser, testOutputDir } from '../helpers/browser.js';
import { makeRegistry } from '../helpers/registry.js';
import { spawnServe } from '../helpers/serve-process.js';

const TOKEN = randomBytes(12).toString('hex');
const auth = { authorization: `Bearer ${TOKEN}` };

interface InferResponse {
  model_name: string;
  outputs: { name: string; shape: number[]; datatype: string; data: number[] }[];
}

/** A page that records what would mean the page is broken: script errors, CSP refusals, requests leaving the origin. */
async function openPage(browser: Browser, url: string, options: Parameters<Browser['newContext']>[0]): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ httpCredentials: { username: 'maas', password: TOKEN }, ...options });
  const page = await context.newPage();
  const problems: string[] = [];
  const origin = new URL(url).origin;
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  page.on('request', (request) => {
    if (!request.url().startsWith('data:') && new URL(request.url()).origin !== origin) problems.push(`left the origin: ${request.url()}`);
  });
  const response = await page.goto(`${url}/`);
  expect(response?.status()).toBe(200);
  return { context, page, problems };
}

/** long enough for a model to load and two polls (every 2 s) to pass. */
const WAIT = { timeout: 6000 };

const row = (page: Page, model: string) => page.locator(`#model-rows tr[data-model="${model}"]`);

describe.skipIf(SKIP_BROWSER)('the status page in a real browser', () => {
  it('signs in with the token, lists the models, sends a test request, shows rates, and survives a restart', async () => {
    const reg = await makeRegistry();
    for (const registered of [
      await reg.cli('register', writeModel(reg.work, 'mlp.onnx', mlp()), '--alias', 'prod'),
      await reg.cli('register', writeModel(reg.work, 'ranker.onnx', mlp({ inputSize: 6, hiddenSize: 16, outputSize: 2, seed: 7 }))),
    ]) expect(registered.exitCode, registered.stderr).toBe(0);
    const args = ['--device', 'cpu', '--token', TOKEN, '--keep-alive', '10m'];
    let serve = await spawnServe(['--port', '0', ...args], { cwd: reg.dir, env: reg.env });
    const { url, port } = serve;

    // Without the token: 401 with a Basic challenge, so a browser asks for it.
    const anonymous = await fetch(`${url}/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm="maas"/);

    const browser = await launchBrowser();
    // A browser without the token is challenged and not let in; with a wrong one, neither.
    const stranger = await browser.newContext();
    const asked = await stranger.request.get(`${url}/`);
    expect(asked.status()).toBe(401);
    expect(asked.headers()['www-authenticate']).toMatch(/^Basic realm="maas"/);
    await expect((await stranger.newPage()).goto(`${url}/`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    const wrong = await browser.newContext({ httpCredentials: { username: 'maas', password: 'not-the-token' } });
    const wrongPage = await wrong.newPage();
    expect((await wrongPage.goto(`${url}/`))?.status()).toBe(401);
    await stranger.close();
    await wrong.close();
    // The token in the page's address (http://maas:TOKEN@host/): its calls still reach the server.
    const inUrl = await browser.newContext();
    const inUrlPage = await inUrl.newPage();
    const address = new URL(url);
    address.username = 'maas';
    address.password = TOKEN;
    await inUrlPage.goto(address.href);
    await expect.poll(() => row(inUrlPage, 'mlp@1').getAttribute('data-state'), WAIT).toBe('READY');
    await inUrl.close();

    const desktop = await openPage(browser, url, { viewport: { width: 1280, height: 800 } });
    const { page } = desktop;
    const metricsPolls: number[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/metrics') metricsPolls.push(Date.now());
    });

    // Both models, READY, with their device and the server's readiness.
    await expect.poll(() => row(page, 'mlp@1').getAttribute('data-state'), WAIT).toBe('READY');
    await expect.poll(() => row(page, 'ranker@1').getAttribute('data-state'), WAIT).toBe('READY');
    expect(await row(page, 'mlp@1').locator('.badge').textContent()).toBe('READY');
    expect(await row(page, 'ranker@1').locator('.c-device').textContent()).toBe('cpu');
    expect(await row(page, 'mlp@1').locator('.c-mem .sub').textContent()).toMatch(/^file \d+ B$/);
    expect(await row(page, 'mlp@1').locator('.c-idle .sub').textContent()).toMatch(/^unloads in (9|10) min/);
    await expect.poll(() => page.locator('#ready').textContent(), WAIT).toBe('Ready');
    expect(await page.locator('#server').textContent()).toMatch(/^maas \d+\.\d+\.\d+/);

    // The test request: the form makes a request from ranker's signature.
    await page.locator('#t-model').selectOption({ label: 'ranker@1' });
    await expect.poll(() => page.locator('#t-body').inputValue(), WAIT).toContain('"shape": [1, 6]');
    const body = await page.locator('#t-body').inputValue();
    expect(JSON.parse(body)).toEqual({ inputs: [{ name: 'input', shape: [1, 6], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] }] });

    // An edited, wrong request (Ctrl+Enter sends): the server's error and status, as text.
    await page.locator('#t-body').fill('{"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}');
    await page.locator('#t-body').press('Control+Enter');
    await expect.poll(() => page.locator('#t-result .error-text').textContent(), WAIT).toBe("input 'input': dim 1 is 2, the model expects 6");
    expect(await page.locator('#t-result .status').textContent()).toBe('HTTP 400');

    // Reset, send: the answer the page shows is the one a direct POST gets.
    await page.locator('#t-reset').click();
    expect(await page.locator('#t-body').inputValue()).toBe(body);
    const answered = page.waitForResponse((r) => r.url().endsWith('/v2/models/ranker/versions/1/infer'));
    await page.locator('#t-send').click();
    const pageAnswer = (await (await answered).json()) as InferResponse;
    const direct = await fetch(`${url}/v2/models/ranker/versions/1/infer`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
    expect(direct.status).toBe(200);
    const expected = (await direct.json()) as InferResponse;
    expect(pageAnswer).toEqual(expected);
    const output = page.locator('#t-result li[data-output="output"]');
    await expect.poll(() => output.count(), WAIT).toBe(1);
    expect(await output.locator('.o-head').textContent()).toContain('[1, 2]');
    const shown = (await output.locator('.values').textContent())!.split(',').map(Number);
    expect(shown).toHaveLength(2);
    shown.forEach((value, i) => expect(value).toBeCloseTo(expected.outputs[0]!.data[i]!, 5));
    expect(await page.locator('#t-result .result-head').textContent()).toMatch(/HTTP 200.*round trip/);

    // Traffic from elsewhere shows as a rate and a latency within a poll or two: about 16
    // requests a second from here, until the screenshots are taken.
    const one = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }] });
    const post = (path: string, payload: string) => fetch(`${url}${path}`, { method: 'POST', headers: auth, body: payload }).then((r) => r.arrayBuffer(), () => undefined);
    let sending = true;
    const traffic = (async () => {
      while (sending) {
        await Promise.all([post('/v2/models/mlp/versions/prod/infer', one), post('/v2/models/mlp/infer', one), post('/v2/models/mlp/infer', one), post('/v2/models/ranker/infer', body)]);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    // Dark, and a phone (cards instead of the table): open now, so they have history to draw.
    const [dark, phone] = await Promise.all([
      openPage(browser, url, { viewport: { width: 1280, height: 800 }, colorScheme: 'dark' }),
      openPage(browser, url, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }),
    ]);
    // (The page's own metadata request counts too, at most 0.5/s: more than 1/s is the traffic.)
    await expect.poll(async () => Number(await row(page, 'mlp@1').locator('.c-rate .v').textContent()), WAIT).toBeGreaterThan(1);
    expect(await row(page, 'mlp@1').locator('.c-lat').first().textContent()).toMatch(/^\d+(\.\d+)? (µs|ms|s)$/);
    expect(await row(page, 'mlp@1').locator('.c-err').textContent()).toBe('0 %');
    await expect.poll(() => page.locator('#t-rate').textContent(), WAIT).not.toBe('—');
    expect(await page.locator('#t-rss').textContent()).toMatch(/ MB$/);

    // histogram_quantile as Prometheus computes it, in the page's own code.
    const quantiles = await page.evaluate(() => {
      const { histogramQuantile } = (globalThis as any).maasStatus as { histogramQuantile: (q: number, b: [number, number][]) => number };
      const buckets: [number, number][] = [[0.1, 0], [0.2, 50], [0.4, 100], [Infinity, 100]];
      return [histogramQuantile(0.5, buckets), histogramQuantile(0.75, buckets), histogramQuantile(0.99, [[0.1, 1], [Infinity, 2]]), histogramQuantile(0.5, [[0.1, 0], [Infinity, 0]])];
    });
    expect(quantiles[0]).toBeCloseTo(0.2, 9);
    expect(quantiles[1]).toBeCloseTo(0.3, 9);
    expect(quantiles[2]).toBe(0.1);
    expect(quantiles[3]).toBeNaN();

    // Screenshots for a person, once the sparklines have a few scrapes (test-output/).
    const scrapes = (p: Page) => p.evaluate('maasStatus.history().length') as Promise<number>;
    await expect.poll(() => scrapes(page), { timeout: 15_000 }).toBeGreaterThanOrEqual(6);
    const out = testOutputDir();
    await page.screenshot({ path: join(out, 'status-page-desktop.png'), fullPage: true });
    await dark.page.screenshot({ path: join(out, 'status-page-desktop-dark.png'), fullPage: true });
    await phone.page.locator('#t-model').selectOption({ label: 'mlp@1' });
    await expect.poll(() => phone.page.locator('#t-body').inputValue(), WAIT).toContain('"shape": [1, 4]');
    await phone.page.locator('#t-send').click();
    await expect.poll(() => phone.page.locator('#t-result li').count(), WAIT).toBe(1);
    // Cards, not a table: nothing scrolls sideways on a phone.
    expect(await phone.page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await phone.page.screenshot({ path: join(out, 'status-page-phone.png'), fullPage: true });
    sending = false;
    await traffic;
    expect([...dark.problems, ...phone.problems]).toEqual([]);
    await phone.context.close();
    await dark.context.close();

    // A hidden tab stops polling; a visible one polls at once.
    const setVisibility = (state: 'hidden' | 'visible') => page.evaluate((s) => {
      const { document } = globalThis as any;
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
    await setVisibility('hidden');
    await new Promise((r) => setTimeout(r, 500)); // a poll already in flight may finish
    const hiddenAt = Date.now();
    await new Promise((r) => setTimeout(r, 3500)); // more than one poll interval
    expect(metricsPolls.filter((t) => t > hiddenAt)).toEqual([]);
    expect(await page.locator('#f-poll').textContent()).toContain('Paused');
    await setVisibility('visible');
    await expect.poll(() => metricsPolls.filter((t) => t > hiddenAt).length, { timeout: 1500 }).toBeGreaterThan(0);

    // The server goes away: the page says so; it comes back on the same port: the page recovers.
    expect(await serve.stop()).toBe(0);
    await expect.poll(() => page.locator('#banner').isVisible(), { timeout: 8000 }).toBe(true);
    expect(await page.locator('#banner').textContent()).toContain('Server unreachable');
    expect(await page.locator('#ready').textContent()).toBe('Unreachable');
    serve = await spawnServe(['--port', String(port), ...args], { cwd: reg.dir, env: reg.env });
    await expect.poll(() => page.locator('#banner').isVisible(), { timeout: 8000 }).toBe(false);
    await expect.poll(() => page.locator('#ready').textContent(), WAIT).toBe('Ready');
    await expect.poll(() => row(page, 'ranker@1').getAttribute('data-state'), WAIT).toBe('READY');

    expect([...desktop.problems]).toEqual([]);
    await serve.stop();
  });
});
