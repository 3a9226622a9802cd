// Trust on first use needs the device's public key: a birth carries it in `Lifecycle.public_key`
// (field 9). The collector reads it from the birth bytes before the device is enrolled.
import { edgewarden } from '../__generated__/messages.js';

/** Protobuf field number of the public key in a birth (`Lifecycle.public_key`). */
export const LIFECYCLE_PUBLIC_KEY_FIELD = 9;

/**
 * The 32-byte public key a birth payload carries, or undefined (absent, wrong length, or the bytes
 * do not decode). Never throws.
 */
export function lifecyclePublicKey(payload: Uint8Array): Uint8Array | undefined {
  try {
    const key = edgewarden.v1.Lifecycle.decode(payload).publicKey;
    return key.length === 32 ? new Uint8Array(key) : undefined;
  } catch {
    return undefined;
  }
}

/** Appends field 9 (the public key) to an encoded Lifecycle payload (protobuf allows appending a field). */
export function withLifecyclePublicKey(payload: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const field = edgewarden.v1.Lifecycle.encode({ publicKey }).finish();
  const out = new Uint8Array(payload.length + field.length);
  out.set(payload, 0);
  out.set(field, payload.length);
  return out;
}
