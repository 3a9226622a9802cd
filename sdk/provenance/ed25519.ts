import { type KeyObject, verify as nodeVerify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { rawPublicKey } from './keys';

// Ed25519 for the hot paths. node:crypto (OpenSSL) is always there and is the reference; libsodium,
// through the optional dependency sodium-native's prebuilt binary, verifies and signs ~1.7x faster
// (`node bench/ed25519.mjs` on the 2-core EPYC: 78 against 131 µs, 28 against 47 µs). This file
// verifies; the provenance worker signs records with the same binary (warden/sign-worker.ts).
// Ed25519 signatures are deterministic, so both give the same bytes, and the worker checks that
// they do before it signs with libsodium.
//
// The binary is loaded directly (1-2 ms) instead of through sodium-native's JavaScript entry, whose
// loader costs ~20 ms at start-up. Its raw calling convention belongs to the exact version that
// package.json pins; a known-answer test at load catches a binary that does not behave, and then
// node:crypto is used.

/** Which Ed25519 implementation this process uses, and why. */
export interface Ed25519Backend {
  name: 'libsodium' | 'node:crypto';
  /** Why libsodium is not used, when it is not. */
  reason?: string;
}

/** The raw functions of sodium-native's binary that edgewarden calls (sizes are checked by the caller). */
export interface SodiumBinding {
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): number;
  crypto_sign_detached(sig: Uint8Array, msg: Uint8Array, sk: Uint8Array): number;
  crypto_hash_sha256(out: Uint8Array, msg: Uint8Array): void;
  crypto_sign_verify_detached(
    sig: ArrayBuffer,
    sigOffset: number,
    sigLength: number,
    msg: ArrayBuffer,
    msgOffset: number,
    msgLength: number,
    pk: ArrayBuffer,
    pkOffset: number,
    pkLength: number,
  ): boolean;
}

/** The sodium-native version whose binary calling convention this file is written against. */
export const SODIUM_NATIVE_VERSION = '5.1.0';

/**
 * Path of sodium-native's prebuilt binary for this platform, resolved from `from` (a file path or
 * URL; this module by default), or why there is none. Setting `EDGEWARDEN_ED25519=node` turns
 * libsodium off. Cheap: resolves a path and reads one package.json, loads nothing.
 */
export function sodiumBinaryPath(from: string = import.meta.url): { path?: string; reason?: string } {
  if (process.env.EDGEWARDEN_ED25519 === 'node') return { reason: 'EDGEWARDEN_ED25519=node' };
  let pkg: string;
  try {
    pkg = createRequire(from).resolve('sodium-native/package.json');
  } catch {
    return { reason: 'sodium-native is not installed' };
  }
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: unknown }).version;
  } catch {
    version = undefined;
  }
  if (version !== SODIUM_NATIVE_VERSION) {
    return {
      reason: `sodium-native ${String(version)} is installed; edgewarden calls ${SODIUM_NATIVE_VERSION}'s binary`,
    };
  }
  const path = join(dirname(pkg), 'prebuilds', `${process.platform}-${process.arch}`, 'sodium-native.node');
  return existsSync(path)
    ? { path }
    : { reason: `sodium-native has no prebuilt binary for ${process.platform}-${process.arch}` };
}

// RFC 8032 section 7.1, test 2: a one-byte message.
const KAT_SEED = '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb';
const KAT_PUBLIC = '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c';
const KAT_MESSAGE = '72';
const KAT_SIGNATURE =
  '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00';

/**
 * Source of `openSodiumBinary(createRequire, path)`: sodium-native's binary at `path` when it gives
 * RFC 8032 test 2 (public key, signature bytes, a good and a bad verify) and SHA-256("abc"), else a
 * reason. One text serves this thread and the workers that use the binary (they evaluate it in
 * their own source).
 */
export const OPEN_SODIUM_SOURCE = `
function openSodiumBinary(createRequire, path) {
  try {
    const b = createRequire(path)(path);
    const hex = (u) => Buffer.from(u).toString('hex');
    const pk = new Uint8Array(32);
    const sk = new Uint8Array(64);
    if (b.crypto_sign_seed_keypair(pk, sk, Buffer.from('${KAT_SEED}', 'hex')) !== 0) return 'keypair failed';
    if (hex(pk) !== '${KAT_PUBLIC}') return 'wrong public key';
    const msg = new Uint8Array(Buffer.from('${KAT_MESSAGE}', 'hex'));
    const sig = new Uint8Array(64);
    if (b.crypto_sign_detached(sig, msg, sk) !== 0) return 'sign failed';
    if (hex(sig) !== '${KAT_SIGNATURE}') return 'wrong signature';
    const verify = () => b.crypto_sign_verify_detached(sig.buffer, 0, 64, msg.buffer, 0, msg.length, pk.buffer, 0, 32);
    if (verify() !== true) return 'a good signature did not verify';
    sig[5] ^= 1;
    if (verify() !== false) return 'a bad signature verified';
    const digest = new Uint8Array(32);
    b.crypto_hash_sha256(digest, Buffer.from('abc'));
    if (hex(digest) !== 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad') return 'wrong SHA-256';
    return b;
  } catch (e) {
    return String((e && e.message) || e).split('\\n')[0];
  }
}
`;

/** {@link OPEN_SODIUM_SOURCE} evaluated on this thread: the binary, or why it is not used. */
function openSodium(path: string): SodiumBinding | string {
  const open = new Function('Buffer', `${OPEN_SODIUM_SOURCE}\nreturn openSodiumBinary;`)(Buffer) as (
    req: typeof createRequire,
    path: string,
  ) => SodiumBinding | string;
  return open(createRequire, path);
}

function verifyWith(b: SodiumBinding, msg: Uint8Array, sig: Uint8Array, pk: Uint8Array): boolean {
  const m = msg.buffer as ArrayBuffer;
  const s = sig.buffer as ArrayBuffer;
  const p = pk.buffer as ArrayBuffer;
  return b.crypto_sign_verify_detached(s, sig.byteOffset, 64, m, msg.byteOffset, msg.byteLength, p, pk.byteOffset, 32);
}

/**
 * Finds, loads and checks the binary as resolved from `from` (see {@link sodiumBinaryPath}): which
 * implementation that gives, and why. The process decides once, through {@link ed25519Backend}.
 */
export function probeSodium(from?: string): { binding: SodiumBinding | null; backend: Ed25519Backend } {
  const found = sodiumBinaryPath(from);
  if (!found.path) return { binding: null, backend: { name: 'node:crypto', reason: found.reason as string } };
  const opened = openSodium(found.path);
  if (typeof opened === 'string') {
    return { binding: null, backend: { name: 'node:crypto', reason: `sodium-native did not load: ${opened}` } };
  }
  return { binding: opened, backend: { name: 'libsodium' } };
}

let sodium: SodiumBinding | null | undefined;
let backend: Ed25519Backend | undefined;

function loadSodium(): SodiumBinding | null {
  if (sodium === undefined) ({ binding: sodium, backend } = probeSodium());
  return sodium;
}

/** The implementation in use (loads it on first call). */
export function ed25519Backend(): Ed25519Backend {
  loadSodium();
  return backend as Ed25519Backend;
}

const rawKeys = new WeakMap<KeyObject, Uint8Array>();

/** {@link rawPublicKey} of a key object (public, or the public half of a private one), cached. */
function rawOf(key: KeyObject): Uint8Array {
  let raw = rawKeys.get(key);
  if (!raw) {
    raw = rawPublicKey(key);
    rawKeys.set(key, raw);
  }
  return raw;
}

/**
 * Checks an Ed25519 signature. With libsodium, signatures whose R or public key is a point of small
 * order, or not canonically encoded, are refused as well; no honest signer produces one.
 */
export function verifyEd25519(msg: Uint8Array, sig: Uint8Array, key: KeyObject): boolean {
  if (sig.length !== 64) return false;
  const b = loadSodium();
  // The binary takes ArrayBuffers only (a SharedArrayBuffer would fail its native check).
  if (
    !b ||
    key.asymmetricKeyType !== 'ed25519' ||
    !(msg.buffer instanceof ArrayBuffer) ||
    !(sig.buffer instanceof ArrayBuffer)
  ) {
    return nodeVerify(null, msg, key, sig);
  }
  const raw = rawOf(key);
  return raw.length === 32 && verifyWith(b, msg, sig, raw);
}
