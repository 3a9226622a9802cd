// `edgewarden/warden`: what an application on the device needs to run models with provenance and
// to check results, without the fleet collector, MQTT, the serial link, the agent or the demo.
// Importing it costs a device about half the start-up time of the whole package (README,
// "Benchmarks"); every name here is also exported by `edgewarden` itself.
export * from './engine/index';
export { EdgewardenError, isEdgewardenError } from './errors';
export * from './provenance/index';
export type { Clock } from './util/clock';
export { SYSTEM_CLOCK } from './util/clock';
export { SDK_VERSION } from './version';
export * from './warden/index';
