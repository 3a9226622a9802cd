// Serial record and replay: a session against a device is recorded to a file; CI replays it with no
// device attached. The committed recording (fixtures/ew-host-fw.recording.jsonl) was made against
// the C host firmware; set EW_RECORD_FIXTURE=1 to record it again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRecording, RecordingTransport, ReplayTransport } from '../sdk/link/recording';
import { SerialTransport } from '../sdk/link/serial-transport';
import { LinkSession, nackReasonOf } from '../sdk/link/session';
import { simCTarget } from './targets';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'ew-host-fw.recording.jsonl');

/** The scripted session: the same calls when recording and when replaying (no pings: they carry the time). */
async function scenario(session: LinkSession) {
  const hello = await session.open();
  const led = hello.actuators.find((a) => a.name === 'led')!.id;
  await session.command(led, 1);
  await session.command(led, 0);
  const nack = await session.command(200, 1).then(
    () => undefined,
    (e) => nackReasonOf(e),
  );
  await session.sendResult({
    modelName: 'vad',
    label: 1,
    score: 0.75,
    recordDigest: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
  });
  await session.close();
  return {
    firmware: `${hello.firmwareName} ${hello.firmwareVersion}`,
    sensors: hello.sensors.map((s) => s.name),
    nack,
  };
}

const options = { pingIntervalMs: 0, requestTimeoutMs: 500, retries: 0 } as const;

describe('serial record and replay', () => {
  it('replays the committed recording of the C host firmware with no device', async () => {
    const replay = new ReplayTransport(loadRecording(FIXTURE));
    const outcome = await scenario(new LinkSession({ transport: replay, ...options }));
    expect(outcome).toEqual({ firmware: 'ew-host-fw 0.1.0', sensors: ['mic', 'imu'], nack: 1 });
    expect(replay.finished).toBe(true);
  });

  const skip = simCTarget.skip;
  if (skip) console.warn(skip);
  describe.skipIf(skip !== undefined)('against the live C host firmware', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ew-replay-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('records a session and replays it to the same outcome', async () => {
      const device = await simCTarget.start();
      let live: Awaited<ReturnType<typeof scenario>>;
      const rec = new RecordingTransport(new SerialTransport({ path: device.path }));
      try {
        live = await scenario(new LinkSession({ transport: rec, ...options }));
      } finally {
        await device.stop();
      }
      const file = join(dir, 'session.jsonl');
      rec.save(file);
      if (process.env.EW_RECORD_FIXTURE === '1') rec.save(FIXTURE);
      const replayed = await scenario(
        new LinkSession({ transport: new ReplayTransport(loadRecording(file)), ...options }),
      );
      expect(replayed).toEqual(live);
    });
  });
});
