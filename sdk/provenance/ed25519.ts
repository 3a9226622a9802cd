import { type KeyObject, verify as nodeVerify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

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

/** RFC 8032's test 2 as hex of public key (32 bytes), signature (64) and message, for workers' checks. */
export const ED25519_KAT_HEX = KAT_PUBLIC + KAT_SIGNATURE + KAT_MESSAGE;

/** Loads the binary and checks it against the RFC 8032 vector; throws when it does not behave. */
function openSodium(path: string): SodiumBinding {
  const b = createRequire(path)(path) as SodiumBinding;
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(64);
  if (b.crypto_sign_seed_keypair(pk, sk, Buffer.from(KAT_SEED, 'hex')) !== 0) throw new Error('keypair failed');
  if (Buffer.from(pk).toString('hex') !== KAT_PUBLIC) throw new Error('wrong public key');
  const sig = new Uint8Array(64);
  const msg = Buffer.from(KAT_MESSAGE, 'hex');
  if (b.crypto_sign_detached(sig, msg, sk) !== 0) throw new Error('sign failed');
  if (Buffer.from(sig).toString('hex') !== KAT_SIGNATURE) throw new Error('wrong signature');
  if (!verifyWith(b, msg, sig, pk)) throw new Error('a good signature did not verify');
  sig[5] = (sig[5] as number) ^ 1;
  if (verifyWith(b, msg, sig, pk)) throw new Error('a bad signature verified');
  return b;
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
  try {
    return { binding: openSodium(found.path), backend: { name: 'libsodium' } };
  } catch (cause) {
    const reason = `sodium-native did not load: ${(cause as Error).message.split('\n')[0]}`;
    return { binding: null, backend: { name: 'node:crypto', reason } };
  }
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

/** Raw 32 bytes of an Ed25519 key object (public, or the public half of a private one), cached. */
function rawOf(key: KeyObject): Uint8Array {
  let raw = rawKeys.get(key);
  if (!raw) {
    const x = (key.export({ format: 'jwk' }) as { x?: string }).x ?? '';
    raw = new Uint8Array(Buffer.from(x, 'base64url'));
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
