// The fleet dashboard in a real browser (Debian's Chromium driven by playwright-core), against the
// demo: a device appears and turns compliant, its page draws charts, a result file it signed checks
// out on the check page and a tampered copy shows its failure code. Nothing is fetched from
// anywhere but the collector. Skipped where /usr/bin/chromium is absent (.ci/run installs it).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Demo, startDemo } from '../sdk/demo/demo';
import { KeySigner } from '../sdk/provenance/keys';
import { CHROMIUM_LAUNCH, CHROMIUM_PATH, haveChromium as chromiumHere } from './chromium';

// The page functions below run in the browser; this is the little of the DOM they use.
declare const document: {
  querySelector(sel: string): { getAttribute(name: string): string | null } | null;
  documentElement: { scrollWidth: number };
};

const haveChromium = chromiumHere();
if (!haveChromium)
  console.warn(`dashboard browser test skipped: needs Chromium at ${CHROMIUM_PATH} (Debian: apt install chromium)`);

const ROOT = join(import.meta.dirname, '..');

describe.skipIf(!haveChromium)('fleet dashboard in Chromium', () => {
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  const foreign: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [demo, browser] = await Promise.all([startDemo({ devices: 1 }), chromium.launch(CHROMIUM_LAUNCH)]);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // Offline by design: everything must come from the collector itself.
    const origin = new URL(demo.url).origin;
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin)) return route.continue();
      foreign.push(url);
      return route.abort();
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
  }, 30_000);

  it('lists the device, which turns compliant, live', async () => {
    await page.goto(demo.url);
    await page.waitForSelector('body[data-ready="true"]');
    const id = demo.devices[0]!.id;
    const row = page.locator(`#devices tr[data-id="${id}"]`);
    await row.waitFor();
    await page.waitForSelector(`#devices tr[data-id="${id}"][data-compliance="compliant"][data-online="true"]`, {
      timeout: 15_000,
    });
    // Live: the row's heartbeat seq moves on without a reload.
    const seq = Number(await row.getAttribute('data-seq'));
    await page.waitForFunction(
      ([i, s]) => Number(document.querySelector(`#devices tr[data-id="${i}"]`)?.getAttribute('data-seq')) > s,
      [id, seq] as const,
      { timeout: 10_000 },
    );
    await expect(row.locator('td[data-label="Models"]').textContent()).resolves.toContain('vad');
    await expect(page.locator('#live.on').count()).resolves.toBe(1);
  });

  it('opens the device page with its charts drawn', async () => {
    const id = demo.devices[0]!.id;
    await page.locator(`#devices tr[data-id="${id}"] td[data-label="Fleet"]`).click();
    await page.waitForSelector('#device-view:not([hidden]) .chart[data-chart="rate"] canvas');
    await expect(page.locator('.device-id').textContent()).resolves.toBe(id);
    expect(await page.locator('#device-view .chart canvas').count()).toBe(4);
    // The charts follow new heartbeats live: the inference rate needs two of them, then grows.
    await page.waitForFunction(
      () => Number(document.querySelector('.chart[data-chart="rate"]')?.getAttribute('data-points')) >= 2,
      undefined,
      { timeout: 10_000 },
    );
    await page.screenshot({ path: screenshot('dashboard-device.png'), fullPage: true });
  });

  it('checks a signed result file, and shows the failure code of a tampered one', async () => {
    const device = demo.devices[0]!;
    await vi.waitFor(() => expect(device.resultFile).toBeDefined(), { timeout: 10_000 });
    const good = readFileSync(device.resultFile!, 'utf8');
    const tampered = JSON.parse(good) as { outputs: { output: { data: number[] } } };
    tampered.outputs.output.data[0] = 0.999;

    await page.goto(`${demo.url}/#/verify`);
    await page.waitForSelector('#verify-view:not([hidden])');
    await page.setInputFiles('#file', { name: 'result.json', mimeType: 'application/json', buffer: Buffer.from(good) });
    await page.waitForSelector('#verdict-title');
    await expect(page.locator('#verdict-title').textContent()).resolves.toContain('Verified');
    await expect(page.locator('#verdict').textContent()).resolves.toContain(device.id);

    await page.setInputFiles('#file', {
      name: 'tampered.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(tampered)),
    });
    await page.waitForSelector('#verdict-code');
    await expect(page.locator('#verdict-code').textContent()).resolves.toBe('EW_PROVENANCE_OUTPUT_DIGEST');
    await page.screenshot({ path: screenshot('dashboard.png'), fullPage: true });
  });

  it('approves a device that enrolled itself on first use', async () => {
    const newcomer = KeySigner.generate();
    await demo.collector.registry.enroll({
      deviceId: newcomer.deviceId,
      publicKey: newcomer.publicKey,
      status: 'pending',
    });
    await page.goto(`${demo.url}/#/device/${newcomer.deviceId}`);
    await page.waitForSelector('#approve');
    await expect(page.locator('#device-compliance').textContent()).resolves.toBe('awaiting approval');
    await page.click('#approve');
    await page.waitForSelector('#device-view:not([hidden]) .device-id');
    await page.waitForFunction(() => document.querySelector('#approve') === null);
    await expect(page.locator('#device-compliance').textContent()).resolves.toBe('unknown');
    expect((await demo.collector.device(newcomer.deviceId))?.pending).toBe(false);
  });

  it('shows alerts and reads on a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${demo.url}/#/alerts`);
    await page.waitForSelector('#alerts-view:not([hidden]) #conditions li');
    await page.goto(`${demo.url}/#/`);
    await page.waitForSelector('#devices tr[data-id]');
    // The table collapses to one block per device: nothing wider than the screen.
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: screenshot('dashboard-phone.png') });
    expect(foreign).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

function screenshot(name: string): string {
  const dir = join(ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
