#!/usr/bin/env node
// Fleet collector throughput and latency through a real broker.
//
// Phases, alternated over --rounds, each against a fresh store and the same pre-signed heartbeats
// of --devices simulated devices (--per-device heartbeats each):
//   raw         baseline: a subscriber that only counts messages (mqtt.js, QoS 1)
//   sqlite      one collector: verify + store (SQLite, WAL, batched) + receipts
//   pg1         one collector on PostgreSQL
//   pg2         two collectors on one PostgreSQL schema, one shared subscription ($share/…)
// Then latency: one collector (SQLite) at --rate heartbeats/s for --seconds, publish → stored.
// Subscribers and collectors are child processes; the parent publishes, paced so that at most
// --window heartbeats are published but not yet counted (default 150 on a shared broker: Mosquitto's
// default config drops QoS 1 messages queued for a slow subscriber; 3000 on the private broker,
// which the bench starts with max_queued_messages 100000; --private-broker forces that one).
//
// Usage: node bench/fleet.mjs [--broker mqtt://127.0.0.1:1883] [--pg postgres://postgres@127.0.0.1:5432/test]
//          [--devices 5000] [--per-device 4] [--rounds 2] [--window N] [--rate 1000] [--seconds 5]
//          [--private-broker] [--phases raw,sqlite,pg1,pg2] [--verify-threads N] [--receipt-qos 0|1]
// Broker: --broker, else Mosquitto on 127.0.0.1:1883 if it answers, else a private `mosquitto` on a
// free port if the binary exists, else the embedded aedes broker (no shared subscriptions: pg2 skipped).
// PostgreSQL phases are skipped when nothing answers at --pg.
import { fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const role = process.env.EW_BENCH_ROLE;

async function loadSdk() {
  const cache = join(root, 'node_modules', '.cache', 'edgewarden-bench');
  const entry = join(cache, `fleet-${process.env.EW_BENCH_BUNDLE ?? process.pid}.mjs`);
  if (!role) {
    const { build } = await import('esbuild');
    mkdirSync(cache, { recursive: true });
    await build({
      stdin: {
        contents: [
          "export * from './sdk/fleet/index.ts';",
          "export { connectMqtt } from './sdk/telemetry/mqtt-client.ts';",
          "export { startEmbeddedBroker } from './sdk/telemetry/embedded-broker.ts';",
          "export { buildHeartbeat } from './sdk/telemetry/heartbeat.ts';",
          "export { deviceTopic } from './sdk/telemetry/topics.ts';",
          "export { KeySigner } from './sdk/provenance/keys.ts';",
          "export { encodeEnvelope, signEnvelopeSync, PAYLOAD_TYPES } from './sdk/provenance/dsse.ts';",
        ].join('\n'),
        resolveDir: root,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: entry,
      logLevel: 'silent',
      packages: 'external',
    });
  }
  return { sdk: await import(pathToFileURL(entry).href), entry };
}

const answers = (port, host = '127.0.0.1') =>
  new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });

// ---------------------------------------------------------------------------------------------
// Child: a raw counting subscriber.
if (role === 'raw') {
  const { default: mqtt } = await import('mqtt');
  const cfg = JSON.parse(process.env.EW_BENCH_CFG);
  let count = 0;
  const c = mqtt.connect(cfg.url, { clientId: `ew-bench-raw-${process.pid}`, clean: true, reconnectPeriod: 0 });
  c.on('message', () => {
    count++;
  });
  c.on('connect', () => c.subscribe(`ew/v1/${cfg.fleet}/+/hb`, { qos: 1 }, () => process.send({ type: 'ready' })));
  const t = setInterval(() => process.send({ type: 'count', n: count }), 10);
  process.on('message', (m) => {
    if (m.type === 'stop') {
      clearInterval(t);
      c.end(true, () => process.exit(0));
    }
  });
}

// Child: a collector.
if (role === 'collector') {
  const { sdk } = await loadSdk();
  const cfg = JSON.parse(process.env.EW_BENCH_CFG);
  const store = cfg.pg
    ? new sdk.PgStore({ connectionString: cfg.pg, schema: cfg.schema })
    : new sdk.SqliteStore(cfg.db);
  const mqtt = await sdk.connectMqtt(cfg.url, { clientId: `ew-bench-col-${process.pid}` });
  const latencies = [];
  const collector = await sdk.Collector.start({
    store,
    mqtt,
    fleet: cfg.fleet,
    enrollDir: cfg.enrollDir,
    tickMs: 0,
    ...(cfg.shareGroup ? { shareGroup: cfg.shareGroup } : {}),
    ...(cfg.verifyThreads !== undefined ? { verifyThreads: cfg.verifyThreads } : {}),
    ...(cfg.receiptQos !== undefined ? { receiptQos: cfg.receiptQos } : {}),
  });
  if (cfg.latency) collector.on('heartbeat', (h) => latencies.push(Date.now() - h.timeMs));
  process.send({ type: 'ready' });
  const t = setInterval(() => {
    const s = collector.stats();
    process.send({ type: 'count', n: s.heartbeatsAccepted, rejected: s.rejected, errors: s.errors });
  }, 10);
  process.on('message', async (m) => {
    if (m.type === 'stop') {
      clearInterval(t);
      const s = collector.stats();
      process.send({ type: 'final', n: s.heartbeatsAccepted, rejected: s.rejected, errors: s.errors, latencies });
      await collector.close();
      await mqtt.end();
      if (cfg.pg && cfg.dropSchema) await store.dropSchema();
      await store.close();
      process.exit(0);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Parent.
if (!role) {
  const DEVICES = Number(arg('devices', 5000));
  const PER = Number(arg('per-device', 4));
  const ROUNDS = Number(arg('rounds', 2));
  let WINDOW = Number(arg('window', 0));
  const RATE = Number(arg('rate', 1000));
  const SECONDS = Number(arg('seconds', 5));
  const PG = arg('pg', 'postgres://postgres@127.0.0.1:5432/test');
  const work = mkdtempSync(join(tmpdir(), 'ew-bench-fleet-'));
  const { sdk, entry } = await loadSdk();
  const { default: mqtt } = await import('mqtt');
  const children = new Set();
  let privateBroker;
  let embedded;
  const cleanup = () => {
    for (const c of children) c.kill('SIGKILL');
    privateBroker?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    rmSync(entry, { force: true });
  };
  process.on('exit', cleanup);

  // Broker.
  let url = arg('broker');
  let brokerKind = 'given';
  if (!url && !process.argv.includes('--private-broker') && (await answers(1883))) {
    url = 'mqtt://127.0.0.1:1883';
    brokerKind = 'mosquitto (127.0.0.1:1883)';
  }
  if (!url) {
    const port = await new Promise((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    const conf = join(work, 'mosquitto.conf');
    // A collector's broker should queue deeply for it: a burst must wait, not be dropped.
    writeFileSync(
      conf,
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`,
    );
    const p = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
    const ok = await new Promise((resolve) => {
      p.once('error', () => resolve(false));
      const start = Date.now();
      const poll = async () => {
        if (await answers(port)) return resolve(true);
        if (Date.now() - start > 3000) return resolve(false);
        setTimeout(poll, 50);
      };
      poll();
    });
    if (ok) {
      privateBroker = p;
      url = `mqtt://127.0.0.1:${port}`;
      brokerKind = 'private mosquitto';
    } else {
      p.kill();
      embedded = await sdk.startEmbeddedBroker();
      url = embedded.url;
      brokerKind = 'embedded aedes';
    }
  }
  // A broker with default limits (Mosquitto queues 1000 QoS 1 messages per subscriber and drops the
  // rest, and drops sooner under CPU pressure) needs a small window; the private one queues deeply.
  if (!WINDOW) WINDOW = brokerKind === 'private mosquitto' ? 3000 : 150;
  const pgUrl = new URL(PG);
  const hasPg = await answers(Number(pgUrl.port || 5432), pgUrl.hostname);
  const shared = brokerKind !== 'embedded aedes';

  // Devices, keys and pre-signed heartbeats.
  const fleet = `bench${process.pid}`;
  const enrollDir = join(work, 'enroll');
  mkdirSync(enrollDir);
  const t0 = performance.now();
  const messages = [];
  const signers = [];
  for (let d = 0; d < DEVICES; d++) {
    const s = sdk.KeySigner.generate();
    signers.push(s);
    writeFileSync(join(enrollDir, `${d}.pub`), s.publicKeyPem());
  }
  const hbBytes = (s, seq, timeMs) =>
    sdk.encodeEnvelope(
      sdk.signEnvelopeSync(
        s,
        sdk.PAYLOAD_TYPES.heartbeat,
        sdk.buildHeartbeat({
          deviceKeyid: s.keyId,
          fleet,
          bdSeq: 1,
          seq,
          timeUnixMs: timeMs,
          bootId: new Uint8Array(16),
          board: { model: 'bench', family: 'generic-linux', arch: 'x64', os: 'linux', cpus: 2 },
          health: {
            throttled: 0,
            memTotalBytes: 1e9,
            memAvailableBytes: 5e8,
            diskFreeBytes: 1e9,
            load1Milli: 100,
            uptimeS: 60,
          },
          models: [
            {
              digest: new Uint8Array(32).fill(7),
              name: 'vad',
              inferences: seq * 10,
              blocked: 0,
              errors: 0,
              p50Us: 700,
              p99Us: 1500,
              executionProvider: 'cpu',
            },
          ],
          compliance: { state: 'compliant', reasons: [] },
        }),
      ),
    );
  const now = Date.now();
  for (let seq = 1; seq <= PER; seq++) {
    for (let d = 0; d < DEVICES; d++) {
      const s = signers[d];
      messages.push([sdk.deviceTopic(fleet, s.deviceId, 'hb'), Buffer.from(hbBytes(s, seq, now))]);
    }
  }
  const prepS = (performance.now() - t0) / 1000;

  const pubs = await Promise.all(
    [0, 1, 2, 3].map(
      (i) =>
        new Promise((resolve, reject) => {
          const c = mqtt.connect(url, { clientId: `ew-bench-pub-${process.pid}-${i}`, reconnectPeriod: 0 });
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        }),
    ),
  );

  const tuning = {
    ...(arg('verify-threads') !== undefined ? { verifyThreads: Number(arg('verify-threads')) } : {}),
    ...(arg('receipt-qos') !== undefined ? { receiptQos: Number(arg('receipt-qos')) } : {}),
  };
  function child(roleName, cfg0) {
    const cfg = { ...tuning, ...cfg0 };
    const c = fork(fileURLToPath(import.meta.url), [], {
      execArgv:
        roleName === 'collector' && process.env.EW_BENCH_COLLECTOR_ARGS
          ? process.env.EW_BENCH_COLLECTOR_ARGS.split(' ')
          : [],
      env: {
        ...process.env,
        EW_BENCH_ROLE: roleName,
        EW_BENCH_CFG: JSON.stringify(cfg),
        EW_BENCH_BUNDLE: String(process.pid),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(c);
    const state = { proc: c, n: 0, last: undefined, final: undefined };
    state.ready = new Promise((resolve, reject) => {
      c.on('message', (m) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'count') {
          state.n = m.n;
          state.last = m;
        } else if (m.type === 'final') state.final = m;
      });
      c.once('exit', (code) => {
        children.delete(c);
        reject(new Error(`${roleName} exited ${code}`));
      });
    });
    state.stop = () =>
      new Promise((resolve) => {
        c.once('exit', () => resolve(state.final));
        c.send({ type: 'stop' });
      });
    return state;
  }

  /** Publishes every message, paced by what the consumers counted; returns heartbeats/s. */
  async function pump(consumers, list) {
    const counted = () => consumers.reduce((n, c) => n + c.n, 0);
    const start = performance.now();
    let i = 0;
    let lastProgress = Date.now();
    let lastCount = 0;
    while (i < list.length) {
      const n = counted();
      if (n !== lastCount) {
        lastCount = n;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress > 30_000) {
        throw new Error(`stalled: ${n} counted of ${i} published: ${JSON.stringify(consumers.map((c) => c.last))}`);
      }
      const room = WINDOW - (i - n);
      if (room <= 0) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      const end = Math.min(list.length, i + Math.min(room, 500));
      for (; i < end; i++) pubs[i & 3].publish(list[i][0], list[i][1], { qos: 1 });
      await new Promise((r) => setImmediate(r));
    }
    const deadline = Date.now() + Number(arg('drain-timeout-s', 120)) * 1000;
    while (counted() < list.length) {
      if (Date.now() > deadline)
        throw new Error(`only ${counted()} of ${list.length} counted: ${JSON.stringify(consumers.map((c) => c.last))}`);
      await new Promise((r) => setTimeout(r, 1));
    }
    return list.length / ((performance.now() - start) / 1000);
  }

  let phaseNo = 0;
  async function phase(kind) {
    phaseNo++;
    const schema = `ew_bench_${process.pid}_${phaseNo}`;
    const group = `g${process.pid}x${phaseNo}`;
    let consumers;
    if (kind === 'raw') consumers = [child('raw', { url, fleet })];
    else if (kind === 'sqlite')
      consumers = [child('collector', { url, fleet, enrollDir, db: join(work, `p${phaseNo}.db`) })];
    else if (kind === 'pg1')
      consumers = [child('collector', { url, fleet, enrollDir, pg: PG, schema, dropSchema: true })];
    else
      consumers = [0, 1].map((k) =>
        child('collector', { url, fleet, enrollDir, pg: PG, schema, shareGroup: group, dropSchema: k === 0 }),
      );
    await Promise.all(consumers.map((c) => c.ready));
    const rate = await pump(consumers, messages);
    const finals = await Promise.all(consumers.map((c) => c.stop()));
    const rejected = finals.filter(Boolean).flatMap((f) => Object.entries(f.rejected ?? {}));
    return { rate, split: finals.map((f) => f?.n), rejected: Object.fromEntries(rejected) };
  }

  const only = arg('phases');
  const kinds = ['raw', 'sqlite', ...(hasPg ? ['pg1'] : []), ...(hasPg && shared ? ['pg2'] : [])].filter(
    (k) => !only || only.split(',').includes(k),
  );
  const results = Object.fromEntries(kinds.map((k) => [k, []]));
  const details = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of kinds) {
      const p = await phase(k);
      process.stderr.write(`round ${r} ${k}: ${Math.round(p.rate)} hb/s\n`);
      results[k].push(p.rate);
      details.push({ round: r, phase: k, hbPerS: Math.round(p.rate), split: p.split, rejected: p.rejected });
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const best = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v))]));

  // Latency at a fixed rate, signed at publish time (so the heartbeat's own time is the publish time).
  const latCol = child('collector', { url, fleet, enrollDir, db: join(work, 'lat.db'), latency: true });
  await latCol.ready;
  const total = RATE * SECONDS;
  const perTick = Math.max(1, Math.round(RATE / 100));
  let sent = 0;
  const latStart = performance.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - latStart) / 1000) * RATE));
    while (sent < due) {
      const s = signers[sent % DEVICES];
      const seq = 1000 + Math.floor(sent / DEVICES);
      pubs[sent & 3].publish(sdk.deviceTopic(fleet, s.deviceId, 'hb'), Buffer.from(hbBytes(s, seq, Date.now())), {
        qos: 1,
      });
      sent++;
    }
    await new Promise((r) => setTimeout(r, Math.max(1, 1000 / (RATE / perTick) / 2)));
  }
  const latDeadline = Date.now() + 30_000;
  while (latCol.n < total && Date.now() < latDeadline) await new Promise((r) => setTimeout(r, 5));
  const fin = await latCol.stop();
  const lat = [...fin.latencies].sort((a, b) => a - b);
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))];

  for (const c of pubs) c.end(true);
  await embedded?.close();
  const out = {
    bench: 'fleet-collector',
    broker: brokerKind,
    postgres: hasPg ? PG.replace(/\/\/[^@]*@/, '//') : null,
    devices: DEVICES,
    heartbeatsPerPhase: messages.length,
    rounds: ROUNDS,
    window: WINDOW,
    presignSeconds: Number(prepS.toFixed(2)),
    hbPerS: best,
    ratios: {
      sqliteVsRaw: Number((best.sqlite / best.raw).toFixed(3)),
      ...(best.pg1 ? { pg1VsRaw: Number((best.pg1 / best.raw).toFixed(3)) } : {}),
      ...(best.pg2 ? { pg2VsPg1: Number((best.pg2 / best.pg1).toFixed(3)) } : {}),
    },
    targets: {
      oneCollectorHbPerS: { target: 8000, measured: best.sqlite, met: best.sqlite >= 8000 },
      ...(best.pg2
        ? {
            twoCollectorsOnPg: {
              target: 1.7,
              measured: Number((best.pg2 / best.pg1).toFixed(3)),
              met: best.pg2 / best.pg1 >= 1.7,
            },
          }
        : {}),
      latencyP99Ms: { target: 50, atHbPerS: RATE, measured: pct(99), met: pct(99) <= 50 },
    },
    latencyMs: { rate: RATE, count: lat.length, of: total, p50: pct(50), p90: pct(90), p99: pct(99), max: lat.at(-1) },
    phases: details,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  cleanup();
  process.exit(0);
}
