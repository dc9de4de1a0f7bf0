import { sleep } from '../runtime/retry.js';
import type { SnapshotHealth } from './health.js';
import type { ChunkLedger } from './ledger.js';
import { isLive } from './state.js';
import type { ChunkPlanner, SnapshotState, SnapshotSupport, SnapshotTable, SnapshotTableState } from './types.js';

/**
 * The plan of a new snapshot's tables. A `ctid` table (no key) gets all its chunks up front:
 * block ranges come from the statistics in one cheap query. A keyed table starts `open`, with
 * no chunk: it is cut as it is read ({@link ChunkPlanning}), since a pass over the whole key
 * before the first row took as long as reading a few chunks.
 */
export async function planTables(support: SnapshotSupport, tables: SnapshotTable[], chunkRows: number, where: string | null): Promise<SnapshotTableState[]> {
  const out: SnapshotTableState[] = [];
  for (const table of tables) {
    if (table.keyKind === 'ctid') {
      const chunks = await support.plan(table, chunkRows, where);
      out.push({ table, where, chunks, done: chunks.map(() => false), rows: 0 });
    } else {
      out.push({ table, where, chunks: [], open: true, done: [], rows: 0 });
    }
  }
  return out;
}

export interface ChunkPlanningOptions {
  /** Aborted at close. */
  signal: AbortSignal;
  chunkRows: number;
  /** How many free chunks to keep found ahead of the workers. */
  workers: number;
  support: () => SnapshotSupport;
  /** The snapshot being planned (a new one may begin while a probe runs). */
  state: () => SnapshotState | null;
  ledger: ChunkLedger;
  health: SnapshotHealth;
  /** Whether planning may run now (distributed mode: only once the stored chunks are jobs, so none is enqueued twice). */
  ready: () => boolean;
  /** Whether every chunk is wanted at once (distributed mode: each becomes a job), not only `workers` ahead. */
  allAhead: () => boolean;
  /** Chunk `ci` of table `ti` was found (its bounds are in the state). */
  found: (s: SnapshotState, ti: number, ci: number) => Promise<void>;
}

/**
 * Finds the bounds of keyed tables' chunks in the background, one index probe per chunk
 * ({@link ChunkPlanner}, one connection kept while there is more to find), `workers` free chunks
 * ahead of the workers. A failed probe is retried on a new connection after the delay
 * {@link SnapshotHealth} gives.
 */
export class ChunkPlanning {
  private loop: Promise<void> | null = null;
  private planner: ChunkPlanner | null = null;

  constructor(private readonly o: ChunkPlanningOptions) {}

  /** Start finding bounds if some table has more to find and no loop runs. */
  ensure(): void {
    if (this.loop || this.o.signal.aborted || !this.o.ready()) return;
    if (!this.o.state()?.tables.some((t) => t.open)) return;
    this.loop = this.run().finally(() => {
      this.loop = null;
    });
  }

  /** Stop (after the signal is aborted): the loop ends and the planner's connection closes. */
  async close(): Promise<void> {
    await this.loop?.catch(() => undefined);
    await this.closePlanner();
  }

  /** The table whose next chunk is to be found now, or -1. */
  private tableToPlan(s: SnapshotState): number {
    const ti = s.tables.findIndex((t) => t.open);
    if (ti < 0 || this.o.allAhead()) return ti;
    return this.o.ledger.freeCount(s) < Math.max(1, this.o.workers) ? ti : -1;
  }

  private async run(): Promise<void> {
    const { signal, health } = this.o;
    for (;;) {
      const s = this.o.state();
      if (signal.aborted || !isLive(s)) return;
      const ti = this.tableToPlan(s);
      if (ti < 0) {
        if (!s.tables.some((t) => t.open)) await this.closePlanner();
        return;
      }
      const t = s.tables[ti]!;
      const lo = t.chunks.length ? t.chunks[t.chunks.length - 1]!.hi : null;
      if (t.chunks.length && lo === null) {
        t.open = false; // the last chunk found is already open-ended
        continue;
      }
      try {
        this.planner ??= await this.o.support().planner();
        const hi = await this.planner.next(t.table, lo, this.o.chunkRows, t.where);
        // Cancelled, or another snapshot began, while the probe ran.
        if (this.o.state() !== s || (s.status as SnapshotState['status']) === 'cancelled' || !t.open) continue;
        t.chunks.push({ lo, hi });
        t.done.push(false);
        if (hi === null) t.open = false;
        health.succeeded(`plan ${t.table.name}`);
        await this.o.found(s, ti, t.chunks.length - 1);
      } catch (err) {
        if (signal.aborted) return;
        await this.closePlanner();
        await sleep(health.failed(err, `plan ${t.table.name}`, 'cannot find the next snapshot chunk'), signal);
      }
    }
  }

  private async closePlanner(): Promise<void> {
    const p = this.planner;
    this.planner = null;
    await p?.close().catch(() => undefined);
  }
}
