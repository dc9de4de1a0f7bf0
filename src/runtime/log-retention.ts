import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { ResolvedSink } from '../config/load.js';
import { effectiveOffset } from './log-info.js';
import type { StateStore } from '../state/store.js';
import type { LogStream } from '../stream/log-stream.js';

/** A sink reading in this process, as retention sees it (a SinkRunner). */
export interface RetentionConsumer {
  readonly name: string;
  /** Its committed offset, or null before its first commit on the log. */
  readonly offset: number | null;
  /** Rewound to earliest: it reads from the start of the log. */
  readonly rebuild: boolean;
}

/** How often the writer applies retention. Segments are large; a check costs a few stats. */
export const RETENTION_INTERVAL_MS = 30_000;

/**
 * Applies the log's retention periodically in the process that writes it. What no sink has
 * consumed is kept (`max_age` waits for the slowest sink), unless `max_bytes` forces it out.
 *
 * The lowest offset still needed is taken over every sink of the config: from its runner when
 * it reads in this process, otherwise from the state store (a sink run by another process, or
 * one that is failing); a sink with no offset yet keeps the log from where it will start.
 */
export class LogRetention {
  private timer?: NodeJS.Timeout;
  private running: Promise<unknown> | null = null;
  private closed = false;

  constructor(
    private readonly o: {
      stream: LogStream;
      pipeline: string;
      sinks: readonly ResolvedSink[];
      runners: () => readonly RetentionConsumer[];
      store: Pick<StateStore, 'loadSinks'>;
      logger: Logger;
      intervalMs?: number;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.runOnce().catch((err) => this.o.logger.warn({ err }, `log retention failed: ${errorMessage(err)}`)).finally(() => (this.running = null));
    }, this.o.intervalMs ?? RETENTION_INTERVAL_MS);
    this.timer.unref();
  }

  /** The lowest offset any sink of the config still needs. */
  async keepFrom(): Promise<number> {
    const log = this.o.stream.log;
    const here = new Map(this.o.runners().map((r) => [r.name, r]));
    let stored: Awaited<ReturnType<StateStore['loadSinks']>> | null = null;
    let min = Infinity;
    for (const s of this.o.sinks) {
      const name = s.base.name;
      const r = here.get(name);
      let at: number;
      if (r && r.offset !== null && !r.rebuild) at = r.offset;
      else if (r?.rebuild) at = log.start;
      else {
        stored ??= await this.o.store.loadSinks(this.o.pipeline);
        at = effectiveOffset(log, s.base.start, stored[name]);
      }
      if (at < min) min = at;
    }
    return min === Infinity ? log.start : min;
  }

  /** One pass: remove the segments retention allows (folding them into the compacted state first). */
  async runOnce(now = Date.now()): Promise<{ removed: number; bytes: number }> {
    if (this.closed) return { removed: 0, bytes: 0 };
    return this.o.stream.retain(await this.keepFrom(), now);
  }

  /** Stop the timer and wait for a pass in progress. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
  }
}
