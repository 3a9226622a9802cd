#!/usr/bin/env node
// Ed25519 and short SHA-256 benchmark: prints JSON. node:crypto (OpenSSL) is the baseline; the
// other side is what edgewarden uses where sodium-native's prebuilt binary is installed: libsodium,
// through `verifyEd25519` for verification and through the binary directly for signing and SHA-256
// (as the provenance worker calls it). Rounds alternate sides; each figure is the median round, in
// µs per operation, and `speedup` is node:crypto's time over libsodium's.
//   npm run build && node bench/ed25519.mjs [--rounds R] [--n N]
import { generateKeyPairSync, hash, randomBytes, sign, verify } from 'node:crypto';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const rounds = opt('--rounds', 7);
const n = opt('--n', 3000);
const { ed25519Backend, verifyEd25519 } = await import(pathToFileURL(join(root, 'dist', 'index.js')).href);

const backend = ed25519Backend();
if (backend.name !== 'libsodium') {
  console.log(JSON.stringify({ skipped: `libsodium is not in use: ${backend.reason}` }));
  process.exit(0);
}
const pkg = createRequire(import.meta.url).resolve('sodium-native/package.json');
const binary = join(dirname(pkg), 'prebuilds', `${process.platform}-${process.arch}`, 'sodium-native.node');
const sodium = createRequire(binary)(binary);

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d, 'base64url');
const sk = new Uint8Array(64);
sodium.crypto_sign_seed_keypair(new Uint8Array(32), sk, seed);
// A DSSE pre-authentication encoding of a provenance record is about this long.
const msg = randomBytes(300);
const sig = sign(null, msg, privateKey);
const out = Buffer.alloc(64);
const short = randomBytes(40);

const time = (f) => {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return Number(process.hrtime.bigint() - t) / n / 1000;
};
const cases = {
  verify: [() => verify(null, msg, publicKey, sig), () => verifyEd25519(msg, sig, publicKey)],
  sign: [() => sign(null, msg, privateKey), () => sodium.crypto_sign_detached(out, msg, sk)],
  sha256of40Bytes: [() => hash('sha256', short, 'buffer'), () => sodium.crypto_hash_sha256(out.subarray(0, 32), short)],
};
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const result = {};
for (const [name, [nodeSide, sodiumSide]] of Object.entries(cases)) {
  nodeSide();
  sodiumSide();
  const a = [];
  const b = [];
  for (let r = 0; r < rounds; r++) {
    a.push(time(nodeSide));
    b.push(time(sodiumSide));
  }
  const nodeUs = median(a);
  const sodiumUs = median(b);
  result[name] = {
    nodeCryptoUs: Number(nodeUs.toFixed(2)),
    libsodiumUs: Number(sodiumUs.toFixed(2)),
    speedup: Number((nodeUs / sodiumUs).toFixed(2)),
  };
}
console.log(
  JSON.stringify(
    { machine: { cpu: cpus()[0]?.model, cpus: cpus().length, node: process.version }, rounds, n, ...result },
    null,
    2,
  ),
);
