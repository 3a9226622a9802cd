import { createServer, type Server } from 'node:net';

/** A running embedded broker. */
export interface EmbeddedBroker {
  /** `mqtt://127.0.0.1:PORT` */
  url: string;
  host: string;
  port: number;
  /** Stops accepting, disconnects every client (wills fire) and frees the port. */
  close(): Promise<void>;
}

/**
 * Starts an in-process MQTT 3.1.1 broker (aedes, in-memory persistence) on 127.0.0.1 and a free port
 * by default: the default broker when none is configured, and the broker every test can rely on.
 * aedes refuses MQTT 5 connections; use Mosquitto for those.
 */
export async function startEmbeddedBroker(opts: { port?: number; host?: string } = {}): Promise<EmbeddedBroker> {
  const host = opts.host ?? '127.0.0.1';
  // Loaded on use: a device that never starts a broker does not pay for aedes at import.
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker({ heartbeatInterval: 3_600_000, drainTimeout: 10_000 });
  const server: Server = createServer(broker.handle);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://${host}:${port}`,
    host,
    port,
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await serverClosed;
      })();
      return closing;
    },
  };
}
