import { TributaryError } from '../core/errors.js';

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', done);
      clearTimeout(t);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff with full jitter: a random delay in [base·2^(n-1)/2, base·2^(n-1)], capped. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(20, attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED',
  // Postgres: admin shutdown, crash shutdown, cannot connect now, too many connections
  '57P01', '57P02', '57P03', '53300', '08006', '08001', '08004',
  // Redis / MySQL transport
  'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR',
]);

/**
 * An error that says the target or source is unreachable rather than that the data is bad:
 * worth retrying on a new connection for as long as it takes.
 */
export function isRetryableError(err: unknown): boolean {
  if (err instanceof TributaryError) return err.retryable;
  const e = err as { code?: string; retryable?: boolean; message?: string; cause?: unknown } | null;
  if (!e) return false;
  if (e.retryable === true) return true;
  if (e.code && TRANSIENT_CODES.has(e.code)) return true;
  if (typeof e.message === 'string' && /Connection (is )?closed|Connection terminated|socket hang up|read ECONNRESET|connect ECONNREFUSED/i.test(e.message)) return true;
  return e.cause ? isRetryableError(e.cause) : false;
}

/** How long to wait before reconnecting, by class of error (auth: long; network: medium). */
export function reconnectDelay(err: unknown, attempt: number): number {
  const code = (err as { code?: string })?.code;
  if (code === '28P01' || code === '28000' || code === 'ER_ACCESS_DENIED_ERROR') return 60_000;
  return backoffDelay(attempt, 500, 30_000);
}
