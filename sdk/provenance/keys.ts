import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgewardenError } from '../errors';
import type { Signer } from './signer';

const PKCS8_PEM = /^-----BEGIN PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PRIVATE KEY-----\s*$/;

// SPKI DER of an Ed25519 public key is this 12-byte prefix followed by the 32 raw key bytes.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** SHA-256 of a raw 32-byte Ed25519 public key: the keyid of DSSE signatures. */
export function keyIdOf(rawPublicKey: Uint8Array): Uint8Array {
  return createHash('sha256').update(rawPublicKey).digest();
}

/** Lowercase hex of the first 16 bytes of a keyid: the device id used in topics and the fleet. */
export function deviceIdOf(keyId: Uint8Array): string {
  return Buffer.from(keyId.subarray(0, 16)).toString('hex');
}

/** Raw 32 bytes of an Ed25519 public key object. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  // The JWK form carries the raw key as `x`; exporting it skips OpenSSL's DER encoder, whose first
  // use costs a device's start-up ~0.5 ms. SPKI DER stays the fallback.
  const x = (key.export({ format: 'jwk' }) as { x?: unknown }).x;
  if (typeof x === 'string') {
    const raw = Buffer.from(x, 'base64url');
    if (raw.length === 32) return new Uint8Array(raw);
  }
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

/** An Ed25519 public key object from raw bytes, SPKI PEM text or a KeyObject. */
export function toPublicKey(key: KeyObject | Uint8Array | string): KeyObject {
  if (typeof key === 'string') {
    try {
      return assertEd25519(createPublicKey(key));
    } catch (cause) {
      throw new EdgewardenError('EW_PROVENANCE_KEY_FILE', 'not an Ed25519 public key in PEM form', { cause });
    }
  }
  if (key instanceof Uint8Array) {
    if (key.length !== 32) throw new EdgewardenError('EW_PROVENANCE_KEY_FILE', 'a raw Ed25519 key is 32 bytes');
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, key]), format: 'der', type: 'spki' });
  }
  return assertEd25519(key.type === 'private' ? createPublicKey(key) : key);
}

function assertEd25519(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new EdgewardenError('EW_PROVENANCE_KEY_FILE', `expected an Ed25519 key, got ${key.asymmetricKeyType}`);
  }
  return key;
}

/** A signer over an in-memory private key (tests, and the key-file signer below). */
export class KeySigner implements Signer {
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly publicKeyObject: KeyObject;

  /** The PKCS#8 PEM text this key was read from, when it was exactly one such block. */
  private pemText: string | undefined;

  constructor(private readonly privateKey: KeyObject) {
    assertEd25519(privateKey);
    this.publicKeyObject = createPublicKey(privateKey);
    this.publicKey = rawPublicKey(this.publicKeyObject);
    this.keyId = keyIdOf(this.publicKey);
  }

  /** A signer with a fresh random key. */
  static generate(): KeySigner {
    return new KeySigner(generateKeyPairSync('ed25519').privateKey);
  }

  /** Device id derived from the key: hex of the first 16 bytes of the keyid. */
  get deviceId(): string {
    return deviceIdOf(this.keyId);
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(this.signSync(data));
  }

  // node:crypto: this thread signs checkpoints, heartbeats and policies, a few a second at most;
  // loading libsodium for them would cost a process ~4 ms. Records are signed in the worker.
  signSync(data: Uint8Array): Uint8Array {
    return cryptoSign(null, data, this.privateKey);
  }

  /**
   * A signer from PKCS#8 PEM text. When the text is exactly one PKCS#8 block, {@link privateKeyPem}
   * returns it as it is (encoding the key again costs a device's start-up ~0.5 ms: the warden hands
   * the PEM to its worker).
   */
  static fromPem(pem: string): KeySigner {
    const signer = new KeySigner(createPrivateKey(pem));
    if (PKCS8_PEM.test(pem)) signer.pemText = pem;
    return signer;
  }

  /** The private key as PKCS#8 PEM (for writing a key file). */
  privateKeyPem(): string {
    return this.pemText ?? this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /** The public key as SPKI PEM. */
  publicKeyPem(): string {
    return this.publicKeyObject.export({ format: 'pem', type: 'spki' }).toString();
  }
}

/**
 * Loads a PKCS#8 PEM Ed25519 private key file. Refused with `EW_PROVENANCE_KEY_FILE` when it is
 * missing, not Ed25519, or readable by group or others (mode must be 0600 or stricter).
 */
export async function loadKeyFileSigner(path: string): Promise<KeySigner> {
  // Read synchronously (a small file at start-up): the promise API's trips through the thread pool
  // cost a device's cold start several ms while the digest worker boots on the other core.
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (cause) {
    throw new EdgewardenError('EW_PROVENANCE_KEY_FILE', `key file ${path} does not exist; run 'edgewarden keys init'`, {
      cause,
      details: { path },
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new EdgewardenError(
      'EW_PROVENANCE_KEY_FILE',
      `key file ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${path}`,
      { details: { path, mode: mode & 0o777 } },
    );
  }
  const pem = readFileSync(path, 'utf8');
  try {
    return KeySigner.fromPem(pem);
  } catch (cause) {
    if (cause instanceof EdgewardenError) throw cause;
    throw new EdgewardenError('EW_PROVENANCE_KEY_FILE', `key file ${path} is not a PKCS#8 PEM private key`, {
      cause,
      details: { path },
    });
  }
}

/**
 * Writes a new key pair as `<dir>/<name>.key` (PKCS#8 PEM, 0600) and `<dir>/<name>.pub` (SPKI PEM).
 * Refuses to overwrite an existing private key.
 */
export async function writeKeyPair(dir: string, name: string, signer = KeySigner.generate()): Promise<KeySigner> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keyPath = join(dir, `${name}.key`);
  try {
    await writeFile(keyPath, signer.privateKeyPem(), { mode: 0o600, flag: 'wx' });
  } catch (cause) {
    throw new EdgewardenError('EW_PROVENANCE_KEY_FILE', `${keyPath} already exists; refusing to overwrite a key`, {
      cause,
      details: { path: keyPath },
    });
  }
  await chmod(keyPath, 0o600);
  await writeFile(join(dir, `${name}.pub`), signer.publicKeyPem(), { mode: 0o644 });
  return signer;
}

/** A set of trusted Ed25519 public keys, looked up by keyid. */
export class TrustStore {
  private readonly byKeyId = new Map<string, KeyObject>();

  constructor(keys: Iterable<KeyObject | Uint8Array | string> = []) {
    for (const k of keys) this.add(k);
  }

  /** Adds a key; returns its keyid. */
  add(key: KeyObject | Uint8Array | string): Uint8Array {
    const pub = toPublicKey(key);
    const id = keyIdOf(rawPublicKey(pub));
    this.byKeyId.set(Buffer.from(id).toString('hex'), pub);
    return id;
  }

  /** The key with this keyid, if trusted. */
  get(keyId: Uint8Array): KeyObject | undefined {
    return this.byKeyId.get(Buffer.from(keyId).toString('hex'));
  }

  get size(): number {
    return this.byKeyId.size;
  }

  /** Loads one SPKI PEM file, or every `*.pub`/`*.pem` file of a directory. */
  static async fromPath(path: string): Promise<TrustStore> {
    const store = new TrustStore();
    let isDir = false;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch (cause) {
      throw new EdgewardenError('EW_PROVENANCE_KEY_FILE', `trust path ${path} does not exist`, { cause });
    }
    const files = isDir
      ? (await readdir(path))
          .filter((f) => f.endsWith('.pub') || f.endsWith('.pem'))
          .sort()
          .map((f) => join(path, f))
      : [path];
    for (const f of files) store.add(await readFile(f, 'utf8'));
    return store;
  }
}
