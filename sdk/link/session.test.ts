import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateSpeechLike } from '../../devices/simulator/audio-gen';
import { SIM_ACTUATORS, SIM_SENSORS, VirtualMcu, type VirtualMcuOptions } from '../../devices/simulator/virtual-mcu';
import { isEdgewardenError } from '../errors';
import { createMemoryTransportPair, type MemoryLink } from '../testing/memory-transport';
import { decodeFrame } from './framing';
import { decodeLinkMessage, type LinkMessage, NackReason } from './messages';
import { LinkSession, type LinkSessionOptions, nackReasonOf } from './session';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

function rig(
  opts: { session?: Partial<LinkSessionOptions>; mcu?: Partial<VirtualMcuOptions>; link?: MemoryLink } = {},
) {
  const link = opts.link ?? createMemoryTransportPair({ seed: 42 });
  const mcu = new VirtualMcu({ transport: link.device, imuHz: false, autoStream: false, ...opts.mcu });
  const session = new LinkSession({ transport: link.host, pingIntervalMs: 0, ...opts.session });
  cleanups.push(
    () => session.close(),
    () => mcu.stop(),
  );
  return { link, mcu, session };
}

/** Messages the device received, decoded from what the host wrote. */
function deviceInbox(mcu: VirtualMcu): LinkMessage[] {
  const got: LinkMessage[] = [];
  mcu.on('message', (m) => got.push(m));
  return got;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return isEdgewardenError(e) ? e.code : `not-edgewarden: ${e}`;
  }
  return undefined;
}

describe('LinkSession handshake', () => {
  it('opens with Hello: firmware identity, sensors and actuators', async () => {
    const { mcu, session } = rig({ mcu: { audio: new Int16Array(512), imuHz: 100 } });
    await mcu.start();
    const events: boolean[] = [];
    session.on('hello', (_h, meta) => events.push(meta.reset));
    const hello = await session.open();
    expect(hello).toMatchObject({ firmwareName: 'ew-sim', protocolVersion: 1, maxRxPayload: 1088 });
    expect(hello.sensors.map((s) => s.name)).toEqual(['mic', 'imu']);
    expect(hello.actuators.map((a) => [a.id, a.name])).toEqual([
      [1, 'led'],
      [2, 'relay'],
    ]);
    expect(events).toEqual([false]);
    expect(session.state).toBe('open');
  });

  it('refuses a firmware with another protocol version at Hello, with a clear error, and closes the transport', async () => {
    const { mcu, session, link } = rig({ mcu: { protocolVersion: 2, firmwareName: 'old-fw' } });
    await mcu.start();
    let error: unknown;
    await session.open().catch((e) => {
      error = e;
    });
    expect(isEdgewardenError(error, 'EW_LINK_PROTOCOL_VERSION')).toBe(true);
    expect((error as Error).message).toMatch(/old-fw.*protocol v2.*v1/);
    expect((error as { details: object }).details).toMatchObject({ device: 2, host: 1 });
    expect(link.host.isOpen).toBe(false);
    expect(session.state).toBe('closed');
  });

  it('fails with EW_LINK_HANDSHAKE when nothing answers', async () => {
    vi.useFakeTimers();
    const { link, session } = rig({ session: { helloTimeoutMs: 100, helloRetries: 1 } });
    await link.device.open(); // a port with nobody speaking the protocol
    const p = codeOf(session.open());
    await vi.advanceTimersByTimeAsync(250);
    expect(await p).toBe('EW_LINK_HANDSHAKE');
  });

  it('learns of a device reset from an unasked Hello with seq 0', async () => {
    const { mcu, session } = rig();
    await mcu.start();
    await session.open();
    const next = session.next('hello', 2000);
    mcu.reboot();
    const [info, meta] = await next;
    expect(meta.reset).toBe(true);
    expect(info.firmwareName).toBe('ew-sim');
  });
});

describe('LinkSession requests', () => {
  it('sets the LED with Command and resolves on Ack; seq numbers count up from 1', async () => {
    const { mcu, session } = rig();
    const inbox = deviceInbox(mcu);
    await mcu.start();
    await session.open();
    const changed = mcu.next('actuator', 2000);
    await session.command(SIM_ACTUATORS.LED, 1);
    expect((await changed)[0]).toMatchObject({ name: 'led', value: 1 });
    expect(mcu.actuators.get(SIM_ACTUATORS.LED)).toBe(1);
    await session.sendResult({ modelName: 'vad', label: 1, score: 0.9, recordDigest: new Uint8Array(8) });
    expect(inbox.map((m) => [m.seq, m.body.type])).toEqual([
      [1, 'helloRequest'],
      [2, 'command'],
      [3, 'result'],
    ]);
  });

  it('surfaces a Nack as EW_LINK_NACK carrying the firmware reason code', async () => {
    const { mcu, session } = rig();
    await mcu.start();
    await session.open();
    let error: unknown;
    await session.command(9, 1).catch((e) => {
      error = e;
    });
    expect(isEdgewardenError(error, 'EW_LINK_NACK')).toBe(true);
    expect(nackReasonOf(error)).toBe(NackReason.UNKNOWN_ACTUATOR);
    expect((error as { details: object }).details).toMatchObject({
      reasonName: 'UNKNOWN_ACTUATOR',
      detail: 'no actuator 9',
    });
    const bad = await session.command(SIM_ACTUATORS.RELAY, 7).catch((e) => e);
    expect(nackReasonOf(bad)).toBe(NackReason.BAD_VALUE);
    expect(session.stats.nacks).toBe(2);
  });

  it('retries a lost request with the same seq, then times out with EW_LINK_TIMEOUT after all attempts', async () => {
    vi.useFakeTimers();
    const { mcu, session, link } = rig({ session: { requestTimeoutMs: 100, retries: 2 } });
    const inbox = deviceInbox(mcu);
    await mcu.start();
    const opened = session.open();
    await vi.advanceTimersByTimeAsync(0);
    await opened;

    // First attempt lost, the retry gets through.
    link.stall('hostToDevice');
    const ok = session.command(SIM_ACTUATORS.LED, 1);
    await vi.advanceTimersByTimeAsync(50);
    link.stall('hostToDevice', false);
    await vi.advanceTimersByTimeAsync(60);
    await ok;
    expect(session.stats.retries).toBe(1);

    // Nothing gets through: 3 attempts, then a timeout.
    link.stall('hostToDevice');
    const lost = codeOf(session.command(SIM_ACTUATORS.LED, 0));
    await vi.advanceTimersByTimeAsync(299);
    let settled = false;
    void lost.then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(2);
    expect(await lost).toBe('EW_LINK_TIMEOUT');
    expect(session.stats.timeouts).toBe(1);
    expect(session.stats.retries).toBe(3);
    expect(inbox.filter((m) => m.body.type === 'command').map((m) => m.seq)).toEqual([2]);
  });

  it('keeps working through bit errors and garbage bursts on the device’s output', async () => {
    const { mcu, session } = rig({
      session: { requestTimeoutMs: 20, retries: 8 },
      mcu: { faults: { bitErrorRate: 2e-3, garbageRate: 0.2 }, seed: 3 },
    });
    await mcu.start();
    await session.open();
    for (let i = 0; i < 42; i++) await session.command(SIM_ACTUATORS.LED, i & 1);
    const s = session.stats;
    expect(s.crcErrors + s.cobsErrors).toBeGreaterThan(0);
    expect(mcu.actuators.get(SIM_ACTUATORS.LED)).toBe(1);
  });

  it('refuses to send a message larger than the firmware accepts (its Hello max_rx_payload)', async () => {
    const { mcu, session } = rig({ mcu: { maxRxPayload: 32 } });
    await mcu.start();
    await session.open();
    const r = session.sendResult({ modelName: 'x'.repeat(40), label: 0, score: 0, recordDigest: new Uint8Array(0) });
    expect(await codeOf(r)).toBe('EW_LINK_OVERSIZE');
  });

  it('answers a Ping from the device with a Pong carrying the same seq and time', async () => {
    const { link, session } = rig();
    await link.device.open();
    const out: LinkMessage[] = [];
    link.device.on('data', (c) => out.push(decodeLinkMessage(decodeFrame(c))));
    const { encodeFrame } = await import('./framing');
    const { encodeLinkMessage } = await import('./messages');
    const opening = session.open();
    await vi.waitFor(() => expect(out.length).toBe(1));
    await link.device.write(encodeFrame(encodeLinkMessage({ seq: 1, body: { type: 'hello', ...helloOf() } })));
    await opening;
    await link.device.write(encodeFrame(encodeLinkMessage({ seq: 77, body: { type: 'ping', timeUs: 123 } })));
    await vi.waitFor(() => expect(out.length).toBe(2));
    expect(out[1]).toEqual({ seq: 77, body: { type: 'pong', timeUs: 123 } });
  });
});

function helloOf() {
  return {
    firmwareName: 'raw',
    firmwareVersion: '0',
    protocolVersion: 1,
    uniqueId: new Uint8Array(0),
    sensors: [],
    actuators: [],
    maxRxPayload: 0,
  };
}

describe('LinkSession hostile input', () => {
  it('survives random bytes and valid frames with nonsense bodies from the device, and still works', async () => {
    const { link, mcu, session } = rig();
    await mcu.start();
    await session.open();
    const { encodeFrame } = await import('./framing');
    const errors: string[] = [];
    session.on('protocolError', (e) => errors.push(e.code));
    let seed = 7;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let i = 0; i < 500; i++) {
      const junk = Uint8Array.from({ length: 1 + (rnd() % 200) }, () => rnd());
      // Half raw noise, half well-framed payloads that are not LinkMessages (or are odd ones).
      await link.device.write(i % 2 ? junk : encodeFrame(junk));
    }
    await link.device.write(Uint8Array.from([0]));
    await session.command(SIM_ACTUATORS.LED, 1);
    expect(session.state).toBe('open');
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors)).toEqual(new Set(['EW_LINK_MALFORMED']));
  });
});

describe('LinkSession streams', () => {
  it('emits typed sensorBatch and log events', async () => {
    const audio = generateSpeechLike({ seconds: 1 });
    const { mcu, session } = rig({ mcu: { audio, imuHz: 100 } });
    await mcu.start();
    await session.open();
    const batches: { sensorId: number; sampleCount: number; bytes: number }[] = [];
    session.on('sensorBatch', (b) =>
      batches.push({ sensorId: b.sensorId, sampleCount: b.sampleCount, bytes: b.samples.length }),
    );
    const log = session.next('log', 2000);
    mcu.emitAudioWindow();
    mcu.emitImuBatch();
    mcu.log(2, 'battery low');
    expect((await log)[0]).toEqual({ level: 2, text: 'battery low' });
    expect(batches).toEqual([
      { sensorId: SIM_SENSORS.MIC, sampleCount: 512, bytes: 1024 },
      { sensorId: SIM_SENSORS.IMU, sampleCount: 10, bytes: 120 },
    ]);
  });
});

describe('LinkSession liveness and reconnects', () => {
  it('detects a silent peer within 3 missed pings', async () => {
    vi.useFakeTimers();
    const interval = 100;
    const { mcu, session } = rig({ session: { pingIntervalMs: interval, maxMissedPings: 3, reconnect: false } });
    await mcu.start();
    const opened = session.open();
    await vi.advanceTimersByTimeAsync(0);
    await opened;
    const pings = deviceInbox(mcu);
    // Alive: pings are answered, no disconnect however long we wait.
    await vi.advanceTimersByTimeAsync(interval * 10);
    expect(session.state).toBe('open');
    const disconnects: string[] = [];
    session.on('disconnect', (d) => disconnects.push(d.reason));
    mcu.stall();
    const before = session.stats.pingsSent;
    await vi.advanceTimersByTimeAsync(interval * 4 - 1);
    expect(disconnects).toEqual([]);
    await vi.advanceTimersByTimeAsync(interval + 1);
    expect(disconnects).toEqual(['silent']);
    expect(session.stats.pingsSent - before).toBe(3);
    expect(pings.filter((m) => m.body.type === 'ping').length).toBeGreaterThan(0);
    expect(session.state).toBe('closed');
  });

  it('rejects pending requests with EW_LINK_DISCONNECTED on unplug and reconnects 20 times with backoff', async () => {
    const link = createMemoryTransportPair();
    const { mcu, session } = rig({
      link,
      session: {
        reconnect: { initialDelayMs: 5, maxDelayMs: 40, jitter: 0 },
        requestTimeoutMs: 1000,
        helloTimeoutMs: 100,
      },
      mcu: { reopenEveryMs: 5 },
    });
    await mcu.start();
    await session.open();
    const reasons: string[] = [];
    session.on('disconnect', (d) => reasons.push(d.reason));
    for (let i = 0; i < 20; i++) {
      link.stall('hostToDevice');
      const pending = codeOf(session.command(SIM_ACTUATORS.LED, 1));
      const back = session.next('reconnect', 3000);
      link.unplug();
      expect(await pending).toBe('EW_LINK_DISCONNECTED');
      link.stall('hostToDevice', false);
      setTimeout(() => link.replug(), 15);
      const [info] = await back;
      expect(info.hello.firmwareName).toBe('ew-sim');
      expect(info.attempts).toBeGreaterThanOrEqual(1);
      await session.command(SIM_ACTUATORS.LED, i & 1);
    }
    expect(reasons).toEqual(Array(20).fill('lost'));
    expect(session.stats.reconnects).toBe(20);
  });

  it('close() during a reconnect leaves the transport closed and stops trying', async () => {
    vi.useFakeTimers();
    const link = createMemoryTransportPair();
    const { mcu, session } = rig({
      link,
      session: { reconnect: { initialDelayMs: 10, jitter: 0 }, helloTimeoutMs: 50 },
    });
    await mcu.start();
    const opened = session.open();
    await vi.advanceTimersByTimeAsync(0);
    await opened;
    const events: string[] = [];
    session.on('reconnectFailed', () => events.push('failed'));
    session.on('reconnect', () => events.push('reconnect'));
    link.unplug();
    link.replug(); // the host can open again, but the device stays silent: handshakes time out
    await vi.advanceTimersByTimeAsync(30); // first attempt: port open, Hello pending
    expect(link.host.isOpen).toBe(true);
    await session.close();
    await vi.advanceTimersByTimeAsync(5000);
    expect(session.state).toBe('closed');
    expect(link.host.isOpen).toBe(false);
    expect(events).toEqual([]);
  });

  it('backs off exponentially up to the cap while the device stays away', async () => {
    vi.useFakeTimers();
    const link = createMemoryTransportPair();
    const { mcu, session } = rig({ link, session: { reconnect: { initialDelayMs: 100, maxDelayMs: 800, jitter: 0 } } });
    await mcu.start();
    const opened = session.open();
    await vi.advanceTimersByTimeAsync(0);
    await opened;
    const delays: number[] = [];
    session.on('reconnectFailed', (f) => delays.push(f.nextDelayMs));
    link.unplug();
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 800 + 800 + 10);
    expect(delays).toEqual([200, 400, 800, 800, 800]);
  });
});
