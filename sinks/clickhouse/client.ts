/**
 * A minimal ClickHouse HTTP client: one POST per statement, errors classified so the runtime
 * retries what a retry can fix and dead-letters only what the data itself breaks.
 */
import { ErrorCodes, PoisonEventError, TributaryError } from '../../src/sdk/index.js';

/**
 * ClickHouse exception codes that mean "this data cannot be inserted" (parse and type
 * errors). Anything else (server busy, table being altered, auth, network) is the target's
 * problem, retried until it goes away: dead-lettering a whole batch for a wrong password
 * would be far worse than waiting.
 */
const DATA_ERROR_CODES = new Set([6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 349]);

export interface ClickHouseClientOptions {
  url: string;
  username?: string;
  password?: string;
  timeoutMs: number;
}

/** A failed statement, with ClickHouse's numeric exception code when it sent one. */
export class ClickHouseError extends TributaryError {
  constructor(
    message: string,
    readonly clickhouseCode: number | null,
    readonly status: number | null,
    retryable: boolean,
    cause?: unknown,
  ) {
    super(retryable ? ErrorCodes.SINK_TARGET : ErrorCodes.SINK_REJECTED, message, {
      retryable,
      cause,
      fix: retryable ? 'check that ClickHouse is up and reachable at the configured url, and that the user may write' : 'see the ClickHouse message; the event is dead-lettered',
    });
    this.name = 'ClickHouseError';
  }

  get isDataError(): boolean {
    return this.clickhouseCode !== null && DATA_ERROR_CODES.has(this.clickhouseCode);
  }
}

export class ClickHouseClient {
  private readonly endpoint: string;
  private readonly auth: string | undefined;

  constructor(private readonly o: ClickHouseClientOptions) {
    const u = new URL(o.url);
    // Credentials go in a header, never in the URL we might print.
    const user = o.username ?? (u.username ? decodeURIComponent(u.username) : undefined);
    const pass = o.password ?? (u.password ? decodeURIComponent(u.password) : '');
    u.username = '';
    u.password = '';
    this.endpoint = u.toString().replace(/\/$/, '');
    this.auth = user ? 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64') : undefined;
  }

  /** The URL without credentials, safe to log. */
  get safeUrl(): string {
    return this.endpoint;
  }

  /**
   * Run one statement (the body may carry inline data after `FORMAT ...`). Resolves with the
   * response text once ClickHouse answered 200, which for an INSERT means the rows are in a
   * new data part on disk.
   */
  async exec(sql: string, signal?: AbortSignal, params: Record<string, string> = {}): Promise<string> {
    const qs = new URLSearchParams(params).toString();
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    let res: Response;
    try {
      res = await fetch(qs ? `${this.endpoint}/?${qs}` : `${this.endpoint}/`, {
        method: 'POST',
        body: sql,
        headers: { 'content-type': 'text/plain; charset=utf-8', ...(this.auth ? { authorization: this.auth } : {}) },
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      throw new ClickHouseError(`ClickHouse at ${this.endpoint} is unreachable: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`, null, null, true, err);
    }
    const text = await res.text().catch((err: Error) => {
      throw new ClickHouseError(`ClickHouse at ${this.endpoint}: reading the response failed: ${err.message}`, null, res.status, true, err);
    });
    if (res.ok) return text;
    const m = /Code: (\d+)/.exec(text);
    const code = m ? Number(m[1]) : null;
    const msg = text.replace(/, e\.what\(\) = DB::Exception/, '').trim().slice(0, 500);
    const err = new ClickHouseError(`ClickHouse rejected "${sql.slice(0, 80).split('\n')[0]}": ${msg}`, code, res.status, !(code !== null && DATA_ERROR_CODES.has(code)));
    throw err;
  }

  /** Run a SELECT and parse JSONEachRow output. 64-bit integers come back as strings. */
  async rows<T>(sql: string, signal?: AbortSignal): Promise<T[]> {
    const text = await this.exec(`${sql} FORMAT JSONEachRow`, signal);
    const out: T[] = [];
    for (const line of text.split('\n')) if (line) out.push(JSON.parse(line) as T);
    return out;
  }
}

/** Turn a data error into the error the runtime dead-letters (it bisects down to the event). */
export function asPoison(err: ClickHouseError, what: string): PoisonEventError {
  return new PoisonEventError(`${what}: ${err.message}`, { cause: err });
}
