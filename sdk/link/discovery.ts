import { EdgewardenError } from '../errors';
import type { LinkCode } from './codes';
import { listSerialPorts, type SerialPortInfo } from './serial-transport';

/** Which port to use: a USB identity (hex ids, case and a 0x prefix do not matter), optionally a serial number. */
export interface PortMatch {
  vendorId?: string;
  productId?: string;
  serialNumber?: string;
}

/** Lists ports; injectable so that discovery is testable without hardware. */
export type PortLister = () => Promise<SerialPortInfo[]>;

const norm = (v?: string) => v?.toLowerCase().replace(/^0x/, '').padStart(4, '0');

/** Ports whose USB vendor/product id (and serial number, when given) match, in path order. */
export async function findPorts(match: PortMatch, lister: PortLister = listSerialPorts): Promise<SerialPortInfo[]> {
  const ports = await lister();
  return ports
    .filter(
      (p) =>
        (!match.vendorId || norm(p.vendorId) === norm(match.vendorId)) &&
        (!match.productId || norm(p.productId) === norm(match.productId)) &&
        (!match.serialNumber || p.serialNumber === match.serialNumber),
    )
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Resolves a port spec to a path: a path is returned as it is; a match returns the first matching
 * port. Throws `EW_LINK_PORT_NOT_FOUND` (with the ports seen in details) when nothing matches.
 */
export async function resolvePort(spec: string | PortMatch, lister: PortLister = listSerialPorts): Promise<string> {
  if (typeof spec === 'string') return spec;
  const found = await findPorts(spec, lister);
  if (found[0]) return found[0].path;
  const seen = await lister();
  const want = [spec.vendorId && `vendorId ${spec.vendorId}`, spec.productId && `productId ${spec.productId}`]
    .filter(Boolean)
    .join(', ');
  throw new EdgewardenError<LinkCode>('EW_LINK_PORT_NOT_FOUND', `no serial port with ${want || 'any id'}`, {
    details: {
      match: { ...spec },
      seen: seen.map((p) => `${p.path} ${p.vendorId ?? '----'}:${p.productId ?? '----'}`),
    },
  });
}
