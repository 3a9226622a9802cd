import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { decodeLinkMessage, encodeLinkMessage, type LinkMessage, linkMessageToJson, nackReasonName } from './messages';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isEdgewardenError(e) ? e.code : `not-edgewarden: ${e}`;
  }
  return undefined;
}

describe('LinkMessage', () => {
  it('fills proto3 defaults on decode (every field present)', () => {
    const m = decodeLinkMessage(encodeLinkMessage({ seq: 0, body: { type: 'ack', ackSeq: 0 } }));
    expect(m).toEqual({ seq: 0, body: { type: 'ack', ackSeq: 0 } });
    const hello = decodeLinkMessage(Uint8Array.from([0x1a, 0x00]));
    expect(hello.body).toMatchObject({ type: 'hello', firmwareName: '', sensors: [], maxRxPayload: 0 });
  });

  it('round-trips a negative int32 command value and a 64-bit-ish time', () => {
    const msg: LinkMessage = { seq: 5, body: { type: 'command', actuatorId: 3, value: -10000, durationMs: 9 } };
    expect(decodeLinkMessage(encodeLinkMessage(msg))).toEqual(msg);
    const ping: LinkMessage = { seq: 1, body: { type: 'ping', timeUs: 2 ** 52 + 3 } };
    expect(decodeLinkMessage(encodeLinkMessage(ping))).toEqual(ping);
  });

  it('refuses out-of-range fields with EW_LINK_INVALID_MESSAGE', () => {
    expect(codeOf(() => encodeLinkMessage({ seq: -1, body: { type: 'ack', ackSeq: 1 } }))).toBe(
      'EW_LINK_INVALID_MESSAGE',
    );
    expect(codeOf(() => encodeLinkMessage({ seq: 2 ** 32, body: { type: 'ack', ackSeq: 1 } }))).toBe(
      'EW_LINK_INVALID_MESSAGE',
    );
    expect(
      codeOf(() =>
        encodeLinkMessage({ seq: 1, body: { type: 'command', actuatorId: 1, value: 2 ** 31, durationMs: 0 } }),
      ),
    ).toBe('EW_LINK_INVALID_MESSAGE');
    expect(codeOf(() => encodeLinkMessage({ seq: 1, body: { type: 'bogus' } as never }))).toBe(
      'EW_LINK_INVALID_MESSAGE',
    );
  });

  it('types undecodable bytes and bodiless messages as EW_LINK_MALFORMED', () => {
    expect(codeOf(() => decodeLinkMessage(Uint8Array.from([0x1a, 0x05, 0x01])))).toBe('EW_LINK_MALFORMED');
    expect(codeOf(() => decodeLinkMessage(Uint8Array.from([0x08, 0x01])))).toBe('EW_LINK_MALFORMED');
    expect(codeOf(() => decodeLinkMessage(new Uint8Array(0)))).toBe('EW_LINK_MALFORMED');
  });

  it('never throws anything but EW_LINK_MALFORMED on hostile bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const code = codeOf(() => decodeLinkMessage(bytes));
        expect(code === undefined || code === 'EW_LINK_MALFORMED').toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('names Nack reasons and prints JSON with hex bytes', () => {
    expect(nackReasonName(1)).toBe('UNKNOWN_ACTUATOR');
    expect(nackReasonName(99)).toBe('REASON_99');
    expect(
      linkMessageToJson({
        seq: 3,
        body: { type: 'result', modelName: 'vad', label: 1, score: 0.5, recordDigest: Uint8Array.from([1, 255]) },
      }),
    ).toEqual({ seq: 3, type: 'result', modelName: 'vad', label: 1, score: 0.5, recordDigest: '01ff' });
  });
});
