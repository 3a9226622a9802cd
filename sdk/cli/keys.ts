import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { EdgewardenError } from '../errors';
import { writeKeyPair } from '../provenance/keys';
import { action, EXIT, emit, resolveHome } from './common';

interface KeysInitOptions {
  home?: string;
  authority?: string;
  out?: string;
  json?: boolean;
}

/** Registers `edgewarden keys init`: the device identity, or (`--authority`) a policy authority's key pair. */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('create keys: the device identity or an authority key pair');
  keys
    .command('init')
    .description('create the device identity in the home (keys/device.key 0600, keys/device.pub); prints the device id')
    .option('--home <dir>', 'device home (default $EDGEWARDEN_HOME, then ~/.edgewarden)')
    .option('--authority <name>', 'instead: create a policy authority key pair NAME.key / NAME.pub')
    .option('--out <dir>', 'with --authority: the directory to write the key pair into')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Examples:
  $ edgewarden keys init                         # ~/.edgewarden/keys/device.key and device.pub
  $ edgewarden keys init --home ./device-home --json
  $ edgewarden keys init --authority owner --out ./authority-keys`,
    )
    .action(
      action(async (opts: KeysInitOptions) => {
        if (opts.authority !== undefined) return initAuthority(opts);
        if (opts.out !== undefined) {
          throw new EdgewardenError('EW_CLI_USAGE', '--out goes with --authority NAME; the device key lives in --home');
        }
        return initDevice(opts);
      }),
    );
}

// Device identity (WARDEN helper).
async function initDevice(opts: KeysInitOptions): Promise<number> {
  const home = resolveHome(opts.home);
  const keyDir = join(home, 'keys');
  if (existsSync(join(keyDir, 'device.key'))) {
    throw new EdgewardenError(
      'EW_PROVENANCE_KEY_FILE',
      `${join(keyDir, 'device.key')} already exists; refusing to overwrite the device identity. ` +
        'Use it as it is, or choose another --home for a new device.',
      { details: { path: join(keyDir, 'device.key') } },
    );
  }
  await mkdir(home, { recursive: true, mode: 0o700 });
  const signer = await writeKeyPair(keyDir, 'device');
  await mkdir(join(home, 'audit'), { recursive: true, mode: 0o700 });
  emit(
    opts.json,
    {
      deviceId: signer.deviceId,
      keyId: Buffer.from(signer.keyId).toString('hex'),
      home,
      privateKey: join(keyDir, 'device.key'),
      publicKey: join(keyDir, 'device.pub'),
    },
    () =>
      `${signer.deviceId}\ncreated ${join(keyDir, 'device.key')} (0600) and device.pub; ` +
      `next: edgewarden run MODEL --input FILE --home ${home}`,
  );
  return EXIT.ok;
}

// Authority key pair (the POLICY helper's variant of the contract: DIR/NAME.key, DIR/NAME.pub).
async function initAuthority(opts: KeysInitOptions): Promise<number> {
  const name = opts.authority as string;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new EdgewardenError('EW_CLI_USAGE', `authority name ${JSON.stringify(name)}: use letters, digits, _ . -`);
  }
  if (opts.out === undefined) throw new EdgewardenError('EW_CLI_USAGE', '--authority NAME needs --out DIR');
  const dir = resolve(opts.out);
  const signer = await writeKeyPair(dir, name);
  emit(
    opts.json,
    {
      authority: name,
      keyId: Buffer.from(signer.keyId).toString('hex'),
      privateKey: join(dir, `${name}.key`),
      publicKey: join(dir, `${name}.pub`),
    },
    `created ${join(dir, `${name}.key`)} (0600) and ${name}.pub (keyid ${Buffer.from(signer.keyId).toString('hex')}); ` +
      `next: edgewarden policy sign policy.yaml --key ${join(dir, `${name}.key`)} --out policy.signed`,
  );
  return EXIT.ok;
}
