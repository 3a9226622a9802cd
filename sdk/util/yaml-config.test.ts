import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseYamlWithSchema } from './yaml-config';

const schema = z.strictObject({
  name: z.string(),
  brokers: z.array(z.strictObject({ url: z.string().url(), share: z.enum(['full', 'summary', 'none']) })),
});

function problem(text: string) {
  try {
    parseYamlWithSchema(text, schema, { code: 'EW_TEST_CONFIG', file: 'a.yaml' });
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected a failure');
}

describe('parseYamlWithSchema', () => {
  it('returns the typed value', () => {
    const v = parseYamlWithSchema('name: x\nbrokers:\n  - { url: "mqtt://h:1883", share: full }\n', schema, {
      code: 'EW_T',
    });
    expect(v.brokers[0]?.share).toBe('full');
  });

  it('names the key, line and column of a wrong value', () => {
    const e = problem('name: x\nbrokers:\n  - url: "mqtt://h:1883"\n    share: everything\n');
    expect(e.code).toBe('EW_TEST_CONFIG');
    expect(e.message).toMatch(/^a\.yaml:4:5: brokers\[0\]\.share: /);
  });

  it('names an unknown key at its own line', () => {
    expect(problem('name: x\nbrokers: []\nbrokerz: 1\n').message).toMatch(/^a\.yaml:3:1: brokerz: Unrecognized key/);
  });

  it('points a missing key at its parent', () => {
    expect(problem('brokers: []\n').message).toMatch(/^a\.yaml:1:1: name: /);
  });

  it('reports YAML syntax errors with their position', () => {
    expect(problem('name: [x\n').message).toMatch(/^a\.yaml:\d+:\d+: \(document\): /);
  });
});
