import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isEdgewardenError } from '../errors';
import { findPorts, resolvePort } from './discovery';
import type { SerialPortInfo } from './serial-transport';
import { listPortsFromSysfs } from './sysfs-ports';

const PORTS: SerialPortInfo[] = [
  { path: '/dev/ttyUSB0', vendorId: '10c4', productId: 'ea60', manufacturer: 'Silicon Labs' },
  { path: '/dev/ttyACM1', vendorId: '2e8a', productId: '000a', serialNumber: 'E66138935F3B' },
  { path: '/dev/ttyACM0', vendorId: '2e8a', productId: '000a', serialNumber: 'E661AAAA' },
  { path: '/dev/ttyS0' },
];
const lister = async () => PORTS;

describe('port discovery', () => {
  it('finds ports by USB vendor/product id regardless of case or 0x prefix, in path order', async () => {
    expect((await findPorts({ vendorId: '0x2E8A', productId: '000A' }, lister)).map((p) => p.path)).toEqual([
      '/dev/ttyACM0',
      '/dev/ttyACM1',
    ]);
    expect((await findPorts({ vendorId: '2e8a', serialNumber: 'E66138935F3B' }, lister)).map((p) => p.path)).toEqual([
      '/dev/ttyACM1',
    ]);
    expect(await resolvePort({ vendorId: '10c4' }, lister)).toBe('/dev/ttyUSB0');
    expect(await resolvePort('/dev/anything', lister)).toBe('/dev/anything');
  });

  it('throws EW_LINK_PORT_NOT_FOUND listing what it saw', async () => {
    const err = await resolvePort({ vendorId: 'dead', productId: 'beef' }, lister).catch((e) => e);
    expect(isEdgewardenError(err, 'EW_LINK_PORT_NOT_FOUND')).toBe(true);
    expect(err.details.seen).toContain('/dev/ttyACM0 2e8a:000a');
  });

  describe('sysfs lister (no udevadm needed)', () => {
    const root = mkdtempSync(join(tmpdir(), 'ew-sysfs-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    // A fixture tree: a USB CDC board (ttyACM0), a legacy UART placeholder (ttyS0), a virtual tty (tty0).
    const usbDev = join(root, 'devices/pci0000:00/0000:00:14.0/usb1/1-2');
    const iface = join(usbDev, '1-2:1.0');
    const uart = join(root, 'devices/platform/serial8250');
    mkdirSync(iface, { recursive: true });
    mkdirSync(join(uart, 'tty'), { recursive: true });
    mkdirSync(join(root, 'bus/platform/drivers/serial8250'), { recursive: true });
    mkdirSync(join(root, 'bus/usb/drivers/cdc_acm'), { recursive: true });
    symlinkSync(join(root, 'bus/platform/drivers/serial8250'), join(uart, 'driver'));
    symlinkSync(join(root, 'bus/usb/drivers/cdc_acm'), join(iface, 'driver'));
    writeFileSync(join(usbDev, 'idVendor'), '2E8A\n');
    writeFileSync(join(usbDev, 'idProduct'), '000a\n');
    writeFileSync(join(usbDev, 'manufacturer'), 'Raspberry Pi\n');
    writeFileSync(join(usbDev, 'serial'), 'E66138935F3B\n');
    for (const [name, target] of [
      ['ttyACM0', iface],
      ['ttyS0', uart],
      ['tty0', undefined],
    ] as const) {
      mkdirSync(join(root, 'class/tty', name), { recursive: true });
      if (target) symlinkSync(target, join(root, 'class/tty', name, 'device'));
    }

    it('lists USB serial ports with their ids and skips placeholders and virtual terminals', () => {
      expect(listPortsFromSysfs(root, '/dev')).toEqual([
        {
          path: '/dev/ttyACM0',
          vendorId: '2e8a',
          productId: '000a',
          manufacturer: 'Raspberry Pi',
          serialNumber: 'E66138935F3B',
        },
      ]);
      expect(listPortsFromSysfs(join(root, 'missing'))).toEqual([]);
    });
  });
});
