import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readInputs } from './input-file';
import { encodeNpy, parseNpy } from './npy';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ew-input-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('.npy', () => {
  it('writes and reads back every numeric dtype; big-endian files are swapped', () => {
    const f = { type: 'float32' as const, dims: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
    expect(parseNpy(encodeNpy(f))).toEqual(f);
    const i = { type: 'int64' as const, dims: [1], data: new BigInt64Array([-7n]) };
    expect(parseNpy(encodeNpy(i))).toEqual(i);
    const scalar = { type: 'uint8' as const, dims: [], data: new Uint8Array([9]) };
    expect(parseNpy(encodeNpy(scalar))).toEqual(scalar);
    const be = Buffer.from(encodeNpy({ type: 'int32', dims: [1], data: new Int32Array([1]) }));
    const text = be.toString('latin1').replace("'<i4'", "'>i4'");
    const swapped = Buffer.from(text, 'latin1');
    swapped.writeInt32BE(1, swapped.length - 4);
    expect(Array.from(parseNpy(swapped).data as Int32Array)).toEqual([1]);
  });

  it('refuses what it cannot read with EW_CLI_INPUT', () => {
    const good = Buffer.from(encodeNpy({ type: 'float32', dims: [2], data: new Float32Array([1, 2]) }));
    const bad = [
      Buffer.from('not numpy'),
      good.subarray(0, good.length - 1),
      Buffer.from(good.toString('latin1').replace("'<f4'", "'<c8'"), 'latin1'),
      Buffer.from(good.toString('latin1').replace('False', 'True '), 'latin1').subarray(0, 10),
    ];
    for (const b of bad) expect(() => parseNpy(b)).toThrow(expect.objectContaining({ code: 'EW_CLI_INPUT' }));
  });
});

describe('readInputs', () => {
  it('combines JSON files and name=path.npy; refuses a name given twice', async () => {
    await writeFile(join(dir, 'a.json'), JSON.stringify({ a: { dtype: 'float32', dims: [1], data: [1] } }));
    await writeFile(join(dir, 'b.npy'), encodeNpy({ type: 'float32', dims: [1], data: new Float32Array([2]) }));
    const m = await readInputs([join(dir, 'a.json'), `b=${join(dir, 'b.npy')}`]);
    expect(Object.keys(m).sort()).toEqual(['a', 'b']);
    await expect(readInputs([join(dir, 'a.json'), `a=${join(dir, 'b.npy')}`])).rejects.toMatchObject({
      code: 'EW_CLI_INPUT',
    });
    await expect(readInputs([join(dir, 'missing.json')])).rejects.toMatchObject({ code: 'EW_CLI_INPUT' });
    await expect(readInputs([])).rejects.toMatchObject({ code: 'EW_CLI_INPUT' });
  });
});
