import type { Logger } from 'pino';
import { TributaryError, errorMessage } from '../core/errors.js';
import { classifyError } from '../runtime/error-class.js';
import { SnapshotFailures } from './failures.js';
import { isLive } from './state.js';
import type { SnapshotState } from './types.js';

/**
 * What a failed or succeeding step (reading a table's chunks, or finding their bounds) does to
 * the snapshot: how long to wait before the next try, what is logged, and when the snapshot is
 * marked `failed` or running again (see docs/snapshots.md, "When a snapshot cannot go on").
 * The backoff per step is {@link SnapshotFailures}'; this adds the logs and the status.
 */
export class SnapshotHealth {
  private readonly failures = new SnapshotFailures();
  /** When a retry after a lost connection may be logged again (see `transient`). */
  private quietUntil = 0;

  constructor(
    private readonly o: {
      logger: Logger;
      /** The snapshot whose status is kept. */
      state: () => SnapshotState | null;
      /** Store the state (its status changed). */
      save: () => Promise<void>;
    },
  ) {}

  /**
   * `step` failed with `err` (`what` says what failed, for the log): returns how long to wait
   * before trying again. An error retrying cannot fix by itself (not retryable) marks the
   * snapshot `failed`, with the error stored and logged once, but it is not given up: it is
   * tried again with growing delays (up to a minute) and goes on once the cause is fixed.
   * Other errors are retried in a second.
   */
  failed(err: unknown, step: string, what: string, worker?: number): number {
    const s = this.o.state();
    if (!(err instanceof TributaryError) || err.retryable || !isLive(s)) {
      this.transient(err, { worker, err, step }, `${what}, retrying: ${errorMessage(err)}`);
      return 1000;
    }
    const { first, delayMs } = this.failures.fail(step, err);
    if (first) {
      this.o.logger.error({ err, code: err.code, step }, `snapshot failed, retrying with backoff until it succeeds: ${err.format()}`);
    } else {
      this.o.logger.warn({ code: err.code, step, attempt: this.failures.failedAttempts, delayMs }, `snapshot still failing: ${err.code} ${err.message}`);
    }
    if (s.status !== 'failed' || s.error?.code !== err.code || s.error.message !== err.message) {
      s.status = 'failed';
      s.error = { code: err.code, message: err.message, fix: err.fix, since: s.error?.since ?? Date.now() };
      void this.o.save().catch(() => undefined);
    }
    return delayMs;
  }

  /** `step` succeeded: a failed snapshot whose last failing step this was runs again. */
  succeeded(step: string): void {
    const s = this.o.state();
    if (!this.failures.succeed(step) || s?.status !== 'failed') return;
    this.o.logger.info({ snapshot: s.id, error: s.error?.code }, 'snapshot recovered: reading again');
    s.status = 'running';
    delete s.error;
    void this.o.save().catch(() => undefined);
  }

  /** Forget the failures (a new snapshot, a pause or cancel, or the snapshot is done). */
  clear(): void {
    this.failures.clear();
  }

  /**
   * A retry that needs no status: a lost database (the source link logs the outage) is logged
   * once a minute, not once per retry and worker; anything else every time.
   */
  private transient(err: unknown, fields: Record<string, unknown>, msg: string): void {
    if (classifyError(err) === 'transient') {
      if (Date.now() < this.quietUntil) return;
      this.quietUntil = Date.now() + 60_000;
    }
    // A server shutting down ends every session; the source reports that once (at info), so
    // a snapshot worker's lost connection is not a warning either (a Ctrl-C of the demo stops
    // its Postgres too).
    const code = (err as { code?: string } | null)?.code;
    const shutdown = code === '57P01' || code === '57P02' || code === '57P03';
    this.o.logger[shutdown ? 'info' : 'warn'](fields, msg);
  }
}
