import { edgewarden } from '../__generated__/messages.js';
import { EdgewardenError } from '../errors';

/** Upper bound on a receipt or command payload. */
export const MAX_CONTROL_BYTES = 1024;

/**
 * Collector → device on `…/receipt`. Cumulative: every heartbeat with seq ≤ `storedSeq` is stored
 * (seq is device-wide, independent of bd_seq), so the device drops those from its outbox.
 */
export interface Receipt {
  storedSeq: number;
  timeUnixMs: number;
  collector: string;
}

/** Collector → device on `…/cmd`: re-publish the birth, or re-send a seq range still in the outbox. */
export type DeviceCommand = { kind: 'rebirth' } | { kind: 'backfill'; fromSeq: number; toSeq: number };

function bad(what: string, m: string, cause?: unknown): never {
  throw new EdgewardenError('EW_TELEMETRY_MALFORMED', `${what}: ${m}`, cause === undefined ? {} : { cause });
}

function decodeBounded<T>(what: string, bytes: Uint8Array, decode: (b: Uint8Array) => T): T {
  if (!(bytes instanceof Uint8Array)) bad(what, 'not bytes');
  if (bytes.length > MAX_CONTROL_BYTES) bad(what, `${bytes.length} bytes exceed ${MAX_CONTROL_BYTES}`);
  try {
    return decode(bytes);
  } catch (cause) {
    return bad(what, 'bytes do not decode', cause);
  }
}

function uint(what: string, field: string, v: number | null | undefined): number {
  const n = v ?? 0;
  if (!Number.isSafeInteger(n) || n < 0) bad(what, `${field} out of range`);
  return n;
}

/** Encodes a receipt (protobuf). */
export function encodeReceipt(r: Receipt): Uint8Array {
  return edgewarden.v1.Receipt.encode({
    storedSeq: r.storedSeq,
    timeUnixMs: r.timeUnixMs,
    collector: r.collector,
  }).finish();
}

/** Decodes a receipt; throws `EW_TELEMETRY_MALFORMED`. */
export function decodeReceipt(bytes: Uint8Array): Receipt {
  const m = decodeBounded('receipt', bytes, (b) => edgewarden.v1.Receipt.decode(b));
  if (!Number.isSafeInteger(m.timeUnixMs)) bad('receipt', 'timeUnixMs out of range');
  if (m.collector.length > 256) bad('receipt', 'collector name too long');
  return { storedSeq: uint('receipt', 'storedSeq', m.storedSeq), timeUnixMs: m.timeUnixMs, collector: m.collector };
}

/** Encodes a device command (protobuf). */
export function encodeDeviceCommand(c: DeviceCommand): Uint8Array {
  if (c.kind === 'rebirth') return edgewarden.v1.DeviceCommand.encode({ rebirth: {} }).finish();
  if (c.kind === 'backfill') {
    return edgewarden.v1.DeviceCommand.encode({ backfill: { fromSeq: c.fromSeq, toSeq: c.toSeq } }).finish();
  }
  throw new EdgewardenError('EW_TELEMETRY_INPUT', `unknown command kind ${(c as { kind: unknown }).kind}`, {
    details: { field: 'kind' },
  });
}

/** Decodes a device command; throws `EW_TELEMETRY_MALFORMED` (also for an empty or unknown body). */
export function decodeDeviceCommand(bytes: Uint8Array): DeviceCommand {
  const m = decodeBounded('command', bytes, (b) => edgewarden.v1.DeviceCommand.decode(b));
  if (m.rebirth) return { kind: 'rebirth' };
  if (m.backfill) {
    const fromSeq = uint('command', 'fromSeq', m.backfill.fromSeq);
    const toSeq = uint('command', 'toSeq', m.backfill.toSeq);
    if (toSeq < fromSeq) bad('command', 'backfill toSeq < fromSeq');
    return { kind: 'backfill', fromSeq, toSeq };
  }
  return bad('command', 'no known body');
}
