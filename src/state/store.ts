import type { DeadLetterQueue } from './dead-letters.js';

/**
 * The checkpoint store: where each sink's committed position lives. Positions are stored as
 * the source's serialized strings; the store never interprets them.
 */
export interface SinkCheckpointRecord {
  /** Position of the last transaction durable in the sink (skip anything at or below it). */
  position: string;
  /** Where the source must resume so that nothing after `position` is missed. */
  resume: string;
  /** Opaque sink state (the jsonl sink's file offset). */
  state?: unknown;
  /** Wall-clock time of the commit, epoch ms. */
  at: number;
  /**
   * With the log stream: the consumer group's offset, the log offset after the commit marker
   * of `position` (where the sink reads on after a restart).
   */
  offset?: number;
  /**
   * Set by `tributary rewind --to earliest` when retention has trimmed the log: the sink
   * reads the compacted state first (each key's latest row), then the log from `offset`.
   * Its next checkpoint drops it.
   */
  rebuild?: boolean;
}

/** Durable key/value storage for checkpoints and snapshot progress, per pipeline. */
export interface StateStore {
  /** Every sink checkpoint of a pipeline. */
  loadSinks(pipeline: string): Promise<Record<string, SinkCheckpointRecord>>;
  /** Persist one sink's checkpoint durably before resolving. */
  saveSink(pipeline: string, sink: string, rec: SinkCheckpointRecord): Promise<void>;
  /** Free-form durable documents (snapshot progress, source metadata). */
  get<T>(pipeline: string, key: string): Promise<T | undefined>;
  put(pipeline: string, key: string, value: unknown): Promise<void>;
  delete(pipeline: string, key: string): Promise<void>;
  /**
   * The dead letters of one sink, kept with the checkpoints (file: a journal beside them;
   * Redis: a hash, written under the pipeline's lease). Optional so that test doubles may
   * leave it out; the runtime then keeps dead letters in memory.
   */
  deadLetters?(pipeline: string, sink: string): DeadLetterQueue;
  close(): Promise<void>;
}
