// Board profiles, the virtual MCU, and what else runs beside the SDK on a device.
export {};
