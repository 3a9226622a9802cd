import { describe, expect, it } from 'vitest';
import { tensorFromJson, tensorsFromJson, tensorsToJson } from './tensor-json';

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

  it('names what is wrong with EW_ENGINE_TENSOR_JSON', () => {
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
      expect(() => tensorFromJson('t', c)).toThrow(expect.objectContaining({ code: 'EW_ENGINE_TENSOR_JSON' }));
    }
    expect(() => tensorsFromJson([])).toThrow(expect.objectContaining({ code: 'EW_ENGINE_TENSOR_JSON' }));
    // __proto__ as a tensor name does not touch Object.prototype.
    const m = tensorsFromJson(JSON.parse('{"__proto__": {"dtype": "uint8", "dims": [1], "data": [1]}}'));
    expect(Object.keys(m)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).dtype).toBeUndefined();
  });
});
