import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { isConsoleShell } from './console-assets.js';

/** Who may call the admin API (`http.auth_token`, `http.open_probes`). */
export interface HttpAuth {
  /** The bearer token, or null when none is configured. */
  token: string | null;
  /** Serve `/healthz`, `/readyz` and `/metrics` without the token (probes, Prometheus). */
  openProbes: boolean;
}

/** Read-only endpoints that probes and scrapers call; open when `openProbes` is set. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/** Methods that cannot change anything. Every other method needs the token, whatever the route. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** A refusal: the HTTP status, the coded error, and headers such as `WWW-Authenticate`. */
export interface Refusal {
  status: 401 | 403;
  error: TributaryError;
  headers: Record<string, string>;
}

/**
 * Decide whether `req` may proceed, before any route runs and before its body is read.
 *
 * The rule is by method first, so a route added later is protected without anyone
 * remembering to: a request that can change something (anything but GET/HEAD) needs the
 * token, and is refused outright (403) when no token is configured. A read needs the token
 * when one is configured, except the probes when `openProbes` is set and the console's static
 * shell (`/`, `/assets/*`), which holds no data. Returns null when the
 * request may proceed.
 */
export function authorize(req: IncomingMessage, path: string, auth: HttpAuth): Refusal | null {
  const safe = SAFE_METHODS.has(req.method ?? 'GET');
  if (safe && auth.openProbes && PROBES.has(path)) return null;
  // The console's HTML/JS/CSS hold no data; the calls they make for data carry the token.
  if (safe && isConsoleShell(path)) return null;
  if (!auth.token) {
    if (safe) return null;
    return {
      status: 403,
      headers: {},
      error: new TributaryError(ErrorCodes.HTTP_TOKEN_REQUIRED, `${req.method} ${path} changes the running pipeline, and no admin token is configured, so it is refused`, {
        fix: 'set http.auth_token (e.g. "${TRIBUTARY_TOKEN}") or http.auth_token_file in the config, restart, and send it as `Authorization: Bearer <token>` (the tributary CLI does)',
      }),
    };
  }
  if (bearerMatches(req.headers.authorization, auth.token)) return null;
  return {
    status: 401,
    headers: { 'www-authenticate': 'Bearer realm="tributary"' },
    error: new TributaryError(ErrorCodes.HTTP_UNAUTHORIZED, req.headers.authorization ? 'the bearer token is wrong' : `${path} needs the admin token`, {
      fix: 'send `Authorization: Bearer <token>` with the value of http.auth_token (the tributary CLI reads it from the same config)',
    }),
  };
}

/**
 * Whether an `Authorization` header carries `Bearer <token>`. Both sides are hashed first so
 * the comparison is constant-time and independent of the lengths (timingSafeEqual needs equal
 * lengths, and comparing lengths first would leak the token's length).
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  const given = createHash('sha256').update(m?.[1] ?? '').digest();
  const want = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, want) && !!m;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
