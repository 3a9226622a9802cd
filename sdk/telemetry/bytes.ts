/** A plain Uint8Array view of protobufjs output (a Buffer under Node), so decoded values compare equal to built ones. */
export function u8(b: Uint8Array | null | undefined): Uint8Array {
  if (!b) return new Uint8Array(0);
  return Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
