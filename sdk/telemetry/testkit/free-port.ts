import { createServer } from 'node:net';

/** An MQTT URL on a port of 127.0.0.1 that was free a moment ago (nobody listens there). */
export async function freePortUrl(): Promise<{ url: string; port: number }> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const a = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  const port = typeof a === 'object' && a ? a.port : 0;
  return { url: `mqtt://127.0.0.1:${port}`, port };
}
