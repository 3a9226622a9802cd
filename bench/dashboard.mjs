#!/usr/bin/env node
// Dashboard benchmark in Chromium, with 1,000 devices in the fleet:
//  - first paint: DOMContentLoaded → device table drawn (and painted), against the same page on an
//    empty fleet (the baseline), alternating rounds in one browser;
//  - live update: heartbeat stored by the collector → its row updated in the page via SSE, against
//    the SSE event's own arrival in the page (the baseline), one heartbeat at a time and in a burst.
// Usage: node bench/dashboard.mjs [--devices 1000] [--rounds 5] [--updates 30] [--burst 100]
// Needs Chromium at /usr/bin/chromium (Debian: apt install chromium). Prints JSON; targets ≤ 1 s.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const DEVICES = arg('devices', 1000);
const ROUNDS = arg('rounds', 5);
const UPDATES = arg('updates', 30);
const BURST = arg('burst', 100);
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) {
  console.error(`bench/dashboard.mjs needs Chromium at ${CHROMIUM} (Debian: apt install chromium)`);
  process.exit(2);
}

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const cache = join(root, 'node_modules', '.cache', 'edgewarden-bench');
mkdirSync(cache, { recursive: true });
const entry = join(cache, `dashboard-${process.pid}.mjs`);
await build({
  stdin: {
    contents: [
      "export { Collector } from './sdk/fleet/collector.ts';",
      "export { SqliteStore } from './sdk/fleet/sqlite-store.ts';",
      "export { SimDevice } from './sdk/fleet/testkit.ts';",
      "export { startFleetHttp } from './sdk/fleet/http.ts';",
      "export { CHROMIUM_LAUNCH } from './test/chromium.ts';",
    ].join('\n'),
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  packages: 'external',
  outfile: entry,
  logLevel: 'error',
});
const { Collector, SqliteStore, SimDevice, startFleetHttp, CHROMIUM_LAUNCH } = await import(pathToFileURL(entry).href);
rmSync(entry, { force: true });

const work = mkdtempSync(join(tmpdir(), 'ew-bench-dash-'));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : Number.NaN;
};
const r1 = (x) => Math.round(x * 10) / 10;

async function fleet(name, n) {
  const store = new SqliteStore(join(work, `${name}.db`));
  const collector = await Collector.start({ store, tickMs: 0 });
  const devices = [];
  for (let i = 0; i < n; i++) {
    const d = new SimDevice('bench');
    await collector.registry.enroll({ deviceId: d.id, publicKey: d.signer.publicKey, status: 'approved' });
    devices.push(d);
  }
  // Births and two heartbeats each, handled as the collector handles MQTT messages.
  await Promise.all(devices.map((d) => collector.handle(d.topic('birth'), d.birth({ withKey: false }))));
  for (let k = 0; k < 2; k++) await Promise.all(devices.map((d) => collector.handle(d.topic('hb'), d.heartbeat())));
  await collector.idle();
  const http = await startFleetHttp(collector, { host: '127.0.0.1', port: 0 });
  return { store, collector, devices, http };
}

const seedStart = performance.now();
const full = await fleet('full', DEVICES);
const seedMs = performance.now() - seedStart;
const empty = await fleet('empty', 0);
const browser = await chromium.launch(CHROMIUM_LAUNCH);

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

  // ---- first paint ----
  async function load(url) {
    await page.goto(url);
    await page.waitForFunction(() => performance.getEntriesByName('ew:painted').length > 0);
    return page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const ready = performance.getEntriesByName('ew:ready')[0].startTime;
      const painted = performance.getEntriesByName('ew:painted')[0].startTime;
      return {
        dclToTable: ready - nav.domContentLoadedEventStart,
        dclToPainted: painted - nav.domContentLoadedEventStart,
        navToPainted: painted,
        rows: document.querySelectorAll('#devices tbody tr').length,
      };
    });
  }
  await load(empty.http.url); // warm-up: browser caches, JIT
  await load(full.http.url);
  const fullRuns = [];
  const emptyRuns = [];
  for (let r = 0; r < ROUNDS; r++) {
    emptyRuns.push(await load(empty.http.url));
    fullRuns.push(await load(full.http.url));
  }
  if (fullRuns.some((x) => x.rows !== DEVICES))
    throw new Error(`table rows ${fullRuns.map((x) => x.rows)} ≠ ${DEVICES}`);

  // ---- live updates ----
  const stored = new Map();
  full.collector.on('heartbeat', (e) => stored.set(`${e.deviceId}:${e.seq}`, Date.now()));
  await page.goto(full.http.url);
  await page.waitForSelector('body[data-ready="true"]');
  await page.evaluate(() => {
    window.__seen = {};
    window.__sse = {};
    new MutationObserver((records) => {
      const now = Date.now();
      for (const r of records)
        for (const n of r.addedNodes) if (n.dataset?.id) window.__seen[`${n.dataset.id}:${n.dataset.seq}`] ??= now;
    }).observe(document.querySelector('#devices tbody'), { childList: true });
    const es = new EventSource('/api/events');
    es.addEventListener('heartbeat', (e) => {
      const h = JSON.parse(e.data);
      window.__sse[`${h.deviceId}:${h.seq}`] ??= Date.now();
    });
    return new Promise((resolve) => {
      es.onopen = resolve;
    });
  });
  await page.waitForSelector('#live.on');

  async function measure(keys) {
    await page.waitForFunction((ks) => ks.every((k) => window.__seen[k] && window.__sse[k]), keys, { timeout: 10_000 });
    const seen = await page.evaluate((ks) => ks.map((k) => [window.__seen[k], window.__sse[k]]), keys);
    return keys.map((k, i) => ({ visible: seen[i][0] - stored.get(k), sse: seen[i][1] - stored.get(k) }));
  }

  const single = [];
  for (let i = 0; i < UPDATES; i++) {
    const d = full.devices[(i * 37) % full.devices.length];
    await full.collector.handle(d.topic('hb'), d.heartbeat());
    single.push(...(await measure([`${d.id}:${d.seq}`])));
  }
  const burstDevices = full.devices.slice(0, Math.min(BURST, full.devices.length));
  await Promise.all(burstDevices.map((d) => full.collector.handle(d.topic('hb'), d.heartbeat())));
  const burst = await measure(burstDevices.map((d) => `${d.id}:${d.seq}`));

  const firstPaintMs = median(fullRuns.map((x) => x.dclToPainted));
  const liveP95 = pct(
    single.map((x) => x.visible),
    95,
  );
  const out = {
    bench: 'dashboard',
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    devices: DEVICES,
    seedMs: Math.round(seedMs),
    firstPaint: {
      rounds: ROUNDS,
      dclToTableMs: r1(median(fullRuns.map((x) => x.dclToTable))),
      dclToPaintedMs: r1(firstPaintMs),
      navigationToPaintedMs: r1(median(fullRuns.map((x) => x.navToPainted))),
      baselineEmptyFleetDclToPaintedMs: r1(median(emptyRuns.map((x) => x.dclToPainted))),
      ratioToEmptyFleet: r1(firstPaintMs / Math.max(1, median(emptyRuns.map((x) => x.dclToPainted)))),
    },
    liveUpdate: {
      heartbeats: single.length,
      storedToVisibleP50Ms: median(single.map((x) => x.visible)),
      storedToVisibleP95Ms: liveP95,
      storedToVisibleMaxMs: Math.max(...single.map((x) => x.visible)),
      baselineStoredToSseP50Ms: median(single.map((x) => x.sse)),
      burst: {
        heartbeats: burst.length,
        storedToVisibleP50Ms: median(burst.map((x) => x.visible)),
        storedToVisibleMaxMs: Math.max(...burst.map((x) => x.visible)),
        baselineStoredToSseMaxMs: Math.max(...burst.map((x) => x.sse)),
      },
    },
    targets: { firstPaintMs: 1000, liveUpdateMs: 1000 },
  };
  out.pass =
    firstPaintMs <= 1000 &&
    out.liveUpdate.storedToVisibleMaxMs <= 1000 &&
    out.liveUpdate.burst.storedToVisibleMaxMs <= 1000;
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
} finally {
  await browser.close();
  for (const f of [full, empty]) {
    await f.http.close();
    await f.collector.close();
    await f.store.close();
  }
  rmSync(work, { recursive: true, force: true });
}
