/**
 * Waiting between retries: a sleep that an AbortSignal cuts short, and exponential backoff
 * with jitter. Pure helpers with no imports, shared by the runtime and, through the SDK
 * (`tributary/sdk`), by sink plugins.
 */

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
