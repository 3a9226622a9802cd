/**
 * Something that signs with an Ed25519 key. The key-file signer implements it; a hardware-backed
 * signer (PKCS#11, TPM) can replace it without touching the rest of the SDK.
 */
export interface Signer {
  /** SHA-256 of the raw 32-byte public key. */
  readonly keyId: Uint8Array;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Ed25519 signature (64 bytes) over `data`. */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** Synchronous signing, where the key is in this process (used on hot paths when present). */
  signSync?(data: Uint8Array): Uint8Array;
}
