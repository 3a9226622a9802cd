// The only file that imports serialport.
import { read as fsRead } from 'node:fs';
import type { SerialPort } from 'serialport';
import { EdgewardenError } from '../errors';
import type { LinkCode } from './codes';
import { TypedEmitter } from './emitter';
import { listPortsFromSysfs } from './sysfs-ports';
import type { Transport, TransportEvents } from './transport';

/** Default line rate: what USB CDC boards are usually opened at (USB CDC ignores it, real UARTs do not). */
export const DEFAULT_BAUD_RATE = 921600;

export interface SerialTransportOptions {
  /** /dev/ttyACM0, /dev/ttyUSB0, a pseudo-terminal path, ... */
  path: string;
  /** Default {@link DEFAULT_BAUD_RATE}. */
  baudRate?: number;
  /** Take an exclusive lock on the port (default true). */
  lock?: boolean;
  /**
   * A serialport binding to use instead of the operating system's, e.g. `SerialPortMock.binding`
   * from serialport for tests without hardware (default: the OS binding).
   */
  binding?: typeof SerialPort.binding;
}

/** A serial port found by the OS, with its USB identity when it has one. */
export interface SerialPortInfo {
  path: string;
  /** Lowercase 4-digit hex, e.g. "2e8a", when the port is a USB device. */
  vendorId?: string;
  productId?: string;
  manufacturer?: string;
  serialNumber?: string;
}

const linkError = (code: LinkCode, message: string, details?: Record<string, unknown>, cause?: unknown) =>
  new EdgewardenError<LinkCode>(code, message, { details, cause });

const hex4 = (v?: string) => (v ? v.toLowerCase().replace(/^0x/, '').padStart(4, '0') : undefined);

type BindingInterface = typeof SerialPort.binding;
type BindingPort = Awaited<ReturnType<BindingInterface['open']>>;
interface UnixPort {
  fd: number | null;
  isOpen: boolean;
  poller?: { once(event: 'readable', cb: (err?: Error | null) => void): void };
}

/**
 * serialport's unix read retries a 0-byte read forever, but a 0-byte read on a terminal means the
 * other end hung up (a pseudo-terminal whose master closed; some USB adapters). This binding reads
 * the same way and reports a 0-byte read (and EIO) as a disconnect, so the port closes with
 * `disconnected` and the session can reopen it.
 */
function hangupAwareBinding(base: BindingInterface): BindingInterface {
  return {
    ...base,
    list: () => base.list(),
    async open(options: Parameters<BindingInterface['open']>[0]) {
      const port = await base.open(options);
      const unix = port as unknown as UnixPort;
      if (typeof unix.fd !== 'number' || !unix.poller) return port;
      (port as { read: BindingPort['read'] }).read = (buffer: Buffer, offset: number, length: number) =>
        hangupAwareRead(unix, buffer, offset, length);
      return port;
    },
  } as BindingInterface;
}

// serialport and its native binding load with the first port opened or listed, not at import.
let serialModule: Promise<{ SerialPort: typeof SerialPort; binding: BindingInterface }> | undefined;
const loadSerialPort = () =>
  (serialModule ??= import('serialport').then(({ SerialPort }) => ({
    SerialPort,
    binding: hangupAwareBinding(SerialPort.binding),
  })));

async function hangupAwareRead(
  port: UnixPort,
  buffer: Buffer,
  offset: number,
  length: number,
): Promise<{ buffer: Buffer; bytesRead: number }> {
  for (;;) {
    if (!port.isOpen || port.fd === null) throw Object.assign(new Error('Port is not open'), { canceled: true });
    const fd = port.fd;
    try {
      const bytesRead = await new Promise<number>((resolve, reject) =>
        fsRead(fd, buffer, offset, length, null, (err, n) => (err ? reject(err) : resolve(n))),
      );
      if (bytesRead === 0) throw Object.assign(new Error('the other end hung up'), { disconnect: true });
      return { buffer, bytesRead };
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { disconnect?: boolean };
      if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK' || e.code === 'EINTR') {
        // The port may have closed while the read was in flight: polling a destroyed poller crashes.
        if (!port.isOpen || port.fd === null) throw Object.assign(new Error('Port is not open'), { canceled: true });
        await new Promise<void>((resolve, reject) =>
          port.poller!.once('readable', (pe) => (pe ? reject(pe) : resolve())),
        );
        continue;
      }
      if (['EIO', 'EBADF', 'ENXIO', 'ENODEV', 'UNKNOWN'].includes(e.code ?? '')) e.disconnect = true;
      throw e;
    }
  }
}

/**
 * Lists serial ports through serialport's OS-specific lister; on Linux without udevadm (minimal
 * images, containers) from sysfs instead.
 */
export async function listSerialPorts(): Promise<SerialPortInfo[]> {
  let ports: Awaited<ReturnType<typeof SerialPort.list>>;
  try {
    ports = await (await loadSerialPort()).SerialPort.list();
  } catch (err) {
    if (process.platform === 'linux') return listPortsFromSysfs();
    throw linkError('EW_LINK_PORT_NOT_FOUND', `cannot list serial ports: ${(err as Error).message}`, {}, err);
  }
  return ports.map((p) => ({
    path: p.path,
    vendorId: hex4(p.vendorId),
    productId: hex4(p.productId),
    manufacturer: p.manufacturer || undefined,
    serialNumber: p.serialNumber || undefined,
  }));
}

/**
 * A {@link Transport} on a serial port (serialport 13). Each `open()` opens a fresh file
 * descriptor; when the device goes away (unplugged, the pseudo-terminal closed) `close` is emitted
 * with an error and the port can be opened again once the path is back.
 */
export class SerialTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly path: string;
  readonly baudRate: number;
  readonly #lock: boolean;
  readonly #binding: BindingInterface | undefined;
  #port?: SerialPort;
  #opening?: Promise<void>;

  constructor(options: SerialTransportOptions) {
    super();
    this.path = options.path;
    this.baudRate = options.baudRate ?? DEFAULT_BAUD_RATE;
    this.#lock = options.lock ?? true;
    this.#binding = options.binding ? hangupAwareBinding(options.binding) : undefined;
  }

  get description(): string {
    return this.path;
  }

  get isOpen(): boolean {
    return this.#port?.isOpen === true;
  }

  open(): Promise<void> {
    if (this.#port) return Promise.resolve();
    // Concurrent calls share one attempt: two would open two descriptors on one device.
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<void> {
    const { SerialPort, binding } = await loadSerialPort();
    const port = new SerialPort({
      path: this.path,
      baudRate: this.baudRate,
      autoOpen: false,
      lock: this.#lock,
      binding: this.#binding ?? binding,
    });
    await new Promise<void>((resolve, reject) =>
      port.open((err) =>
        err
          ? reject(linkError('EW_LINK_OPEN', `cannot open ${this.path}: ${err.message}`, { path: this.path }, err))
          : resolve(),
      ),
    );
    this.#port = port;
    port.on('data', (chunk: Buffer) => {
      if (this.#port === port) this.emit('data', chunk);
    });
    let lastError: Error | undefined;
    port.on('error', (err: Error) => {
      // A write error rejects its write() too; kept to say why the port closed.
      lastError = err;
    });
    // close() removes this listener first, so every 'close' that reaches it is a lost port. It comes
    // with serialport's DisconnectedError after a failed read, but without one when a failed write
    // made the stream destroy itself: either way it is reported as a disconnect.
    port.on('close', (err?: Error & { disconnected?: boolean }) => {
      if (this.#port !== port) return;
      this.#port = undefined;
      port.removeAllListeners();
      // serialport may still report errors of the dead port (its own close after the stream's):
      // an 'error' event without a listener would throw.
      port.on('error', () => undefined);
      const cause = err ?? lastError;
      this.emit(
        'close',
        linkError(
          'EW_LINK_DISCONNECTED',
          `${this.path} went away${cause ? `: ${cause.message}` : ''}`,
          { path: this.path },
          cause,
        ),
      );
    });
  }

  write(data: Uint8Array): Promise<void> {
    const port = this.#port;
    if (!port) return Promise.reject(linkError('EW_LINK_NOT_OPEN', `${this.path} is not open`));
    return new Promise((resolve, reject) => {
      port.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength), (err) =>
        err ? reject(linkError('EW_LINK_WRITE', `write to ${this.path} failed: ${err.message}`, {}, err)) : resolve(),
      );
    });
  }

  async close(): Promise<void> {
    const port = this.#port;
    if (!port) return;
    this.#port = undefined;
    port.removeAllListeners('data');
    port.removeAllListeners('close');
    await new Promise<void>((resolve) => {
      if (!port.isOpen) return resolve();
      port.close(() => resolve());
    });
    port.removeAllListeners();
    this.emit('close', undefined);
  }
}
