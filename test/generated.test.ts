import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SDK_VERSION } from '../sdk/version';

const root = join(import.meta.dirname, '..');

describe('generated and duplicated facts', () => {
  it('sdk/__generated__ matches what proto/ generates (run `npm run proto` after editing a .proto)', () => {
    expect(() =>
      execFileSync(process.execPath, [join(root, 'scripts/gen-proto.mjs'), '--check'], { stdio: 'pipe' }),
    ).not.toThrow();
  });

  it('SDK_VERSION equals the package version', () => {
    expect(SDK_VERSION).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });
});
