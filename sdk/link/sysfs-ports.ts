import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { SerialPortInfo } from './serial-transport';

const readTrim = (p: string): string | undefined => {
  try {
    return readFileSync(p, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
};

/**
 * Lists serial ports from Linux sysfs (`/sys/class/tty/<name>/device`), with the USB vendor and
 * product id, manufacturer and serial number of the USB device above the interface. serialport
 * asks udevadm, which minimal images and containers lack; this needs only /sys. Legacy 8250 UART
 * placeholders (ttyS* with no hardware behind them) are left out.
 */
export function listPortsFromSysfs(sysRoot = '/sys', devRoot = '/dev'): SerialPortInfo[] {
  const classDir = join(sysRoot, 'class', 'tty');
  let names: string[];
  try {
    names = readdirSync(classDir);
  } catch {
    return [];
  }
  const out: SerialPortInfo[] = [];
  for (const name of names.sort()) {
    const deviceLink = join(classDir, name, 'device');
    if (!existsSync(deviceLink)) continue;
    let device: string;
    try {
      device = realpathSync(deviceLink);
    } catch {
      continue;
    }
    const driver = existsSync(join(device, 'driver')) ? basename(realpathSync(join(device, 'driver'))) : undefined;
    if (driver === 'serial8250' || (name.startsWith('ttyS') && !driver)) continue;
    const info: SerialPortInfo = { path: join(devRoot, name) };
    // Walk up from the interface to the USB device that carries idVendor/idProduct.
    for (let dir = device; dir.startsWith(sysRoot) && dir !== dirname(dir); dir = dirname(dir)) {
      const vid = readTrim(join(dir, 'idVendor'));
      if (!vid) continue;
      info.vendorId = vid.toLowerCase().padStart(4, '0');
      info.productId = readTrim(join(dir, 'idProduct'))?.toLowerCase().padStart(4, '0');
      info.manufacturer = readTrim(join(dir, 'manufacturer'));
      info.serialNumber = readTrim(join(dir, 'serial'));
      break;
    }
    out.push(info);
  }
  return out;
}
