import { EdgewardenError, isEdgewardenError } from '../errors';
import type { LinkCode } from './codes';
import { TypedEmitter } from './emitter';
import { encodeFrame, FrameDecoder, type FrameStats, MAX_PAYLOAD } from './framing';
import { decodeLinkMessage, encodeLinkMessage, type LinkMessage } from './messages';
import type { Transport } from './transport';

/** Counters of a {@link FramedLink}: the frame decoder's plus message-level ones. */
export interface LinkStats extends FrameStats {
  /** Frames with a good CRC whose payload is not a LinkMessage. */
  malformed: number;
  txFrames: number;
  txBytes: number;
}

export interface FramedLinkEvents {
  [event: string]: unknown[];
  message: [msg: LinkMessage];
  /** A good frame that did not decode as a LinkMessage (EW_LINK_MALFORMED). */
  malformed: [error: EdgewardenError, payload: Uint8Array];
}

/**
 * Messages over a transport: frames outgoing LinkMessages and decodes incoming bytes back to them.
 * Both the host session and the virtual MCU use it.
 */
export class FramedLink extends TypedEmitter<FramedLinkEvents> {
  readonly transport: Transport;
  readonly #decoder: FrameDecoder;
  #malformed = 0;
  #txFrames = 0;
  #txBytes = 0;
  readonly #offData: () => void;

  constructor(transport: Transport, options: { maxPayload?: number } = {}) {
    super();
    this.transport = transport;
    this.#decoder = new FrameDecoder((payload) => this.#onPayload(payload), {
      maxPayload: options.maxPayload ?? MAX_PAYLOAD,
    });
    this.#offData = transport.on('data', (chunk) => this.#decoder.push(chunk));
  }

  get stats(): LinkStats {
    return { ...this.#decoder.stats, malformed: this.#malformed, txFrames: this.#txFrames, txBytes: this.#txBytes };
  }

  /** Encodes and writes one message. `maxPayload`: the peer's receive limit (EW_LINK_OVERSIZE above it). */
  async send(msg: LinkMessage, maxPayload = MAX_PAYLOAD): Promise<void> {
    const frame = encodeFrame(encodeLinkMessage(msg), maxPayload);
    this.#txFrames++;
    this.#txBytes += frame.length;
    await this.transport.write(frame);
  }

  /** Writes raw bytes (fault injection, benchmarks). */
  async sendRaw(bytes: Uint8Array): Promise<void> {
    this.#txBytes += bytes.length;
    await this.transport.write(bytes);
  }

  /** Drops a partial frame (call after a reconnect). */
  resetReceiver(): void {
    this.#decoder.reset();
  }

  /** Stops listening to the transport (does not close it). */
  detach(): void {
    this.#offData();
  }

  #onPayload(payload: Uint8Array): void {
    let msg: LinkMessage;
    try {
      msg = decodeLinkMessage(payload);
    } catch (err) {
      this.#malformed++;
      const e = isEdgewardenError(err)
        ? err
        : new EdgewardenError<LinkCode>('EW_LINK_MALFORMED', String(err), { cause: err });
      this.emit('malformed', e, payload);
      return;
    }
    this.emit('message', msg);
  }
}
