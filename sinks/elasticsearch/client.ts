/**
 * A small Elasticsearch/OpenSearch REST client over global fetch: auth headers, timeouts,
 * and error classification (what the runtime should retry, what is the data's fault).
 */
import { ErrorCodes, TributaryError } from '../../src/sdk/index.js';

export interface EsClientOptions {
  url: string;
  username?: string;
  password?: string;
  apiKey?: string;
  timeoutMs: number;
}

/** A failed request; `retryable` when the cluster (not the data) is the problem. */
export class EsRequestError extends TributaryError {
  constructor(
    message: string,
    readonly status: number | null,
    retryable: boolean,
    cause?: unknown,
  ) {
    super(retryable ? ErrorCodes.SINK_TARGET : ErrorCodes.SINK_REJECTED, message, {
      retryable,
      cause,
      fix:
        status === 401 || status === 403
          ? 'check username/password or api_key and the role\'s index privileges (write, create_index)'
          : retryable
            ? 'check that the cluster is up and reachable at the configured url'
            : 'see the cluster\'s error',
    });
    this.name = 'EsRequestError';
  }
}

export class EsClient {
  private readonly base: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly o: EsClientOptions) {
    const u = new URL(o.url);
    const user = o.username ?? (u.username ? decodeURIComponent(u.username) : undefined);
    const pass = o.password ?? (u.password ? decodeURIComponent(u.password) : '');
    u.username = '';
    u.password = '';
    this.base = u.toString().replace(/\/$/, '');
    this.headers = { 'content-type': 'application/json' };
    // Secrets only ever live in this header map, which is never logged.
    if (o.apiKey) this.headers.authorization = `ApiKey ${o.apiKey}`;
    else if (user) this.headers.authorization = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
  }

  /** The URL without credentials, safe to log. */
  get safeUrl(): string {
    return this.base;
  }

  /**
   * One request. Resolves with the parsed body for 2xx (and for `okStatuses`); throws an
   * `EsRequestError` otherwise: 429, 5xx, auth failures and network errors are retryable
   * (waiting can fix them); other 4xx are not.
   */
  async request<T>(method: string, path: string, body: string | undefined, signal: AbortSignal, contentType = 'application/json', okStatuses: number[] = []): Promise<T> {
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    let res: Response;
    try {
      res = await fetch(this.base + path, { method, body, headers: { ...this.headers, 'content-type': contentType }, signal: AbortSignal.any([signal, timeout]) });
    } catch (err) {
      const cause = (err as { cause?: Error }).cause;
      throw new EsRequestError(`Elasticsearch at ${this.base} is unreachable: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}`, null, true, err);
    }
    const text = await res.text().catch(() => '');
    if (res.ok || okStatuses.includes(res.status)) return (text ? JSON.parse(text) : {}) as T;
    const reason = (() => {
      try {
        const e = JSON.parse(text) as { error?: { type?: string; reason?: string } | string };
        return typeof e.error === 'string' ? e.error : `${e.error?.type}: ${e.error?.reason}`;
      } catch {
        return text.slice(0, 300);
      }
    })();
    const retryable = res.status === 429 || res.status >= 500 || res.status === 401 || res.status === 403 || res.status === 408;
    throw new EsRequestError(`Elasticsearch ${method} ${path.split('?')[0]} answered ${res.status}: ${reason}`, res.status, retryable);
  }
}
