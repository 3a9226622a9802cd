import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../../sdk/link/framing';
import { decodeLinkMessage, encodeLinkMessage, type LinkMessage } from '../../sdk/link/messages';
import { createMemoryTransportPair, type MemoryLink } from '../../sdk/testing/memory-transport';
import { SIM_ACTUATORS, VirtualMcu, type VirtualMcuOptions } from './virtual-mcu';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

/** A raw host end: writes messages, collects what the device sends (and what failed to decode). */
async function rawHost(opts: Partial<VirtualMcuOptions> = {}, link: MemoryLink = createMemoryTransportPair()) {
  const mcu = new VirtualMcu({ transport: link.device, imuHz: false, autoStream: false, ...opts });
  stops.push(() => mcu.stop());
  const got: LinkMessage[] = [];
  const dec = new FrameDecoder((p) => got.push(decodeLinkMessage(p)));
  link.host.on('data', (c) => dec.push(c));
  await link.host.open();
  await mcu.start();
  const send = (m: LinkMessage) => link.host.write(encodeFrame(encodeLinkMessage(m)));
  const settle = () => new Promise<void>((r) => setImmediate(r));
  return { mcu, got, dec, send, settle, link };
}

describe('VirtualMcu', () => {
  it('says Hello with seq 0 when it boots and again, with the request seq, when asked', async () => {
    const { got, send, settle } = await rawHost({ audio: new Int16Array(16) });
    await settle();
    expect(got[0]).toMatchObject({ seq: 0, body: { type: 'hello', firmwareName: 'ew-sim' } });
    await send({ seq: 5, body: { type: 'helloRequest', protocolVersion: 1 } });
    await settle();
    expect(got[1]).toMatchObject({ seq: 5, body: { type: 'hello' } });
  });

  it('acks valid commands, nacks unknown actuators and bad values with reasons, answers pings', async () => {
    const { mcu, got, send, settle } = await rawHost();
    await send({ seq: 1, body: { type: 'command', actuatorId: SIM_ACTUATORS.RELAY, value: 1, durationMs: 0 } });
    await send({ seq: 2, body: { type: 'command', actuatorId: 42, value: 1, durationMs: 0 } });
    await send({ seq: 3, body: { type: 'command', actuatorId: SIM_ACTUATORS.LED, value: 5, durationMs: 0 } });
    await send({ seq: 4, body: { type: 'ping', timeUs: 99 } });
    await settle();
    expect(got.slice(1).map((m) => [m.seq, m.body.type, 'reason' in m.body ? m.body.reason : undefined])).toEqual([
      [1, 'ack', undefined],
      [2, 'nack', 1],
      [3, 'nack', 2],
      [4, 'pong', undefined],
    ]);
    expect(mcu.actuators.get(SIM_ACTUATORS.RELAY)).toBe(1);
  });

  it('streams audio windows that continue the WAV and IMU batches of 6 channels', async () => {
    const audio = Int16Array.from({ length: 1024 }, (_, i) => i);
    const { mcu, got, settle } = await rawHost({ audio, imuHz: 50, imuBatch: 5 });
    mcu.emitAudioWindow();
    mcu.emitAudioWindow();
    mcu.emitImuBatch();
    await settle();
    const batches = got.filter((m) => m.body.type === 'sensorBatch').map((m) => m.body) as Extract<
      LinkMessage['body'],
      { type: 'sensorBatch' }
    >[];
    expect(batches.map((b) => [b.sensorId, b.sampleCount, b.firstSampleUs])).toEqual([
      [1, 512, 0],
      [1, 512, 32000],
      [2, 5, 0],
    ]);
    const second = new DataView(batches[1]!.samples.buffer, batches[1]!.samples.byteOffset);
    expect(second.getInt16(0, true)).toBe(512);
    expect(batches[2]!.samples.length).toBe(5 * 6 * 2);
  });

  it('goes silent while stalled, says Hello seq 0 on reboot with actuators off', async () => {
    const { mcu, got, send, settle } = await rawHost();
    await send({ seq: 1, body: { type: 'command', actuatorId: SIM_ACTUATORS.LED, value: 1, durationMs: 0 } });
    mcu.stall();
    await send({ seq: 2, body: { type: 'ping', timeUs: 1 } });
    await settle();
    expect(got.map((m) => m.body.type)).toEqual(['hello', 'ack']);
    mcu.resume();
    mcu.reboot();
    await settle();
    expect(got.at(-1)).toMatchObject({ seq: 0, body: { type: 'hello' } });
    expect(mcu.actuators.get(SIM_ACTUATORS.LED)).toBeUndefined();
  });

  it('injects bit errors and garbage that the host decoder counts and drops', async () => {
    const { mcu, got, dec, settle } = await rawHost({ audio: new Int16Array(512).fill(1000) });
    mcu.setFaults({ bitErrorRate: 1e-3, garbageRate: 0.3 });
    for (let i = 0; i < 300; i++) mcu.emitAudioWindow();
    await settle();
    const s = dec.stats;
    expect(s.crcErrors + s.cobsErrors).toBeGreaterThan(50);
    expect(got.length).toBe(s.frames);
    for (const m of got.slice(1)) expect(m.body.type).toBe('sensorBatch');
  });

  it('closes its own transport on disconnect()', async () => {
    const { mcu, link } = await rawHost();
    await mcu.disconnect();
    expect(link.device.isOpen).toBe(false);
  });
});
