import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint';
import { decodeRecord, encodeRecord, RECORD_LIMITS, type RecordFields, readChainFields, recordToJson } from './record';

function fields(over: Partial<RecordFields> = {}): RecordFields {
  return {
    version: 1,
    deviceKeyid: new Uint8Array(32).fill(1),
    index: 41,
    timeUnixMs: 1_790_000_000_123,
    bootId: new Uint8Array(16).fill(2),
    monotonicNs: 2 ** 52,
    clockSynced: true,
    modelDigest: new Uint8Array(32).fill(3),
    modelName: 'vad',
    policyDigest: new Uint8Array(32).fill(4),
    decision: { outcome: 'blocked', ruleId: 'outputs[0]', authority: 'owner' },
    inputDigest: new Uint8Array(32).fill(5),
    outputDigest: new Uint8Array(32).fill(6),
    executionProvider: 'cpu',
    runtimeVersion: '1.30.0',
    sdkVersion: '0.1.0',
    prevLeafHash: new Uint8Array(32).fill(7),
    labels: { site: 'a', é: 'ü' },
    salted: true,
    ...over,
  };
}

describe('records', () => {
  it('round-trip every field, with labels in a null-prototype object', () => {
    const f = fields();
    const back = decodeRecord(encodeRecord(f));
    expect({ ...back, labels: { ...back.labels } }).toEqual(f);
    expect(Object.getPrototypeOf(back.labels)).toBe(null);
    expect(readChainFields(encodeRecord(f))).toEqual({
      index: 41,
      prevLeafHash: f.prevLeafHash,
      deviceKeyid: f.deviceKeyid,
    });
    expect(recordToJson(back)).toMatchObject({ index: 41, deviceKeyid: '01'.repeat(32), decision: f.decision });
  });

  it('keeps a __proto__ label an ordinary key on encode, decode and JSON view', () => {
    const raw = JSON.parse('{"__proto__": "p", "constructor": "c"}') as Record<string, string>;
    const back = decodeRecord(encodeRecord(fields({ labels: raw })));
    expect(Object.keys(back.labels).sort()).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(back.labels, '__proto__')?.value).toBe('p');
    expect(JSON.stringify(recordToJson(back).labels)).toBe('{"__proto__":"p","constructor":"c"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses records that break the bounds or field sizes, on encode and on decode', () => {
    const tooMany = Object.fromEntries(Array.from({ length: RECORD_LIMITS.maxLabels + 1 }, (_, i) => [`k${i}`, 'v']));
    for (const bad of [
      fields({ labels: tooMany }),
      fields({ labels: { k: 'v'.repeat(RECORD_LIMITS.maxLabelValueLength + 1) } }),
      fields({ deviceKeyid: new Uint8Array(31) }),
      fields({ outputDigest: new Uint8Array(0) }),
      fields({ prevLeafHash: new Uint8Array(5) }),
      fields({ version: 2 }),
      fields({ index: -1 }),
      fields({ decision: { outcome: 'maybe' as never, ruleId: '', authority: '' } }),
    ]) {
      expect(() => encodeRecord(bad)).toThrow(expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }));
    }
    // A record without a decision, or with 65 labels, written by something else: refused on decode.
    expect(() => decodeRecord(new Uint8Array([0x08, 0x01]))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
    );
    const ok = encodeRecord(fields());
    const extra: number[] = [...ok];
    for (let i = 0; i < 70; i++)
      extra.push(0x92, 0x01, 0x07, 0x0a, 0x03, 0x6b, 48 + Math.floor(i / 10), 48 + (i % 10), 0x12, 0x00);
    expect(() => decodeRecord(new Uint8Array(extra))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
    );
  });
});

describe('checkpoints', () => {
  it('round-trip and refuse bad sizes', () => {
    const f = {
      deviceKeyid: new Uint8Array(32).fill(1),
      treeSize: 12,
      rootHash: new Uint8Array(32).fill(9),
      timeUnixMs: 5,
      bootId: new Uint8Array(3),
    };
    expect(decodeCheckpoint(encodeCheckpoint(f))).toEqual(f);
    expect(() => encodeCheckpoint({ ...f, rootHash: new Uint8Array(1) })).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
    );
    expect(() => decodeCheckpoint(new Uint8Array([0x10, 0x05]))).toThrow(
      expect.objectContaining({ code: 'EW_PROVENANCE_MALFORMED' }),
    );
  });
});
