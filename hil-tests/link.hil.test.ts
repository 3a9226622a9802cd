// The HIL suite: one set of tests, run unchanged against every target (targets.ts). Without
// hardware the hardware target is skipped with a message saying what to plug in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../sdk/errors';
import { NackReason, SampleFormat, type SensorBatch } from '../sdk/link/messages';
import { SerialTransport } from '../sdk/link/serial-transport';
import { LinkSession, nackReasonOf } from '../sdk/link/session';
import { TARGETS, type TargetDevice } from './targets';

for (const target of TARGETS) {
  const skip = target.skip;
  if (skip) console.warn(skip);
  describe.skipIf(skip !== undefined)(`HIL link suite on ${target.name}`, () => {
    let device: TargetDevice;
    let session: LinkSession;
    let transport: SerialTransport;

    beforeAll(async () => {
      device = await target.start();
      transport = new SerialTransport({ path: device.path, baudRate: device.baudRate });
      session = new LinkSession({ transport, requestTimeoutMs: 300, retries: 3, pingIntervalMs: 500 });
      await session.open();
    });
    afterAll(async () => {
      await session?.close();
      await device?.stop();
    });

    it('says Hello with protocol v1, a 16 kHz int16 microphone and an LED', () => {
      const hello = session.hello!;
      expect(hello.protocolVersion).toBe(1);
      expect(hello.firmwareName.length).toBeGreaterThan(0);
      const mic = hello.sensors.find((s) => s.name === 'mic');
      expect(mic).toMatchObject({ rateHz: 16000, format: SampleFormat.INT16_LE, channels: 1 });
      expect(hello.actuators.some((a) => a.name === 'led')).toBe(true);
    });

    it('switches the LED on and off, each acknowledged', async () => {
      const led = session.hello!.actuators.find((a) => a.name === 'led')!;
      await session.command(led.id, 1);
      await session.command(led.id, 0);
    });

    it('refuses an unknown actuator with a typed Nack carrying UNKNOWN_ACTUATOR', async () => {
      const err = await session.command(200, 1).catch((e) => e);
      expect(isEdgewardenError(err, 'EW_LINK_NACK')).toBe(true);
      expect(nackReasonOf(err)).toBe(NackReason.UNKNOWN_ACTUATOR);
    });

    it('answers 50 pings with a median round trip under 20 ms', async () => {
      const rtts: number[] = [];
      for (let i = 0; i < 50; i++) rtts.push(await session.ping());
      rtts.sort((a, b) => a - b);
      expect(rtts[25]!).toBeLessThan(20);
    });

    it('streams 512-sample microphone windows with increasing sample times', async () => {
      const mic = session.hello!.sensors.find((s) => s.name === 'mic')!;
      const got: SensorBatch[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('fewer than 3 microphone batches in 3 s')), 3000);
        const off = session.on('sensorBatch', (b) => {
          if (b.sensorId !== mic.id) return;
          got.push(b);
          if (got.length === 3) {
            clearTimeout(timer);
            off();
            resolve();
          }
        });
      });
      for (const b of got) {
        expect(b.sampleCount).toBe(512);
        expect(b.samples.length).toBe(1024);
      }
      expect(got[1]!.firstSampleUs).toBeGreaterThan(got[0]!.firstSampleUs);
    });

    it('recovers from garbage on the line: the next command is still acknowledged', async () => {
      await transport.write(Uint8Array.from({ length: 300 }, (_, i) => (i * 97 + 13) & 0xff));
      await transport.write(Uint8Array.from([0]));
      const led = session.hello!.actuators.find((a) => a.name === 'led')!;
      await session.command(led.id, 1);
    });
  });
}
