import type { Logger } from 'pino';
import { sleep } from '../runtime/retry.js';
import type { SnapshotHealth } from './health.js';
import { windowId, type ChunkLedger, type ChunkWindow } from './ledger.js';
import { isLive } from './state.js';
import { ByteRows, type ChunkBounds, type ChunkRows, type SnapshotReader, type SnapshotState, type SnapshotSupport, type SnapshotTable } from './types.js';
import type { WindowTracker } from './window-tracker.js';

/** What the chunk readers need from the coordinator. */
export interface ChunkWorkersOptions {
  /** How many workers; also how many chunks may be at stake at once (see `next`). */
  count: number;
  /** Aborted at close: workers stop, and a wait for a high watermark ends. */
  signal: AbortSignal;
  logger: Logger;
  support: () => SnapshotSupport;
  tracker: WindowTracker<ChunkWindow>;
  ledger: ChunkLedger;
  health: SnapshotHealth;
  /** The snapshot being read (a new one may begin while a worker reads). */
  state: () => SnapshotState | null;
  /** Chunks marked done that no state write has stored yet. */
  unstored: () => number;
  /** A worker took a chunk: planning may find the next ones. */
  taken: () => void;
  /** A chunk's rows were read (progress). */
  read: (table: SnapshotTable, rows: number) => void;
}

/**
 * The chunk readers of this process (`snapshot_workers`): each takes the next free chunk,
 * writes its low watermark, reads its rows, writes its high watermark and waits until the
 * stream has passed it, on one connection it keeps between chunks. A chunk that cannot be
 * reconciled is read again; a failed read is retried on a new connection after the delay
 * {@link SnapshotHealth} gives.
 */
export class ChunkWorkers {
  private readonly loops: Promise<void>[] = [];
  private wakers: (() => void)[] = [];

  constructor(private readonly o: ChunkWorkersOptions) {}

  /** Start the workers. */
  start(): void {
    for (let i = 0; i < this.o.count; i++) this.loops.push(this.loop(i));
  }

  /** Something changed (a chunk found, a state write, a resume): waiting workers look again. */
  wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const fn of w) fn();
  }

  /** Resolves once every worker has stopped (after the signal is aborted). */
  async stopped(): Promise<void> {
    await Promise.allSettled(this.loops);
  }

  /** The next chunk to read, or null. */
  private next(): { s: SnapshotState; ti: number; ci: number } | null {
    const s = this.o.state();
    if (!isLive(s)) return null;
    // A chunk stays at stake (read again after a crash) from its read until its done flag
    // is stored. Keeping at most one such chunk per worker bounds the rows a crash makes
    // us read twice, however far reading runs ahead of the sinks.
    if (this.o.ledger.atStake + this.o.unstored() >= this.o.count) return null;
    const next = this.o.ledger.nextFree(s);
    return next && { s, ...next };
  }

  /** Whether any chunk of a running snapshot is neither done nor taken. */
  private hasWork(): boolean {
    const s = this.o.state();
    return isLive(s) && this.o.ledger.hasUnread(s);
  }

  private async loop(n: number): Promise<void> {
    const { signal, health } = this.o;
    let reader: SnapshotReader | null = null;
    try {
      while (!signal.aborted) {
        const next = this.next();
        if (!next) {
          // Blocked only by the at-stake limit: keep the connection (opening one per chunk
          // cost a connect and a catalog query each time); with nothing left, let it go.
          if (!this.hasWork()) {
            await reader?.close();
            reader = null;
          }
          await new Promise<void>((r) => {
            // close() aborts, then wakes the waiting: a worker that comes here after that
            // (it was closing its reader) must not sleep out the timeout.
            if (signal.aborted) return r();
            this.wakers.push(r);
            setTimeout(r, 1000).unref();
          });
          continue;
        }
        const { s, ti, ci } = next;
        const release = this.o.ledger.take(s, ti, ci);
        this.o.taken();
        // Failures and successes count per table and per step: finding bounds succeeding
        // says nothing about reading the rows.
        const step = `read ${s.tables[ti]!.table.name}`;
        try {
          reader ??= await this.o.support().reader();
          await this.readChunk(reader, s, ti, ci);
          health.succeeded(step);
        } catch (err) {
          if (signal.aborted) break;
          // A new connection for the next try (a grant on a database reaches new sessions).
          await reader?.close();
          reader = null;
          await sleep(health.failed(err, step, `snapshot chunk ${ci} failed`, n), signal);
        } finally {
          release();
        }
      }
    } finally {
      await reader?.close();
    }
  }

  private async readChunk(reader: SnapshotReader, s: SnapshotState, ti: number, ci: number): Promise<void> {
    // A chunk that cannot be reconciled with the stream is read again, with new watermarks,
    // after a growing pause: the transaction it missed may still be in flight.
    for (let n = 0; (await this.readWindow(reader, s, ti, ci)) && !this.o.signal.aborted && this.o.state() === s && isLive(s); n++) {
      this.o.logger.debug({ table: s.tables[ti]!.table.name, chunk: ci }, 'snapshot chunk read again: a transaction it did not see is no longer remembered');
      await sleep(Math.min(5000, 50 * 2 ** n), this.o.signal);
    }
  }

  /**
   * One chunk between its watermarks; resolves once the high watermark has been handled, with
   * whether the chunk must be read again.
   */
  private async readWindow(reader: SnapshotReader, s: SnapshotState, ti: number, ci: number): Promise<boolean> {
    const { tracker, signal } = this.o;
    const t = s.tables[ti]!;
    const id = windowId(s, ti, ci);
    let reread = false;
    let closed!: () => void;
    const done = new Promise<void>((r) => (closed = r));
    tracker.open(id, t.table, {
      id,
      ti,
      ci,
      table: t.table,
      closed: (again) => {
        reread = again;
        closed();
      },
    });
    try {
      await reader.watermark(id, 'low');
      const rows = await readRows(reader, t.table, t.chunks[ci]!, t.where);
      tracker.rows(id, rows);
      this.o.read(t.table, rows.keys.length);
      await reader.watermark(id, 'high');
      // Wait until the stream has passed the high watermark: that bounds memory to one
      // chunk per worker.
      let onAbort!: () => void;
      const aborted = new Promise<void>((r) => (onAbort = r));
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await Promise.race([done, aborted]);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    } finally {
      tracker.close(id);
    }
    return reread;
  }
}

/**
 * A chunk's rows for this process: kept as bytes ({@link ByteRows}) when the reader can
 * append to a row sink, else as the reader's strings.
 */
async function readRows(reader: SnapshotReader, table: SnapshotTable, chunk: ChunkBounds, where: string | null): Promise<ChunkRows> {
  if (!reader.readInto) return reader.read(table, chunk, where);
  const out = new ByteRows();
  await reader.readInto(table, chunk, where, out);
  return out.chunk;
}
