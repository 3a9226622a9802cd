import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readInputs, tensorFromJson, tensorsFromJson, tensorsToJson } from './input-file';
import { encodeNpy, parseNpy } from './npy';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ew-input-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('JSON tensors', () => {
  it('round-trips every dtype through the result-file form, including NaN, ±Infinity and int64 beyond 2^53', () => {
    const tensors = tensorsFromJson({
      f: {
        dtype: 'float32',
        dims: [2, 2],
        data: [
          [1.5, 'NaN'],
          ['Infinity', '-Infinity'],
        ],
      },
      d: { dtype: 'float64', dims: [1], data: [0.1] },
      i: { dtype: 'int64', dims: [2], data: [-3, '9007199254740993'] },
      u: { dtype: 'uint8', dims: [3], data: [0, 255, 7] },
      b: { dtype: 'bool', dims: [2], data: [true, false] },
      s: { dtype: 'string', dims: [1], data: ['héllo'] },
      e: { dtype: 'int32', dims: [0], data: [] },
    });
    expect(Array.from(tensors.f?.data as Float32Array)).toEqual([1.5, Number.NaN, Infinity, -Infinity]);
    expect(Array.from(tensors.i?.data as BigInt64Array)).toEqual([-3n, 9007199254740993n]);
    const json = JSON.parse(JSON.stringify(tensorsToJson(tensors)));
    expect(json.i.data).toEqual([-3, '9007199254740993']);
    expect(json.b.data).toEqual([true, false]);
    expect(tensorsToJson(tensorsFromJson(json))).toEqual(json);
  });

  it('names what is wrong with EW_CLI_INPUT', () => {
    const cases: unknown[] = [
      null,
      { dtype: 'float99', dims: [1], data: [1] },
      { dtype: 'float32', dims: [-1], data: [] },
      { dtype: 'float32', dims: [2], data: [1] },
      { dtype: 'int32', dims: [1], data: [1.5] },
      { dtype: 'int64', dims: [1], data: ['x'] },
      { dtype: 'float32', dims: [1], data: 'nope' },
    ];
    for (const c of cases) {
      expect(() => tensorFromJson('t', c)).toThrow(expect.objectContaining({ code: 'EW_CLI_INPUT' }));
    }
    expect(() => tensorsFromJson([])).toThrow(expect.objectContaining({ code: 'EW_CLI_INPUT' }));
    // __proto__ as a tensor name does not touch Object.prototype.
    const m = tensorsFromJson(JSON.parse('{"__proto__": {"dtype": "uint8", "dims": [1], "data": [1]}}'));
    expect(Object.keys(m)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).dtype).toBeUndefined();
  });
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
