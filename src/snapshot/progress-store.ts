import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { StateStore } from '../state/store.js';
import type { SnapshotState } from './types.js';

/** Where a pipeline's snapshot progress lives in its state store. */
const STATE_KEY = 'snapshot';

/**
 * The snapshot's durable progress: its plan, the done flag of every chunk, its status. Writes
 * coalesce: a write waits for the one in progress, and every write requested meanwhile shares
 * the one queued after it, which copies the state only when it starts, so it carries every
 * change made while it waited. Done flags therefore reach the store one write after the sinks
 * commit, however fast chunks complete, which keeps the rows read again after a crash few.
 */
export class ProgressStore {
  private persisting: Promise<void> = Promise.resolve();
  /** The write that has not started yet, if any. */
  private queued: Promise<void> | null = null;
  /** Chunks marked done whose done flag no write has stored yet. */
  private unstored = 0;

  constructor(
    private readonly o: {
      store: StateStore;
      pipeline: string;
      logger: Logger;
      /** The state to write (read when a write starts). */
      current: () => SnapshotState | null;
      /** A write succeeded (workers may wait for the done flags it stored). */
      onStored: () => void;
    },
  ) {}

  /** The stored state, or null when no snapshot was ever planned. */
  async load(): Promise<SnapshotState | null> {
    return (await this.o.store.get<SnapshotState>(this.o.pipeline, STATE_KEY)) ?? null;
  }

  /** A chunk was marked done in the state: it is at stake until a write stores it. */
  chunkDone(): void {
    this.unstored++;
  }

  /** Chunks marked done and not yet stored. */
  get unpersisted(): number {
    return this.unstored;
  }

  /**
   * Write the state after any write in progress (coalesced, see the class comment). A failed
   * write is logged and tried again a second later; the promise rejects with its error.
   */
  save(): Promise<void> {
    if (this.queued) return this.queued;
    const write = this.persisting
      .catch(() => undefined)
      .then(async () => {
        this.queued = null;
        const stored = this.unstored;
        const s = this.o.current();
        const snap = s ? JSON.parse(JSON.stringify(s)) : null;
        try {
          if (snap) await this.o.store.put(this.o.pipeline, STATE_KEY, snap);
        } catch (err) {
          // Workers wait for these flags: try again soon (the next write carries them too).
          this.o.logger.warn({ err }, `cannot store snapshot progress, retrying: ${errorMessage(err)}`);
          setTimeout(() => void this.save().catch(() => undefined), 1000).unref();
          throw err;
        }
        this.unstored -= stored;
        this.o.onStored();
      });
    this.queued = write;
    this.persisting = write;
    return write;
  }

  /** Resolves once the write in progress, if any, has ended. */
  async settled(): Promise<void> {
    await this.persisting.catch(() => undefined);
  }
}
