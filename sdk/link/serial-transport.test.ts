// SerialTransport on serialport's mock binding: what the transport reports when the port is lost.
// (Real pseudo-terminals are exercised by hil-tests/.)
import { SerialPortMock } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { SerialTransport } from './serial-transport';

type Binding = typeof SerialPortMock.binding;
type MockPort = Awaited<ReturnType<Binding['open']>>;

const PATH = '/dev/ew-mock0';

/** The mock binding, with each opened port changed by `patch`. */
function bindingWith(patch: (port: MockPort) => void): Binding {
  const base = SerialPortMock.binding;
  return {
    ...base,
    list: () => base.list(),
    async open(options: Parameters<Binding['open']>[0]) {
      const port = await base.open(options);
      patch(port);
      return port;
    },
  } as Binding;
}

afterEach(() => SerialPortMock.binding.reset());

describe('SerialTransport', () => {
  it('reports a port lost on a failed write as a disconnect, so a device side reopens it', async () => {
    SerialPortMock.binding.createPort(PATH);
    const binding = bindingWith((port) => {
      port.write = async () => {
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      };
      // A real port's close goes through the thread pool: the stream's own 'close' comes first.
      const close = port.close.bind(port);
      port.close = async () => {
        await new Promise((r) => setTimeout(r, 20));
        return close();
      };
    });
    const t = new SerialTransport({ path: PATH, binding, lock: false });
    await t.open();
    const closed = new Promise<Error | undefined>((resolve) => t.once('close', resolve));
    const write = await t.write(Uint8Array.of(1, 2, 3)).catch((e: unknown) => e);
    expect(isEdgewardenError(write, 'EW_LINK_WRITE')).toBe(true);
    const err = await closed;
    // serialport's stream destroys itself on the write error and emits 'close' with no error first.
    expect(isEdgewardenError(err, 'EW_LINK_DISCONNECTED')).toBe(true);
    expect(err?.message).toContain('EIO');
    expect(t.isOpen).toBe(false);
    // And it opens again.
    await t.open();
    expect(t.isOpen).toBe(true);
    await t.close();
  });

  it('reports a port lost on a failed read as a disconnect', async () => {
    SerialPortMock.binding.createPort(PATH);
    let failRead: ((err: Error) => void) | undefined;
    const binding = bindingWith((port) => {
      port.read = () =>
        new Promise((_, reject) => {
          failRead = reject;
        });
    });
    const t = new SerialTransport({ path: PATH, binding, lock: false });
    const closed = new Promise<Error | undefined>((resolve) => t.once('close', resolve));
    await t.open();
    t.on('data', () => undefined); // starts the reads
    await expect.poll(() => failRead).toBeDefined();
    failRead!(Object.assign(new Error('ENXIO: no such device'), { code: 'ENXIO', disconnect: true }));
    const err = await closed;
    expect(isEdgewardenError(err, 'EW_LINK_DISCONNECTED')).toBe(true);
    expect(err?.message).toContain('ENXIO');
  });

  it('opens one port for concurrent open() calls', async () => {
    SerialPortMock.binding.createPort(PATH);
    let opened = 0;
    const binding = bindingWith(() => {
      opened++;
    });
    const t = new SerialTransport({ path: PATH, binding, lock: false });
    await Promise.all([t.open(), t.open(), t.open()]);
    expect(opened).toBe(1);
    expect(t.isOpen).toBe(true);
    await t.close();
  });

  it('emits close without an error when this side closes it', async () => {
    SerialPortMock.binding.createPort(PATH);
    const t = new SerialTransport({ path: PATH, binding: SerialPortMock.binding, lock: false });
    await t.open();
    const closed = new Promise<Error | undefined>((resolve) => t.once('close', resolve));
    await t.close();
    expect(await closed).toBeUndefined();
    await t.close(); // idempotent
  });
});
