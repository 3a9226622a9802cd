/** The SDK version, recorded in every provenance record and heartbeat. Kept equal to package.json by a test. */
export const SDK_VERSION = '0.1.0';
