// Public face of the demo: the whole fleet on one machine (what `edgewarden demo` runs).
export { DEMO_CODES, type DemoCode } from './codes';
export { type Demo, type DemoOptions, type DemoSnapshot, type DemoSummary, sileroVadPath, startDemo } from './demo';
export { DemoDevice, type DemoDeviceOptions, type DemoDeviceStats, type McuKind } from './device';
export { ensureHostFirmware, type HostFirmware, startHostFirmware } from './firmware';
