/**
 * The internal stream between a pipeline's source and its sinks, as an interface: the
 * source appends transactions, each sink is a consumer group reading from its own offset.
 *
 * Two implementations:
 * - `log` (log-stream.ts, the default): the durable, retained log. The database is
 *   acknowledged once the log holds a transaction durably; sinks read at their own pace,
 *   from memory while they keep up and from disk when they fall behind, and a sink that
 *   joins later reads the retained history.
 * - `memory` (memory-stream.ts): bounded in bytes, nothing kept; an entry is dropped once
 *   every consumer has taken it, and the database is acknowledged only when the slowest
 *   sink holds a transaction.
 *
 * Sources and sinks never see the difference: the runtime appends and reads through this
 * interface only.
 */
import type { StreamEntry } from './entries.js';

export type { StreamEntry, StreamCommit } from './entries.js';
export { StreamEvent } from './entries.js';

/** A transaction the stream holds durably: what the source may be acknowledged for. */
export interface DurableCommit {
  /** Offset of the commit marker. */
  offset: number;
  /** The transaction's position and where the source resumes after it (serialized). */
  txn: string;
  resume: string;
  /** Its commit time (epoch ms). */
  tsMs: number;
}

/** Where a consumer group with no committed offset begins. */
export type StartAt = 'earliest' | 'latest';

export interface EventStream {
  /** `log`: durable and retained; `memory`: neither. */
  readonly kind: 'log' | 'memory';
  /**
   * Append an entry (its `offset` is set here). Returns false once the stream is over its
   * byte budget: the source must then stop reading until {@link drained} resolves.
   */
  append(entry: StreamEntry): boolean;
  /** Resolves when the stream takes appends again. */
  drained(): Promise<void>;
  /** Offset the next appended entry takes. */
  readonly end: number;
  /** Bytes held in memory (for `/metrics`). */
  readonly bytes: number;
  /**
   * Called whenever more of the stream is durable, with its last commit. Only the log
   * calls it: with the memory stream, durability is each sink's own.
   */
  onDurable(fn: (commit: DurableCommit) => void): void;
  /**
   * A reader for consumer group `group` from offset `from` (its committed offset), or, for a
   * group that has none, from `start`.
   */
  consumer(group: string, from: number | null, start: StartAt): Promise<StreamConsumer>;
  /** Write what is pending and release everything. Idempotent. */
  close(): Promise<void>;
}

/** One consumer group's reader. */
export interface StreamConsumer {
  /** Offset of the next entry {@link next} returns. */
  readonly position: number;
  /**
   * The next entries, up to `maxEvents` events (commit markers do not count) and about
   * `maxBytes`: at least one, waiting for them (resolving to [] only when `signal` aborts);
   * or, with `wait` false, whatever is there now, maybe nothing.
   */
  next(maxEvents: number, maxBytes: number, signal: AbortSignal, wait?: boolean): Promise<StreamEntry[]>;
  /** Entries after {@link position} that exist now (for lag metrics). */
  readonly behind: number;
  /** Commit time of the next entry when it is known without I/O, else null. */
  nextTime(): number | null;
  /** Stop reading (idempotent); the memory stream stops holding entries for it. */
  close(): void;
}
