// What runs beside the SDK on a device (`edgewarden/devices`): board profiles and the virtual MCU.
// Bundling: importing the package root here makes every module this entry shares with the root
// part of the root's chunks, rather than a chunk per combination of entries; each ES module costs a
// device ~2 ms to load, and `edgewarden/warden` then loads two files instead of eleven.
import '../sdk/index';

export * from './boards/index';
export * from './simulator/index';
