import { EdgewardenError } from '../errors';
import { crc32c } from '../util/crc32c';
import { cobsDecodeInto, cobsEncodeInto, cobsMaxEncodedLength } from './cobs';
import type { LinkCode } from './codes';

/**
 * Largest LinkMessage payload either side sends or accepts by default: one audio window of 512
 * int16 samples (1024 bytes) plus message headers, with room to spare.
 */
export const MAX_PAYLOAD = 1088;

/** Bytes of the CRC-32C trailer (u32 little-endian) inside the COBS block. */
export const CRC_BYTES = 4;

/** Largest encoded frame, COBS(payload ‖ crc) ‖ 0x00, for a payload limit (default {@link MAX_PAYLOAD}). */
export function maxFrameBytes(maxPayload = MAX_PAYLOAD): number {
  return cobsMaxEncodedLength(maxPayload + CRC_BYTES) + 1;
}

/** Largest frame on the wire for {@link MAX_PAYLOAD}: 1098 bytes. */
export const MAX_FRAME_BYTES = maxFrameBytes();

const linkError = (code: LinkCode, message: string, details?: Record<string, unknown>) =>
  new EdgewardenError<LinkCode>(code, message, { details });

/**
 * Encodes one frame: `COBS(payload ‖ crc32c(payload) u32 LE) ‖ 0x00`.
 * Throws `EW_LINK_OVERSIZE` when the payload is above `maxPayload`.
 */
export function encodeFrame(payload: Uint8Array, maxPayload = MAX_PAYLOAD): Uint8Array {
  if (payload.length > maxPayload)
    throw linkError('EW_LINK_OVERSIZE', `payload of ${payload.length} bytes exceeds the maximum of ${maxPayload}`, {
      size: payload.length,
      max: maxPayload,
    });
  const raw = new Uint8Array(payload.length + CRC_BYTES);
  raw.set(payload);
  new DataView(raw.buffer).setUint32(payload.length, crc32c(payload), true);
  const out = new Uint8Array(cobsMaxEncodedLength(raw.length) + 1);
  const n = cobsEncodeInto(out, 0, raw);
  out[n] = 0;
  return out.subarray(0, n + 1);
}

/**
 * Decodes one frame (with or without its trailing 0x00) back to its payload; throws
 * `EW_LINK_COBS`, `EW_LINK_CRC` or `EW_LINK_OVERSIZE`. For a byte stream use {@link FrameDecoder}.
 */
export function decodeFrame(frame: Uint8Array, maxPayload = MAX_PAYLOAD): Uint8Array {
  const end = frame.length > 0 && frame[frame.length - 1] === 0 ? frame.length - 1 : frame.length;
  if (end > cobsMaxEncodedLength(maxPayload + CRC_BYTES))
    throw linkError('EW_LINK_OVERSIZE', `frame of ${end} bytes exceeds the maximum`, { size: end });
  const raw = new Uint8Array(end);
  const n = cobsDecodeInto(raw, frame, 0, end);
  if (n < 0) throw linkError('EW_LINK_COBS', 'invalid COBS in frame', { size: end });
  return checkCrc(raw, n, maxPayload);
}

const SHORT = -1;
const TOO_BIG = -2;
const BAD_CRC = -3;

/** Payload length of a decoded block `raw[0..n)` whose CRC is good, or a negative status (no throw: hot path). */
function verifyCrc(raw: Uint8Array, n: number, maxPayload: number): number {
  if (n < CRC_BYTES) return SHORT;
  const len = n - CRC_BYTES;
  if (len > maxPayload) return TOO_BIG;
  const want = (raw[len]! | (raw[len + 1]! << 8) | (raw[len + 2]! << 16) | (raw[len + 3]! << 24)) >>> 0;
  return crc32c(raw, 0, 0, len) === want ? len : BAD_CRC;
}

function checkCrc(raw: Uint8Array, n: number, maxPayload: number): Uint8Array {
  const len = verifyCrc(raw, n, maxPayload);
  if (len === SHORT) throw linkError('EW_LINK_CRC', `frame of ${n} bytes is shorter than its CRC`, { size: n });
  if (len === TOO_BIG)
    throw linkError('EW_LINK_OVERSIZE', `payload of ${n - CRC_BYTES} bytes exceeds the maximum`, {
      size: n - CRC_BYTES,
    });
  if (len === BAD_CRC) throw linkError('EW_LINK_CRC', 'CRC-32C mismatch', { size: n - CRC_BYTES });
  return raw.slice(0, len);
}

/** Counters of a {@link FrameDecoder}; every dropped frame is counted exactly once. */
export interface FrameStats {
  /** Frames delivered (CRC good, size within the limit). */
  frames: number;
  /** Payload bytes delivered. */
  payloadBytes: number;
  /** Wire bytes received, delimiters included. */
  wireBytes: number;
  /** Frames dropped for a CRC-32C mismatch or a frame shorter than the CRC. */
  crcErrors: number;
  /** Frames dropped as invalid COBS. */
  cobsErrors: number;
  /** Frames dropped for exceeding the maximum size (bytes discarded up to the next 0x00). */
  oversize: number;
  /** Largest number of bytes the receive buffer ever held (never above one maximum frame). */
  bufferHighWater: number;
}

/**
 * Streaming frame receiver. Feed it bytes as they arrive; it calls `onFrame` with each good payload
 * (a fresh copy the caller may keep). It resynchronises on every 0x00, drops frames with a bad CRC,
 * bad COBS or over the maximum size (counted in {@link FrameStats}, never delivered) and never holds
 * more than one maximum encoded frame: once a frame grows past the limit, the rest of it is
 * discarded on the fly until the next delimiter. Empty frames (0x00 0x00) are ignored, so a sender
 * may send a 0x00 first to flush line noise.
 */
export class FrameDecoder {
  readonly maxPayload: number;
  readonly #buf: Uint8Array;
  readonly #raw: Uint8Array;
  #len = 0;
  #discarding = false;
  readonly #onFrame: (payload: Uint8Array) => void;
  readonly #stats: FrameStats = {
    frames: 0,
    payloadBytes: 0,
    wireBytes: 0,
    crcErrors: 0,
    cobsErrors: 0,
    oversize: 0,
    bufferHighWater: 0,
  };

  constructor(onFrame: (payload: Uint8Array) => void, options: { maxPayload?: number } = {}) {
    this.maxPayload = options.maxPayload ?? MAX_PAYLOAD;
    this.#onFrame = onFrame;
    this.#buf = new Uint8Array(cobsMaxEncodedLength(this.maxPayload + CRC_BYTES));
    this.#raw = new Uint8Array(this.#buf.length);
  }

  /** A snapshot of the counters. */
  get stats(): FrameStats {
    return { ...this.#stats };
  }

  /** Bytes of the current partial frame held in the buffer. */
  get buffered(): number {
    return this.#len;
  }

  /** Feeds received bytes. */
  push(chunk: Uint8Array): void {
    this.#stats.wireBytes += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      const zero = chunk.indexOf(0, i);
      const end = zero < 0 ? chunk.length : zero;
      this.#append(chunk, i, end);
      if (zero < 0) return;
      this.#endOfFrame();
      i = zero + 1;
    }
  }

  /** Forgets a partial frame (after a reconnect: bytes from the old connection are not a frame start). */
  reset(): void {
    this.#len = 0;
    this.#discarding = false;
  }

  #append(chunk: Uint8Array, start: number, end: number): void {
    if (this.#discarding || start === end) return;
    const n = end - start;
    if (this.#len + n > this.#buf.length) {
      // Too long to be a frame: drop what we hold and the rest up to the next delimiter.
      this.#stats.oversize++;
      this.#len = 0;
      this.#discarding = true;
      return;
    }
    this.#buf.set(chunk.subarray(start, end), this.#len);
    this.#len += n;
    if (this.#len > this.#stats.bufferHighWater) this.#stats.bufferHighWater = this.#len;
  }

  #endOfFrame(): void {
    const encodedLen = this.#len;
    const discarding = this.#discarding;
    this.#len = 0;
    this.#discarding = false;
    if (discarding || encodedLen === 0) return;
    const n = cobsDecodeInto(this.#raw, this.#buf, 0, encodedLen);
    if (n < 0) {
      this.#stats.cobsErrors++;
      return;
    }
    const len = verifyCrc(this.#raw, n, this.maxPayload);
    if (len === TOO_BIG) {
      this.#stats.oversize++;
      return;
    }
    if (len < 0) {
      this.#stats.crcErrors++;
      return;
    }
    const payload = this.#raw.slice(0, len);
    this.#stats.frames++;
    this.#stats.payloadBytes += payload.length;
    this.#onFrame(payload);
  }
}
