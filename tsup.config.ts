import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'sdk/index.ts',
    'warden/index': 'sdk/device.ts',
    'testing/index': 'sdk/testing/index.ts',
    'devices/index': 'devices/index.ts',
    'cli/main': 'sdk/cli/main.ts',
  },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: {
    entry: {
      index: 'sdk/index.ts',
      'warden/index': 'sdk/device.ts',
      'testing/index': 'sdk/testing/index.ts',
      'devices/index': 'devices/index.ts',
    },
  },
  sourcemap: true,
  clean: true,
  splitting: true,
  shims: false,
  // protobufjs/minimal is a dozen small CommonJS files: loaded through Node's CommonJS loader they
  // cost a device ~25 ms at every start (measured on the 2-core box), bundled into the ESM chunk a
  // fraction of that. Long.js stays out: every 64-bit field is read as a plain number.
  noExternal: [/^protobufjs(\/|$)/],
  external: ['long'],
  // The dashboard's static files travel with the build (the collector serves them from dist/public).
  onSuccess: 'rm -rf dist/public && mkdir -p dist/public && cp -r sdk/fleet/public/dashboard dist/public/',
});
