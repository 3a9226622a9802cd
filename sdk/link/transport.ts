import type { TypedEmitter } from './emitter';

/** Events of a {@link Transport}. */
export interface TransportEvents {
  [event: string]: unknown[];
  /** Bytes arrived. */
  data: [chunk: Uint8Array];
  /**
   * The connection ended: `error` is set when it was lost (unplugged, I/O error) and undefined when
   * this side called `close()`. A transport can be opened again after it.
   */
  close: [error?: Error];
}

/**
 * A byte pipe to a device: a serial port, a pseudo-terminal, an in-memory pair. Small and
 * Promise-based so that a session never depends on serialport itself; a transport can be opened
 * again after it closed (that is how a session reopens an unplugged port).
 */
export interface Transport extends Pick<TypedEmitter<TransportEvents>, 'on' | 'once' | 'off'> {
  /** A path or name for messages ("/dev/ttyACM0", "memory:host"). */
  readonly description: string;
  readonly isOpen: boolean;
  /** Opens the connection; rejects with `EW_LINK_OPEN` when the device is not there. */
  open(): Promise<void>;
  /** Queues bytes; resolves when the OS took them. Rejects with `EW_LINK_NOT_OPEN` or `EW_LINK_WRITE`. */
  write(data: Uint8Array): Promise<void>;
  /** Closes; idempotent. Emits `close` without an error. */
  close(): Promise<void>;
}
