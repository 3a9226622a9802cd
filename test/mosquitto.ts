// Starts a private Mosquitto for tests: a free port on 127.0.0.1, a generated config (optional
// passwords, ACL and a TLS listener), restartable with SIGKILL or SIGTERM. Never touches any other
// Mosquitto (such as one on 1883). Tests skip when no binary exists: see MOSQUITTO_MISSING.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../sdk/telemetry/testkit/free-port';

function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Path of the mosquitto binary, when installed. */
export const MOSQUITTO_BIN = findBinary('mosquitto');
/** Path of mosquitto_passwd, when installed. */
export const MOSQUITTO_PASSWD_BIN = findBinary('mosquitto_passwd');
/** Path of the openssl CLI, when installed. */
export const OPENSSL_BIN = findBinary('openssl');
/** A message for skipped tests, or undefined when Mosquitto is available. */
export const MOSQUITTO_MISSING = MOSQUITTO_BIN ? undefined : 'mosquitto binary not found (apt-get install mosquitto)';

export interface MosquittoOptions {
  /** username → password; with it, anonymous clients are refused. */
  users?: Record<string, string>;
  /** ACL file text (mosquitto syntax, e.g. `pattern readwrite ew/v1/+/%u/#`). */
  acl?: string;
  /** A TLS listener on a second free port. */
  tls?: { caFile: string; certFile: string; keyFile: string; requireCertificate?: boolean };
}

export interface Mosquitto {
  port: number;
  url: string;
  tlsPort?: number;
  tlsUrl?: string;
  dir: string;
  readonly pid: number | undefined;
  /** Signals the broker and waits for it to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports with the same config. */
  start(): Promise<void>;
  /** Stops it (SIGTERM) and removes its directory. */
  stop(): Promise<void>;
}

async function waitListening(port: number, child: ChildProcess, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mosquitto exited (${child.exitCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ port, host: '127.0.0.1' });
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts a private Mosquitto. Throws when the binary is missing (check MOSQUITTO_MISSING first). */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  if (!MOSQUITTO_BIN) throw new Error(MOSQUITTO_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'ew-mosquitto-'));
  const port = await freePort();
  const tlsPort = opts.tls ? await freePort() : undefined;
  const lines = [
    'per_listener_settings false',
    // Started as root, mosquitto switches to user "mosquitto", who cannot read our 0600 files.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    'persistence false',
    `log_dest file ${join(dir, 'mosquitto.log')}`,
    'log_type error',
    'log_type warning',
    'max_queued_messages 10000',
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${opts.users ? 'false' : 'true'}`,
  ];
  if (opts.users) {
    if (!MOSQUITTO_PASSWD_BIN) throw new Error('mosquitto_passwd not found');
    const pw = join(dir, 'passwd');
    writeFileSync(pw, '', { mode: 0o600 });
    for (const [u, p] of Object.entries(opts.users)) execFileSync(MOSQUITTO_PASSWD_BIN, ['-b', pw, u, p]);
    lines.push(`password_file ${pw}`);
  }
  if (opts.acl !== undefined) {
    const acl = join(dir, 'acl');
    writeFileSync(acl, opts.acl, { mode: 0o600 });
    lines.push(`acl_file ${acl}`);
  }
  if (opts.tls && tlsPort) {
    lines.push(
      `listener ${tlsPort} 127.0.0.1`,
      `cafile ${opts.tls.caFile}`,
      `certfile ${opts.tls.certFile}`,
      `keyfile ${opts.tls.keyFile}`,
      `require_certificate ${opts.tls.requireCertificate ? 'true' : 'false'}`,
    );
  }
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  let child: ChildProcess | undefined;

  const start = async () => {
    const c = spawn(MOSQUITTO_BIN, ['-c', conf], { stdio: 'ignore' });
    child = c;
    await waitListening(port, c);
    if (tlsPort) await waitListening(tlsPort, c);
  };
  const kill = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    await exited;
  };
  await start();
  const m: Mosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    get pid() {
      return child?.pid;
    },
    kill,
    start,
    async stop() {
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (tlsPort) {
    m.tlsPort = tlsPort;
    m.tlsUrl = `mqtts://127.0.0.1:${tlsPort}`;
  }
  return m;
}

/** A throwaway CA and a server certificate for 127.0.0.1 (and a client certificate), made with openssl. */
export function makeTestPki(dir: string): {
  caFile: string;
  certFile: string;
  keyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
} {
  if (!OPENSSL_BIN) throw new Error('openssl not found');
  const f = (n: string) => join(dir, n);
  const run = (...args: string[]) => execFileSync(OPENSSL_BIN, args, { stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=edgewarden test CA',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const who of ['server', 'client']) {
    run(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${who === 'server' ? '127.0.0.1' : 'device'}`,
      '-keyout',
      f(`${who}.key`),
      '-out',
      f(`${who}.csr`),
    );
    const ext = who === 'server' ? ['-extfile', f('server.ext')] : [];
    run(
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      f(`${who}.pem`),
      ...ext,
    );
  }
  return {
    caFile: f('ca.pem'),
    certFile: f('server.pem'),
    keyFile: f('server.key'),
    clientCertFile: f('client.pem'),
    clientKeyFile: f('client.key'),
  };
}
