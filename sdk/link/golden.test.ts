import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { goldenMessages } from './fixtures/golden-messages';
import { decodeFrame, encodeFrame } from './framing';
import { decodeLinkMessage, encodeLinkMessage } from './messages';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'golden');
const read = (file: string) => readFileSync(join(dir, file), 'utf8').replace(/\s+/g, '');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('golden frames (shared with the C firmware tests)', () => {
  const messages = goldenMessages();

  it('has exactly one payload and one frame file per golden message', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.hex'));
    const names = Object.keys(messages).flatMap((n) => [`${n}.frame.hex`, `${n}.payload.hex`]);
    expect(files.sort()).toEqual(names.sort());
  });

  it.each(Object.entries(messages))(
    '%s: encoder output equals the files byte for byte, and decodes back',
    (name, msg) => {
      const payload = encodeLinkMessage(msg);
      const frame = encodeFrame(payload);
      expect(hex(payload)).toBe(read(`${name}.payload.hex`));
      expect(hex(frame)).toBe(read(`${name}.frame.hex`));
      const back = decodeLinkMessage(decodeFrame(Buffer.from(read(`${name}.frame.hex`), 'hex')));
      expect(back.seq).toBe(msg.seq);
      expect(JSON.stringify(normal(back.body))).toBe(JSON.stringify(normal(msg.body)));
    },
  );
});

// Uint8Array/Buffer compare by content in JSON only once converted to plain arrays.
function normal(v: unknown): unknown {
  if (v instanceof Uint8Array) return hex(v);
  if (Array.isArray(v)) return v.map(normal);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, x]) => [k, normal(x)]),
    );
  return v;
}
