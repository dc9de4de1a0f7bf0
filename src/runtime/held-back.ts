import type { Logger } from 'pino';
import { ErrorCodes, errorMessage } from '../core/errors.js';
import type { HeldBack, Source } from '../core/source.js';
import type { Metrics } from './metrics.js';
import { classifyError } from './error-class.js';

/** The `held_back` block of a pipeline in `/status`. */
export type HeldBackStatus = HeldBack & {
  /** When the figures were measured (ISO-8601). */
  checked_at: string;
  /** Why the last measure failed (the figures above are then from the last one that worked). */
  error?: string;
};

/**
 * Polls what the source makes its database keep (`Source.heldBack`: the slot's retained WAL,
 * the binlog files still needed) every `intervalMs` (15 s), publishes it as
 * `tributary_source_retained_wal_bytes` / `tributary_source_retained_binlog_files`, and keeps
 * the last answer for `/status`. Off the hot path: one catalog query on a control connection,
 * never more than one at a time, on an unref'd timer.
 *
 * A failing query is logged once (TRB6011) until one works again, and only when it is not a
 * lost connection: an unreachable database is already reported, once, by the source link
 * (source-link.ts), and a missing privilege would otherwise log every 15 s.
 */
export class HeldBackPoller {
  private last: HeldBackStatus | null = null;
  private timer?: NodeJS.Timeout;
  private running: Promise<void> | null = null;
  private warned = false;
  private closed = false;
  private readonly labels: { pipeline: string };

  constructor(
    private readonly source: Source,
    pipeline: string,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly intervalMs = 15_000,
  ) {
    this.labels = { pipeline };
  }

  /** Measure now, then every interval. Does nothing for a source without `heldBack`. */
  start(): void {
    if (!this.source.heldBack || this.closed || this.timer) return;
    this.poll();
    this.timer = setInterval(() => this.poll(), this.intervalMs);
    this.timer.unref();
  }

  /** The last measure, or null before the first one ends (or for a source that has none). */
  status(): HeldBackStatus | null {
    return this.last;
  }

  /** Measure unless a measure is still running; resolves when that one ends. */
  poll(): Promise<void> {
    return (this.running ??= this.measure().finally(() => (this.running = null)));
  }

  private async measure(): Promise<void> {
    const checked = new Date().toISOString();
    try {
      const h = await this.source.heldBack!();
      if (this.closed) return;
      this.last = { ...h, checked_at: checked };
      if (h.wal_bytes !== undefined) this.metrics.set('tributary_source_retained_wal_bytes', h.wal_bytes, this.labels);
      if (h.binlog_files !== undefined) this.metrics.set('tributary_source_retained_binlog_files', h.binlog_files, this.labels);
      this.warned = false;
    } catch (err) {
      if (this.closed) return;
      const { checked_at: _old, error: _e, ...figures } = this.last ?? {};
      this.last = { ...figures, checked_at: checked, error: errorMessage(err) };
      // An outage is the source link's to report; this stays at debug then.
      if (classifyError(err) === 'transient') this.logger.debug({ err }, `cannot measure what the source holds back: ${errorMessage(err)}`);
      else if (!this.warned) {
        this.warned = true;
        this.logger.warn({ code: ErrorCodes.HELD_BACK_QUERY, err }, `cannot measure what the source holds back: ${errorMessage(err)} (fix: see docs/errors.md ${ErrorCodes.HELD_BACK_QUERY}; it is tried again every ${Math.round(this.intervalMs / 1000)} s)`);
      }
    }
  }

  /**
   * Idempotent: stops polling. A measure in flight is not waited for (it may sit behind a lock
   * on the control connection); its answer is dropped, and it fails harmlessly once the source
   * closes its connections.
   */
  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    return Promise.resolve();
  }
}
