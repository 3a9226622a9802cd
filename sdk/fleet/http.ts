import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EdgewardenError } from '../errors';
import type { Collector, CollectorEvents } from './collector';
import { collectorResultVerifier, createDashboardHandler } from './dashboard';

/** A running HTTP API. */
export interface FleetHttpServer {
  /** `http://HOST:PORT` */
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Options of {@link startFleetHttp}. */
export interface FleetHttpOptions {
  /** Default 127.0.0.1: the API has no authentication, so it is local unless you say otherwise. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Seconds between SSE keep-alive comments (default 15). */
  keepAliveS?: number;
  /** Extra routes (the dashboard mounts here): return true when handled. */
  extra?: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;
}

/** Parses `HOST:PORT` (or `:PORT`, or `PORT`); throws `EW_FLEET_OPTIONS`. */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[?([^\]]*?)\]?:)?(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535)
    throw new EdgewardenError('EW_FLEET_OPTIONS', `--http wants HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1] || '127.0.0.1', port };
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body) : String(body);
  res.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

const notFound = (res: ServerResponse, what = 'not found') =>
  send(res, 404, { error: { code: 'EW_FLEET_NOT_FOUND', message: what } });

/**
 * Serves the collector's JSON API, Prometheus metrics and a server-sent event stream:
 * - `GET /api/devices`, `GET /api/devices/:id`, `GET /api/devices/:id/heartbeats?limit=N`
 * - `POST /api/devices/:id/approve` (trust-on-first-use approval)
 * - `GET /api/alerts?limit=N`
 * - `GET /api/events` (SSE: `heartbeat`, `device`, `alert`)
 * - `GET /metrics` (Prometheus text format)
 */
export async function startFleetHttp(collector: Collector, opts: FleetHttpOptions = {}): Promise<FleetHttpServer> {
  const keepAliveMs = (opts.keepAliveS ?? 15) * 1000;
  const streams = new Set<ServerResponse>();
  // Every collector serves the dashboard (static files, no CDN) and its result-file check.
  const dashboard = createDashboardHandler({ verify: collectorResultVerifier(collector) });
  const server: Server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        const code = e instanceof EdgewardenError ? e.code : 'EW_FLEET_INTERNAL';
        send(res, 500, { error: { code, message: (e as Error)?.message ?? String(e) } });
      } else res.destroy();
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (dashboard(req, res)) return;
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const limit = clampLimit(url.searchParams.get('limit'));
    if (
      req.method === 'POST' &&
      parts[0] === 'api' &&
      parts[1] === 'devices' &&
      parts[3] === 'approve' &&
      parts.length === 4
    ) {
      const ok = await collector.approve(parts[2]!);
      return ok ? send(res, 200, await collector.device(parts[2]!)) : notFound(res, `no device ${parts[2]}`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, { error: { code: 'EW_FLEET_OPTIONS', message: `${req.method} not allowed` } });
    }
    if (path === '/metrics') return send(res, 200, collector.metrics.text(), 'text/plain; version=0.0.4');
    if (parts[0] !== 'api') {
      if (opts.extra && (await opts.extra(req, res, url))) return;
      return notFound(res);
    }
    if (parts[1] === 'devices' && parts.length === 2) return send(res, 200, await collector.devices());
    if (parts[1] === 'devices' && parts.length === 3) {
      const d = await collector.device(parts[2]!);
      return d ? send(res, 200, d) : notFound(res, `no device ${parts[2]}`);
    }
    if (parts[1] === 'devices' && parts.length === 4 && parts[3] === 'heartbeats') {
      if (!(await collector.device(parts[2]!))) return notFound(res, `no device ${parts[2]}`);
      return send(res, 200, await collector.heartbeats(parts[2]!, limit));
    }
    if (parts[1] === 'alerts' && parts.length === 2) return send(res, 200, await collector.alerts(limit));
    if (parts[1] === 'events' && parts.length === 2) return events(req, res);
    return notFound(res);
  }

  function events(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': edgewarden fleet events\n\n');
    const write = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const handlers = {
      heartbeat: (d: CollectorEvents['heartbeat'][0]) => write('heartbeat', d),
      device: (d: CollectorEvents['device'][0]) => write('device', d),
      alert: (d: CollectorEvents['alert'][0]) => write('alert', d),
    };
    collector.on('heartbeat', handlers.heartbeat);
    collector.on('device', handlers.device);
    collector.on('alert', handlers.alert);
    const ka = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
    ka.unref();
    streams.add(res);
    const stop = () => {
      clearInterval(ka);
      collector.off('heartbeat', handlers.heartbeat);
      collector.off('device', handlers.device);
      collector.off('alert', handlers.alert);
      streams.delete(res);
    };
    req.on('close', stop);
    res.on('close', stop);
  }

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) =>
      reject(new EdgewardenError('EW_FLEET_OPTIONS', `cannot listen on ${host}:${opts.port ?? 0}`, { cause })),
    );
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function clampLimit(v: string | null): number {
  const n = v === null ? 100 : Number.parseInt(v, 10);
  return Number.isFinite(n) ? Math.max(1, Math.min(10_000, n)) : 100;
}
