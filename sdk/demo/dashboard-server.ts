// The collector's HTTP API with the dashboard in front of it.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EdgewardenError } from '../errors';
import type { Collector } from '../fleet/collector';
import { collectorResultVerifier, createDashboardHandler } from '../fleet/dashboard';
import { type FleetHttpServer, startFleetHttp } from '../fleet/http';

/**
 * Serves the collector's JSON API, SSE and metrics together with the dashboard on one address.
 * Where the API routes its `extra` hook before everything else (the dashboard's POST /api/verify
 * needs that), the dashboard is mounted there directly; otherwise a small in-process front server
 * answers the dashboard's routes and passes everything else, SSE included, to the API.
 */
export async function startDashboardServer(
  collector: Collector,
  opts: { host: string; port: number },
): Promise<FleetHttpServer> {
  const dashboard = createDashboardHandler({ verify: collectorResultVerifier(collector) });
  const direct = await startFleetHttp(collector, { ...opts, extra: (req, res) => dashboard(req, res) });
  if (await servesVerify(direct.url)) return direct;
  await direct.close();

  const api = await startFleetHttp(collector, { host: '127.0.0.1', port: 0 });
  const front: Server = createServer((req, res) => {
    if (dashboard(req, res)) return;
    const up = request(
      { host: '127.0.0.1', port: api.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', (cause) =>
      reject(new EdgewardenError('EW_FLEET_OPTIONS', `cannot listen on ${opts.host}:${opts.port}`, { cause })),
    );
    front.listen(opts.port, opts.host, () => resolve());
  });
  const port = (front.address() as AddressInfo).port;
  const shown = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${shown}:${port}`,
    host: opts.host,
    port,
    async close() {
      await api.close();
      await new Promise<void>((resolve) => {
        front.close(() => resolve());
        front.closeAllConnections();
      });
    },
  };
}

/** Whether POST /api/verify reaches the dashboard (it answers JSON with `ok`) rather than a 405. */
function servesVerify(base: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${base}/api/verify`,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (r) => {
        r.resume();
        resolve(r.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.end('{}');
  });
}
