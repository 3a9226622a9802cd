import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixtures } from './fixtures/make-fixtures.mjs';

const FIX = join(import.meta.dirname, 'fixtures');

describe('engine fixtures', () => {
  it('the committed .onnx/.bin files are exactly what make-fixtures.mjs writes', () => {
    const generated = fixtures();
    for (const [name, bytes] of Object.entries(generated)) {
      expect(
        Buffer.compare(readFileSync(join(FIX, name)), Buffer.from(bytes)),
        `${name} drifted: run node sdk/engine/fixtures/make-fixtures.mjs`,
      ).toBe(0);
    }
    const committed = readdirSync(FIX).filter((f) => /\.(onnx|bin)$/.test(f));
    expect(committed.sort()).toEqual(Object.keys(generated).sort());
  });
});
