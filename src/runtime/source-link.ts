import type { Logger } from 'pino';
import { ConfigError, ErrorCodes, TributaryError, errorSummary } from '../core/errors.js';
import type { SourceLink } from '../core/source.js';
import { classifyError, type ErrorClass } from './error-class.js';
import { Metrics } from './metrics.js';
import { backoffDelay, sleep } from './retry.js';

/** How reconnects are paced, by class of error (exponential with jitter, capped). */
export const RECONNECT_PACE = {
  /** Unreachable, restarting, connection lost: soon, and at least every 5 s once it is back. */
  transient: { baseMs: 500, maxMs: 5_000 },
  /** A refused login that worked before: every few minutes (a password rotation in progress). */
  auth: { baseMs: 60_000, maxMs: 300_000 },
  /** While the source stays down, a reminder is logged after a minute, then every 5 minutes. */
  firstReminderMs: 60_000,
  reminderMs: 300_000,
} as const;

export interface SourceLinkOptions {
  pipeline: string;
  logger: Logger;
  metrics: Metrics;
  /** `source.reconnect.max_elapsed` in ms: give up after the source has been down this long. Unset: never. */
  maxElapsedMs?: number;
}

/** The link's state for `/status`. */
export interface SourceLinkStatus {
  up: boolean;
  /** When the current outage began (ISO), or null while up. */
  downSince: string | null;
  downSeconds: number;
  /** Failed attempts in the current outage. */
  attempts: number;
  /** Reconnect attempts scheduled since the process started. */
  reconnects: number;
  lastError: string | null;
  nextRetryAt: string | null;
}

/**
 * One pipeline's link to its database, kept across the pipeline's attempts (a start that
 * failed, a restart): whether the source is up, when it was lost, and how reconnects are
 * paced. The only place that turns a connection error into "wait and retry" or "stop":
 *
 * - transient errors are retried with backoff and jitter for ever, or until
 *   `source.reconnect.max_elapsed` (then TRB2201);
 * - a refused login is retried slowly once a login has worked for this pipeline (in this
 *   process, or it holds stored checkpoints); one that never worked is TRB2200, a config error;
 * - anything else is not a connection problem: it is thrown back to the caller.
 *
 * An outage is logged once when it begins and once when it ends (with how long it lasted),
 * plus a reminder after a minute and then every 5 minutes; `tributary_source_up`,
 * `tributary_source_down_seconds` and `tributary_source_reconnects_total` show it.
 */
export class SourceLinkMonitor {
  private connected = false;
  /** A login has worked for this pipeline: in this process, or it has stored state. */
  private worked = false;
  private lostAt: number | null = null;
  private failures = 0;
  private reconnects = 0;
  private lastError: string | null = null;
  private lastClass: ErrorClass | null = null;
  private nextRetryAt: number | null = null;
  private remindAt = 0;
  private gauge?: NodeJS.Timeout;
  private readonly labels: Record<string, string>;

  constructor(private readonly o: SourceLinkOptions) {
    this.labels = { pipeline: o.pipeline };
    o.metrics.set('tributary_source_up', 0, this.labels);
  }

  get isUp(): boolean {
    return this.connected;
  }

  /** The pipeline holds checkpoints or snapshot state: its login has worked before. */
  noteStoredState(): void {
    this.worked = true;
  }

  /** A connection works: ends the current outage, if any, with one log line. */
  up(): void {
    if (this.connected) return;
    this.connected = true;
    this.worked = true;
    if (this.lostAt !== null) {
      const secs = (Date.now() - this.lostAt) / 1000;
      this.o.logger.info({ downSeconds: Number(secs.toFixed(1)), attempts: this.failures }, `source back after ${secs.toFixed(1)} s (${this.failures} failed attempt${this.failures === 1 ? '' : 's'})`);
    }
    this.lostAt = null;
    this.failures = 0;
    this.nextRetryAt = null;
    this.lastClass = null;
    clearInterval(this.gauge);
    this.gauge = undefined;
    this.o.metrics.set('tributary_source_up', 1, this.labels);
    this.o.metrics.set('tributary_source_down_seconds', 0, this.labels);
  }

  /**
   * Records a failed connection (or start) and returns how long to wait before the next
   * attempt. Throws `err` when it is not a connection problem, TRB2200 for a login that never
   * worked, and TRB2201 once the source has been down longer than `max_elapsed`.
   */
  retryDelay(err: unknown, cls: ErrorClass = classifyError(err)): number {
    if (cls !== 'transient' && cls !== 'auth') throw err;
    const msg = errorSummary(err);
    if (cls === 'auth' && !this.worked) {
      throw new ConfigError(ErrorCodes.SOURCE_AUTH, `the database refused the login of source.url, and it has never been accepted for this pipeline: ${msg}`, {
        fix: 'check the user and password in source.url (a password in a URL must be percent-encoded). Once a login has worked, a refused one is retried every few minutes instead, so a password rotation does not stop the pipeline',
      });
    }
    const now = Date.now();
    this.failures++;
    this.lastError = msg;
    if (this.lostAt === null) {
      this.lostAt = now;
      this.connected = false;
      this.remindAt = now + RECONNECT_PACE.firstReminderMs;
      this.o.metrics.set('tributary_source_up', 0, this.labels);
      this.gauge = setInterval(() => this.o.metrics.set('tributary_source_down_seconds', (Date.now() - (this.lostAt ?? Date.now())) / 1000, this.labels), 1000);
      this.gauge.unref();
      this.o.logger.warn(
        { class: cls },
        this.worked
          ? `source lost: ${msg}; reconnecting until it is back${this.limitText()}`
          : `cannot reach the database: ${msg}; waiting for it, retrying until it answers${this.limitText()}`,
      );
    } else if (cls !== this.lastClass && cls === 'auth') {
      this.o.logger.warn({ class: cls }, `the database refuses the login that worked before: ${msg}; retrying every few minutes (a password rotation is not a reason to stop)`);
    } else if (now >= this.remindAt) {
      this.remindAt = now + RECONNECT_PACE.reminderMs;
      this.o.logger.warn({ class: cls, attempts: this.failures }, `source still unreachable after ${Math.round((now - this.lostAt) / 1000)} s (${this.failures} attempts): ${msg}`);
    }
    this.lastClass = cls;
    const elapsed = now - this.lostAt;
    const limit = this.o.maxElapsedMs;
    if (limit !== undefined && elapsed >= limit) {
      throw new TributaryError(ErrorCodes.SOURCE_GAVE_UP, `the source has been unreachable for ${Math.round(elapsed / 1000)} s, longer than source.reconnect.max_elapsed: ${msg}`, {
        fix: 'bring the database back and start the pipeline again; or raise or remove source.reconnect.max_elapsed to wait longer',
      });
    }
    const pace = RECONNECT_PACE[cls];
    let delay = backoffDelay(this.failures, pace.baseMs, pace.maxMs);
    if (limit !== undefined) delay = Math.max(0, Math.min(delay, limit - elapsed));
    this.nextRetryAt = now + delay;
    this.reconnects++;
    this.o.metrics.inc('tributary_source_reconnects_total', 1, this.labels);
    return delay;
  }

  private limitText(): string {
    return this.o.maxElapsedMs === undefined ? '' : ` (at most ${Math.round(this.o.maxElapsedMs / 1000)} s: source.reconnect.max_elapsed)`;
  }

  /** The {@link SourceLink} a source of one pipeline attempt uses; `lost` waits on `signal`. */
  bind(signal: AbortSignal): SourceLink {
    return {
      up: () => this.up(),
      lost: async (err) => {
        const delay = this.retryDelay(err);
        await sleep(delay, signal);
      },
    };
  }

  status(): SourceLinkStatus {
    const now = Date.now();
    return {
      up: this.connected,
      downSince: this.lostAt === null ? null : new Date(this.lostAt).toISOString(),
      downSeconds: this.lostAt === null ? 0 : Number(((now - this.lostAt) / 1000).toFixed(1)),
      attempts: this.failures,
      reconnects: this.reconnects,
      lastError: this.lastError,
      nextRetryAt: this.nextRetryAt !== null && this.nextRetryAt > now && !this.connected ? new Date(this.nextRetryAt).toISOString() : null,
    };
  }

  /** Stops the down-seconds gauge timer. Idempotent. */
  close(): void {
    clearInterval(this.gauge);
    this.gauge = undefined;
  }
}

/** The link of a source used outside a pipeline (validate, --worker): they never stream. */
export function standaloneLink(pipeline: string, logger: Logger, signal: AbortSignal): SourceLink {
  return new SourceLinkMonitor({ pipeline, logger, metrics: new Metrics() }).bind(signal);
}
