import { EdgewardenError } from '../errors';

/** The last level of a device topic. */
export type DeviceTopicKind = 'birth' | 'death' | 'hb' | 'ckpt' | 'receipt' | 'cmd';

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const KINDS: ReadonlySet<string> = new Set(['birth', 'death', 'hb', 'ckpt', 'receipt', 'cmd']);

function checkName(what: string, value: string): string {
  if (!NAME.test(value)) {
    throw new EdgewardenError('EW_TELEMETRY_TOPIC', `${what} ${JSON.stringify(value)} must be 1-64 of [A-Za-z0-9_-]`);
  }
  return value;
}

/** `ew/v1/{fleet}/{device}/{kind}` */
export function deviceTopic(fleet: string, device: string, kind: DeviceTopicKind): string {
  return `ew/v1/${checkName('fleet', fleet)}/${checkName('device', device)}/${kind}`;
}

/** `ew/v1/{fleet}/policy/{authority}`: retained, signed policies of one authority. */
export function policyTopic(fleet: string, authority: string): string {
  return `ew/v1/${checkName('fleet', fleet)}/policy/${checkName('authority', authority)}`;
}

/** Subscription filter for every authority's policy of a fleet. */
export function policyFilter(fleet: string): string {
  return `ew/v1/${checkName('fleet', fleet)}/policy/+`;
}

/** Subscription filter for every device message of a fleet ('+' for all fleets), optionally shared. */
export function fleetFilter(fleet: string, kind: DeviceTopicKind | '+', shareGroup?: string): string {
  const base = `ew/v1/${fleet === '+' ? '+' : checkName('fleet', fleet)}/+/${kind}`;
  return shareGroup ? `$share/${checkName('share group', shareGroup)}/${base}` : base;
}

/** A device topic taken apart, or undefined when `topic` is not one. */
export function parseDeviceTopic(topic: string): { fleet: string; device: string; kind: DeviceTopicKind } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[0] !== 'ew' || parts[1] !== 'v1') return undefined;
  const [, , fleet, device, kind] = parts as [string, string, string, string, string];
  if (!NAME.test(fleet) || !NAME.test(device) || device === 'policy' || !KINDS.has(kind)) return undefined;
  return { fleet, device, kind: kind as DeviceTopicKind };
}
