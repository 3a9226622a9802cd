import { describe, expect, it } from 'vitest';
import { VirtualMcu } from '../../devices/simulator/virtual-mcu';
import { isEdgewardenError } from '../errors';
import { createMemoryTransportPair } from '../testing/memory-transport';
import { parseRecording, RecordingTransport, ReplayTransport, recordingToText } from './recording';
import { LinkSession, nackReasonOf } from './session';

async function scenario(session: LinkSession): Promise<unknown[]> {
  const hello = await session.open();
  await session.command(1, 1);
  const nack = await session.command(9, 1).catch((e) => nackReasonOf(e));
  await session.command(1, 0);
  return [hello.firmwareName, nack];
}

describe('record and replay', () => {
  it('replays a recorded session with no device: same answers, same Nack', async () => {
    const link = createMemoryTransportPair();
    const mcu = new VirtualMcu({ transport: link.device, imuHz: false, autoStream: false });
    await mcu.start();
    const rec = new RecordingTransport(link.host);
    const live = await scenario(new LinkSession({ transport: rec, pingIntervalMs: 0 }));
    await mcu.stop();
    const text = recordingToText(rec.recording);
    expect(text.split('\n')[0]).toContain('edgewarden.link.recording');

    const replay = new ReplayTransport(parseRecording(text));
    const session = new LinkSession({ transport: replay, pingIntervalMs: 0 });
    expect(await scenario(session)).toEqual(live);
    expect(replay.finished).toBe(true);
    await session.close();
  });

  it('strict replay refuses a host that sends something else', async () => {
    const link = createMemoryTransportPair();
    const mcu = new VirtualMcu({ transport: link.device, imuHz: false, autoStream: false });
    await mcu.start();
    const rec = new RecordingTransport(link.host);
    await scenario(new LinkSession({ transport: rec, pingIntervalMs: 0 }));
    await mcu.stop();
    const replay = new ReplayTransport(rec.recording);
    const session = new LinkSession({ transport: replay, pingIntervalMs: 0, requestTimeoutMs: 20, retries: 0 });
    await session.open();
    const err = await session.command(2, 1).catch((e) => e);
    expect(isEdgewardenError(err, 'EW_LINK_RECORDING')).toBe(true);
    await session.close();
  });

  it('rejects files that are not recordings, naming the line', () => {
    const bad = [
      'not json',
      '{"format":"something else","version":1}',
      '{"format":"edgewarden.link.recording","version":1}\n{"t":1,"dir":"up","hex":"00"}',
      '{"format":"edgewarden.link.recording","version":1}\n{"t":1,"dir":"rx","hex":"0g"}',
    ];
    for (const text of bad) {
      let caught: unknown;
      try {
        parseRecording(text);
      } catch (e) {
        caught = e;
      }
      expect(isEdgewardenError(caught, 'EW_LINK_RECORDING')).toBe(true);
    }
  });
});
