import { createServer } from 'node:net';

/** A port of 127.0.0.1 that was free a moment ago (nobody listens there). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const a = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return typeof a === 'object' && a ? a.port : 0;
}

/** An MQTT URL on a port of 127.0.0.1 that was free a moment ago. */
export async function freePortUrl(): Promise<{ url: string; port: number }> {
  const port = await freePort();
  return { url: `mqtt://127.0.0.1:${port}`, port };
}
