// TOFU needs the device's public key, and the Lifecycle message has no field for it yet. A birth
// carries it as field 9 (`bytes public_key = 9`, proposed to TELEMETRY); protobuf decoders skip
// unknown fields, so this reads and writes that one field without changing the generated code.

/** Protobuf field number of the public key in a birth (`Lifecycle.public_key`). */
export const LIFECYCLE_PUBLIC_KEY_FIELD = 9;
const TAG = (LIFECYCLE_PUBLIC_KEY_FIELD << 3) | 2;

function readVarint(b: Uint8Array, pos: number): [value: number, next: number] | undefined {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) return undefined;
    const byte = b[pos++]!;
    value += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return Number.isSafeInteger(value) ? [value, pos] : undefined;
    mul *= 128;
  }
  return undefined;
}

/**
 * The 32-byte public key a birth payload carries in field 9, or undefined (absent, wrong length, or
 * the bytes do not parse as protobuf). Never throws.
 */
export function lifecyclePublicKey(payload: Uint8Array): Uint8Array | undefined {
  let pos = 0;
  let found: Uint8Array | undefined;
  while (pos < payload.length) {
    const tag = readVarint(payload, pos);
    if (!tag) return undefined;
    pos = tag[1];
    const wire = tag[0] & 7;
    if (wire === 0) {
      const v = readVarint(payload, pos);
      if (!v) return undefined;
      pos = v[1];
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = readVarint(payload, pos);
      if (!len || len[1] + len[0] > payload.length) return undefined;
      if (tag[0] === TAG) found = payload.subarray(len[1], len[1] + len[0]);
      pos = len[1] + len[0];
    } else return undefined;
    if (pos > payload.length) return undefined;
  }
  return found && found.length === 32 ? found : undefined;
}

/** Appends field 9 (the public key) to an encoded Lifecycle payload. */
export function withLifecyclePublicKey(payload: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 2 + publicKey.length);
  out.set(payload, 0);
  out[payload.length] = TAG;
  out[payload.length + 1] = publicKey.length;
  out.set(publicKey, payload.length + 2);
  return out;
}
