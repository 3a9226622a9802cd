import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'sdk/index.ts',
    'testing/index': 'sdk/testing/index.ts',
    'devices/index': 'devices/index.ts',
    'cli/main': 'sdk/cli/main.ts',
  },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: {
    entry: { index: 'sdk/index.ts', 'testing/index': 'sdk/testing/index.ts', 'devices/index': 'devices/index.ts' },
  },
  sourcemap: true,
  clean: true,
  splitting: true,
  shims: false,
  // The dashboard's static files travel with the build (the collector serves them from dist/public).
  onSuccess: 'rm -rf dist/public && mkdir -p dist/public && cp -r sdk/fleet/public/dashboard dist/public/',
});
