import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { authorize, isLoopback, type HttpAuth } from './auth.js';
import { ConsoleAssets, isConsoleShell } from './console-assets.js';
import type { Metrics } from '../runtime/metrics.js';
import type { PipelineView } from '../runtime/supervisor.js';

export interface HttpRoutes {
  /** Extra POST routes (the snapshot and rewind APIs register here). */
  post?: Record<string, (body: unknown) => Promise<{ status: number; body: unknown }>>;
  /** Extra GET routes, which write their own (possibly streamed) answer (the log API). */
  get?: Record<string, (url: URL, res: ServerResponse) => Promise<void>>;
}

/** The JSON body of a coded error: `{ error, code, fix }`. */
function errorBody(err: TributaryError): { error: string; code: string; fix?: string } {
  return { error: `${err.code} ${err.message}`, code: err.code, ...(err.fix ? { fix: err.fix } : {}) };
}

/**
 * The web console at `/` (console-assets.ts), `/healthz` (the process is alive), `/readyz` (every pipeline is running with its database
 * connected, and no sink has failed), `/metrics` (Prometheus text) and `/status` (JSON
 * positions and lag, and why a pipeline is not running). Started before the pipelines, so it
 * answers while they wait for their database.
 *
 * Every request passes {@link authorize} first (auth.ts): anything but GET/HEAD needs the
 * bearer token, and is refused when none is configured.
 */
export async function startHttp(opts: { host: string; port: number; auth: HttpAuth; pipelines: PipelineView[]; metrics: Metrics; logger: Logger; routes?: HttpRoutes; consoleDir?: string }): Promise<Server> {
  const getRoutes = Object.keys(opts.routes?.get ?? {});
  const consoleAssets = new ConsoleAssets(opts.consoleDir);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown, type = 'application/json', headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': type, ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body, null, 2));
    };
    const refused = authorize(req, url.pathname, opts.auth);
    if (refused) {
      req.resume(); // the body is never read
      return send(refused.status, errorBody(refused.error), 'application/json', refused.headers);
    }
    if (req.method === 'POST' && opts.routes?.post?.[url.pathname]) {
      let data = '';
      req.on('data', (c) => {
        data += c;
        // An admin request is a few hundred bytes; do not buffer without bound.
        if (data.length > 1 << 20) {
          send(413, errorBody(new TributaryError(ErrorCodes.HTTP_BAD_REQUEST, 'the request body is over 1 MiB', { fix: 'send a small JSON object' })));
          req.destroy();
        }
      });
      req.on('end', () => {
        if (res.headersSent) return;
        let body: unknown;
        try {
          body = data ? JSON.parse(data) : {};
        } catch {
          return send(400, errorBody(new TributaryError(ErrorCodes.HTTP_BAD_REQUEST, 'the request body is not JSON', { fix: 'send a JSON object, e.g. {"table": "public.t"}' })));
        }
        opts.routes!.post![url.pathname]!(body).then(
          (r) => send(r.status, r.body),
          (err: Error) => send(500, { error: err.message }),
        );
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(405, errorBody(new TributaryError(ErrorCodes.HTTP_BAD_REQUEST, `${req.method} ${url.pathname} is not an endpoint`, { fix: `POST ${Object.keys(opts.routes?.post ?? {}).join(', ') || '/snapshot'}; GET /healthz, /readyz, /metrics, /status${getRoutes.length ? ', ' + getRoutes.join(', ') : ''}` })));
    }
    // The web console at / (console-assets.ts): public static files; its data calls need the token.
    if (isConsoleShell(url.pathname)) return consoleAssets.serve(url.pathname, res, req.method === 'HEAD');
    const route = opts.routes?.get?.[url.pathname];
    if (route) {
      route(url, res).catch((err: Error) => {
        if (!res.headersSent) send(500, err instanceof TributaryError ? errorBody(err) : { error: err.message });
        else res.destroy(err);
      });
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        return send(200, { ok: true });
      case '/readyz': {
        // A failed initial snapshot keeps a pipeline unready too: the sinks lack the tables' rows.
        const ready = opts.pipelines.every((p) => p.ready());
        return send(ready ? 200 : 503, { ready, pipelines: opts.pipelines.map((p) => ({ name: p.name, state: p.state, ...(p.problem() ? { problem: p.problem() } : {}) })) });
      }
      case '/metrics':
        opts.metrics.render().then(
          (text) => send(200, text, opts.metrics.contentType),
          (err: Error) => send(500, { error: err.message }),
        );
        return;
      case '/status':
        return send(200, { pipelines: opts.pipelines.map((p) => p.status()) });
      default:
        return send(404, { error: 'not found', routes: ['/', '/healthz', '/readyz', '/metrics', '/status', ...getRoutes] });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  opts.logger.info({ port: (server.address() as { port: number }).port, host: opts.host, auth: opts.auth.token ? 'token' : 'none' }, 'http server listening');
  if (!opts.auth.token && !isLoopback(opts.host)) {
    opts.logger.warn(
      { host: opts.host, code: ErrorCodes.HTTP_TOKEN_REQUIRED },
      `the HTTP API listens on ${opts.host} with no admin token: /status is readable from the network, and snapshot requests are refused (fix: set http.auth_token or http.auth_token_file)`,
    );
  }
  return server;
}
