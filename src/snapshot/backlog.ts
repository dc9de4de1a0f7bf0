import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { SourceItem } from '../core/source.js';
// Types only: distributed.ts (BullMQ, ioredis) is loaded by `open`, with `snapshot.queue.redis`.
import type { ChunkJob, ChunkQueue } from './distributed.js';
import { windowId, type ChunkWindow } from './ledger.js';
import type { ChunkRows, SnapshotState, SnapshotSupport, SnapshotTable } from './types.js';
import type { HighOutcome, WindowTracker } from './window-tracker.js';

type Distributed = typeof import('./distributed.js');

export interface ChunkBacklogOptions {
  url: string;
  pipeline: string;
  /** Jobs this process takes itself (0: only `--worker` processes read chunks). */
  workers: number;
  support: SnapshotSupport;
  logger: Logger;
  tracker: WindowTracker<ChunkWindow>;
  /** A chunk's rows were fetched (progress). */
  read: (table: SnapshotTable, rows: number) => void;
}

/**
 * Distributed mode (`snapshot.queue.redis`), the pipeline's side: every chunk is a BullMQ job
 * (distributed.ts) that this process or any `tributary run --worker` may take. The worker
 * writes the chunk's watermarks itself and parks its rows in Redis before the high one, so
 * when the stream reaches the high watermark the rows are fetched back here, and every later
 * source item is held until they are, which keeps the log order.
 */
export class ChunkBacklog {
  /** Set while a chunk's rows are fetched: every source item is held meanwhile ({@link hold}). */
  fetching: Promise<void> | null = null;
  private held: SourceItem[] = [];

  private constructor(
    private readonly d: Distributed,
    private readonly queue: ChunkQueue,
    private readonly o: ChunkBacklogOptions,
  ) {}

  /** Connect, forget the jobs of an earlier run (their windows no longer exist), and take jobs when `workers` > 0. */
  static async open(o: ChunkBacklogOptions): Promise<ChunkBacklog> {
    const d = await import('./distributed.js');
    const queue = new d.ChunkQueue(o.url, o.pipeline);
    await queue.reset();
    if (o.workers > 0) queue.work(o.support, o.workers, o.logger);
    return new ChunkBacklog(d, queue, o);
  }

  /** Chunks of `s` become jobs, each with its window registered (synchronously) first. */
  async enqueue(s: SnapshotState, chunks: { ti: number; ci: number }[]): Promise<void> {
    const jobs = chunks.map(({ ti, ci }) => this.register(s, ti, ci));
    await this.queue.enqueue(jobs);
  }

  /** One job per unfinished chunk of `s` (at start, or a new snapshot); held back while it is paused. */
  async enqueueUnfinished(s: SnapshotState | null): Promise<void> {
    if (!s || s.status === 'done' || s.status === 'cancelled') return;
    const chunks: { ti: number; ci: number }[] = [];
    s.tables.forEach((t, ti) => t.chunks.forEach((_, ci) => void (t.done[ci] || chunks.push({ ti, ci }))));
    await this.enqueue(s, chunks);
    if (s.status === 'paused') await this.queue.pause();
  }

  /** Keep a source item until the rows being fetched are in the stream. Returns false (backpressure). */
  hold(item: SourceItem): false {
    this.held.push(item);
    return false;
  }

  /**
   * A remote chunk's high watermark: fetch its rows, hand them to the tracker and `emit` its
   * outcome, then give the held items back to `intake`, in order. Rows that cannot be fetched
   * make the chunk a job again; a window closed meanwhile (cancelled) is left alone.
   */
  fetch(s: SnapshotState, win: ChunkWindow, emit: (out: HighOutcome<ChunkWindow>) => void, intake: (item: SourceItem) => boolean): void {
    const { tracker, logger } = this.o;
    this.fetching = (async () => {
      let rows: ChunkRows | null = null;
      try {
        rows = await this.d.takeChunkRows(this.queue.redis, this.o.pipeline, win.id);
        this.o.read(win.table, rows.keys.length);
      } catch (err) {
        logger.warn({ err, table: win.table.name, chunk: win.ci }, `cannot fetch a snapshot chunk's rows; reading the chunk again: ${errorMessage(err)}`);
      }
      this.fetching = null;
      if (rows && tracker.rows(win.id, rows)) emit(tracker.finish(win.id));
      else if (tracker.close(win.id)) void this.enqueue(s, [win]);
      const q = this.held;
      this.held = [];
      for (const it of q) intake(it);
    })();
  }

  pause(): Promise<void> {
    return this.queue.pause();
  }

  resume(): Promise<void> {
    return this.queue.resume();
  }

  /** Drop the jobs not yet taken (a cancel). */
  drain(): Promise<void> {
    return this.queue.drain();
  }

  close(): Promise<void> {
    return this.queue.close();
  }

  private register(s: SnapshotState, ti: number, ci: number): ChunkJob {
    const t = s.tables[ti]!;
    const id = windowId(s, ti, ci);
    this.o.tracker.open(id, t.table, { id, ti, ci, table: t.table });
    return { pipeline: this.o.pipeline, windowId: id, table: t.table, chunk: t.chunks[ci]!, where: t.where };
  }
}
