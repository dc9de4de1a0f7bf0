import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from '../runtime/metrics.js';
import type { Pipeline } from '../runtime/pipeline.js';

export interface HttpRoutes {
  /** Extra POST routes (the snapshot API registers here). */
  post?: Record<string, (body: unknown) => Promise<{ status: number; body: unknown }>>;
}

/**
 * `/healthz` (the process is alive), `/readyz` (every pipeline is running and no sink has
 * failed), `/metrics` (Prometheus text) and `/status` (JSON positions and lag).
 */
export async function startHttp(opts: { host: string; port: number; pipelines: Pipeline[]; metrics: Metrics; logger: Logger; routes?: HttpRoutes }): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(typeof body === 'string' ? body : JSON.stringify(body, null, 2));
    };
    if (req.method === 'POST' && opts.routes?.post?.[url.pathname]) {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        let body: unknown;
        try {
          body = data ? JSON.parse(data) : {};
        } catch {
          return send(400, { error: 'body must be JSON' });
        }
        opts.routes!.post![url.pathname]!(body).then(
          (r) => send(r.status, r.body),
          (err: Error) => send(500, { error: err.message }),
        );
      });
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        return send(200, { ok: true });
      case '/readyz': {
        // A failed initial snapshot keeps the pipeline unready: the sinks lack the tables' rows.
        const ready = opts.pipelines.every((p) => p.state === 'running' && p.runners.every((r) => !r.failed) && !p.snapshots?.readinessProblem);
        return send(ready ? 200 : 503, { ready, pipelines: opts.pipelines.map((p) => ({ name: p.name, state: p.state, ...(p.snapshots?.readinessProblem ? { problem: p.snapshots.readinessProblem } : {}) })) });
      }
      case '/metrics':
        return send(200, opts.metrics.render(), 'text/plain; version=0.0.4');
      case '/status':
        return send(200, { pipelines: opts.pipelines.map((p) => p.status()) });
      default:
        return send(404, { error: 'not found', routes: ['/healthz', '/readyz', '/metrics', '/status'] });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  opts.logger.info({ port: (server.address() as { port: number }).port }, 'http server listening');
  return server;
}
