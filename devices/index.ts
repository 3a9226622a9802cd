// What runs beside the SDK on a device (`edgewarden/devices`): board profiles and the virtual MCU.
export * from './boards/index';
export * from './simulator/index';
