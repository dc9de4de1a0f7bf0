import { ErrorCodes } from '../core/errors.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { SerializedChangeEvent, qualifiedTable } from '../core/event.js';
import type { Position, Source, SourceItem } from '../core/source.js';
import type { StateStore } from '../state/store.js';
import type { Metrics } from '../runtime/metrics.js';
import type { SnapshotState, SnapshotSupport, SnapshotTable } from './types.js';
import { SnapshotProgress } from './progress.js';
import { SnapshotHealth } from './health.js';
import { WindowTracker, type HighOutcome } from './window-tracker.js';
import { ProgressStore } from './progress-store.js';
import { isLive, remainingChunks, tableDone } from './state.js';
import { ChunkLedger, type ChunkWindow } from './ledger.js';
import { ChunkWorkers } from './workers.js';
import { ChunkPlanning, planTables } from './plan.js';
import { control, refuse, summarize, type ControlAction, type ControlAnswer } from './control.js';
// backlog.ts loads distributed.ts (BullMQ, ioredis) only with `snapshot.queue.redis`: loading
// it costs about 150 ms of startup that every other pipeline would pay for nothing.
import { ChunkBacklog } from './backlog.js';

export interface SnapshotOptions {
  pipeline: string;
  mode: 'initial' | 'never' | 'initial_only' | 'when_needed';
  workers: number;
  chunkRows: number;
  source: Source;
  store: StateStore;
  logger: Logger;
  metrics: Metrics;
  /** Put an item into the stream (the pipeline's own push). */
  push(item: SourceItem): boolean;
  /** Called when an `initial_only` snapshot is complete and durable. */
  onInitialOnlyDone(): void;
  /**
   * A targeted snapshot (`state.target`) is about to push `rows` rows (events of `txn`) for
   * its sink alone: the pipeline records where they go in the log before they are pushed.
   */
  targetedRows?(sink: string, rows: number, txn: Position): void;
  /** With `snapshot.queue.redis`: chunks are BullMQ jobs that `--worker` processes share. */
  distributed?: { url: string };
}

/**
 * Snapshots that run while streaming continues, chunk by chunk, with the DBLog watermark
 * algorithm (Andreakis & Papapanagiotou, arXiv 2010.12597):
 *
 * 1. write a low watermark into the change log;
 * 2. read the chunk's rows (keyset pagination on the primary key);
 * 3. write a high watermark.
 *
 * When the stream reaches the high watermark, the chunk's rows that a streamed change may have
 * made stale are dropped and the rest are inserted into the stream right there, as `op: "r"`
 * events of the high watermark's transaction. So a snapshot row never overwrites a newer
 * change, no lock is taken, the slot or binlog keeps being consumed, and every chunk is
 * independent: chunks run in parallel and a chunk is the unit of resumption. A chunk counts
 * as done once every sink has committed the high watermark's transaction; that progress is
 * persisted, and after a crash only unfinished chunks are read again.
 *
 * This class wires the parts together and owns the state of the current snapshot:
 *
 * - plan.ts finds the chunks (ctid ranges up front, keyed bounds as they are needed);
 * - workers.ts reads them in this process; backlog.ts hands them to other processes instead
 *   (`snapshot.queue.redis`);
 * - window-tracker.ts decides, from the stream, which rows of a chunk may go out (pure; every
 *   source item passes through {@link intake} on its way into the stream);
 * - ledger.ts knows which chunks are being read or wait for the sinks; progress-store.ts
 *   stores the state (coalesced writes); health.ts turns failures into backoff and status;
 * - control.ts answers `tributary snapshot` (start, pause, resume, cancel).
 */
export class SnapshotCoordinator {
  /** The current snapshot (the last one begun or resumed), null when none ever ran. */
  state: SnapshotState | null = null;
  private support?: SnapshotSupport;
  private readonly ac = new AbortController();
  private closed?: Promise<void>;
  /** `start` ran: chunks may be read (and, in distributed mode, enqueued by planning). */
  private started = false;

  private readonly tracker = new WindowTracker<ChunkWindow>({ onClose: (w, reread) => w.closed?.(reread) });
  private readonly ledger = new ChunkLedger();
  private readonly progressStore: ProgressStore;
  private readonly health: SnapshotHealth;
  private readonly planning: ChunkPlanning;
  /** This process's chunk readers (not in distributed mode). */
  private workers?: ChunkWorkers;
  /** Distributed mode: chunks are jobs any process may read. */
  private backlog?: ChunkBacklog;
  private progress?: SnapshotProgress;

  /** High watermarks still to be processed in the current snapshot (for `"last"`). */
  private toEmit = 0;
  /** `onInitialOnlyDone` has been called (it must be, exactly once). */
  private initialOnlyNotified = false;

  constructor(private readonly o: SnapshotOptions) {
    this.progressStore = new ProgressStore({ store: o.store, pipeline: o.pipeline, logger: o.logger, current: () => this.state, onStored: () => this.kick() });
    this.health = new SnapshotHealth({ logger: o.logger, state: () => this.state, save: () => this.progressStore.save() });
    this.planning = new ChunkPlanning({
      signal: this.ac.signal,
      chunkRows: o.chunkRows,
      workers: o.workers,
      support: () => this.support!,
      state: () => this.state,
      ledger: this.ledger,
      health: this.health,
      // In distributed mode, planning waits for `start`, so no chunk is both enqueued by it and by `enqueueUnfinished`.
      ready: () => this.started || !o.distributed,
      allAhead: () => !!this.backlog,
      found: async (s, ti, ci) => {
        this.toEmit++;
        if (this.backlog) await this.backlog.enqueue(s, [{ ti, ci }]);
        this.kick();
      },
    });
  }

  /** A snapshot is reading (running, or failed and being tried again). */
  get active(): boolean {
    return isLive(this.state);
  }

  /**
   * Why the pipeline is not ready, from the snapshot's side: an initial snapshot that failed
   * (the sinks do not hold the tables, and will not until the cause is fixed). Null when ready.
   */
  get readinessProblem(): string | null {
    const s = this.state;
    if (s?.kind !== 'initial' || s.status !== 'failed' || !s.error) return null;
    return `initial snapshot failed: ${s.error.code} ${s.error.message}`;
  }

  /**
   * Decide at start-up: resume a stored snapshot, or begin the initial one when the mode and
   * the checkpoints call for it. The plan is persisted before streaming starts, so a crash
   * right after start still finds it.
   */
  async init(opts: { freshPipeline: boolean; positionLost: boolean }): Promise<void> {
    if (!this.o.source.snapshots) return;
    this.state = await this.progressStore.load();
    const { mode } = this.o;
    const wantInitial =
      (mode === 'initial' || mode === 'initial_only' || mode === 'when_needed') && opts.freshPipeline && !this.state;
    const lost = mode === 'when_needed' && opts.positionLost;
    if (wantInitial || lost) {
      await this.begin('initial', null, null);
    } else if (this.state?.status === 'running' || this.state?.status === 'paused' || this.state?.status === 'failed') {
      if (this.state.status === 'failed') {
        // Tried again at once: the cause may have been fixed while it was stopped.
        this.o.logger.info({ snapshot: this.state.id, error: this.state.error }, 'the snapshot failed before the restart; trying again');
        this.state.status = 'running';
        delete this.state.error;
      }
      this.refreshWatched();
      this.o.logger.info({ snapshot: this.state.id, remaining: remainingChunks(this.state) }, 'resuming snapshot from its last durable chunk');
      this.toEmit = remainingChunks(this.state);
    }
  }

  /** True when `initial_only` has nothing (left) to do. */
  get initialOnlyComplete(): boolean {
    return this.o.mode === 'initial_only' && (!this.state || this.state.status === 'done');
  }

  /** The tables whose changes are remembered by transaction: those of a live snapshot with chunks to come. */
  private refreshWatched(): void {
    const s = this.state;
    const live = s && s.status !== 'done' && s.status !== 'cancelled';
    this.tracker.watch(live ? s.tables.filter((t) => !tableDone(t)).map((t) => t.table) : []);
  }

  /** Plan and persist a snapshot of `tables` (all captured tables when null). */
  async begin(kind: 'initial' | 'incremental', tables: string[] | null, where: string | null, target?: string): Promise<SnapshotState> {
    const support = this.snapshotSupport();
    const list = await support.tables(tables ?? undefined);
    // A filter is vetted before anything is planned or persisted: a bad one is answered now
    // (400 with the database's message), not retried chunk after chunk.
    if (where !== null) for (const table of list) await support.checkFilter(table, where);
    const state: SnapshotState = { id: randomUUID(), kind, status: 'running', startedAt: Date.now(), tables: await planTables(support, list, this.o.chunkRows, where), ...(target ? { target } : {}) };
    this.state = state;
    this.ledger.forgetEmitted();
    this.health.clear();
    this.refreshWatched();
    this.toEmit = remainingChunks(this.state);
    await this.progressStore.save();
    this.o.logger.info({ snapshot: state.id, kind, tables: list.map((t) => t.name), where, target }, `snapshot started: ${list.length} table(s)${target ? ` for sink ${target} alone` : ''}`);
    this.o.metrics.set('tributary_snapshot_remaining_tables', list.length, { pipeline: this.o.pipeline });
    this.publishTables(state);
    if (this.backlog) await this.backlog.enqueueUnfinished(state);
    this.kick();
    return state;
  }

  /** The source's support, made once. */
  private snapshotSupport(): SnapshotSupport {
    return (this.support ??= this.o.source.snapshots!());
  }

  /** Start reading chunks (after the source runs, so watermarks flow). */
  /** Per-table progress for dashboards: rows durable in this snapshot, and the estimate. */
  private publishTables(state: SnapshotState | null): void {
    for (const t of state?.tables ?? []) {
      const labels = { pipeline: this.o.pipeline, table: t.table.name };
      this.o.metrics.set('tributary_snapshot_table_rows', t.rows, labels);
      this.o.metrics.set('tributary_snapshot_table_rows_estimate', t.table.estimate ?? 0, labels);
    }
  }

  async start(): Promise<void> {
    if (!this.o.source.snapshots) return;
    this.publishTables(this.state); // a snapshot resumed after a restart
    const support = this.snapshotSupport();
    const read = (table: SnapshotTable, rows: number) => this.progress?.read(table.name, rows, table.estimate);
    if (this.o.distributed) {
      const { url } = this.o.distributed;
      this.backlog = await ChunkBacklog.open({ url, pipeline: this.o.pipeline, workers: this.o.workers, support, logger: this.o.logger, tracker: this.tracker, read });
      await this.backlog.enqueueUnfinished(this.state);
    } else {
      this.workers = new ChunkWorkers({
        count: this.o.workers,
        signal: this.ac.signal,
        logger: this.o.logger,
        support: () => support,
        tracker: this.tracker,
        ledger: this.ledger,
        health: this.health,
        state: () => this.state,
        unstored: () => this.progressStore.unpersisted,
        taken: () => this.planning.ensure(),
        read,
      });
      this.workers.start();
    }
    this.started = true;
    this.planning.ensure();
  }

  /** Resolves once no remote chunk is being fetched. */
  async unblocked(): Promise<void> {
    while (this.backlog?.fetching) await this.backlog.fetching;
  }

  private kick(): void {
    this.workers?.wake();
    this.planning.ensure();
  }

  /**
   * Every source item passes here on its way into the stream (synchronously, in log order).
   * Returns what `push` returned (backpressure).
   */
  intake(item: SourceItem): boolean {
    if (this.backlog?.fetching) return this.backlog.hold(item);
    if (item.kind === 'watermark') return this.onWatermark(item);
    if (item.kind === 'event' && this.tracker.watching) {
      const ev = item.event;
      this.tracker.change(ev instanceof SerializedChangeEvent ? ev.table : qualifiedTable(ev), item.xid, ev);
    }
    return this.o.push(item);
  }

  private onWatermark(item: Extract<SourceItem, { kind: 'watermark' }>): boolean {
    if (item.mark === 'low') {
      this.tracker.low(item.id, item.visibility);
      return true;
    }
    const out = this.tracker.high(item.id, item.visibility);
    if (out.kind === 'unknown' || out.kind === 'dropped') return true;
    const s = this.state;
    if (out.kind === 'awaiting-rows') {
      if (s && this.backlog) {
        // A worker elsewhere read this chunk and left the rows in Redis: fetch them, holding
        // every later item back so the log order is kept.
        this.backlog.fetch(s, out.meta, (o) => this.emitChunk(s, o, item), (it) => this.intake(it));
        return false;
      }
      this.tracker.close(item.id);
      return true;
    }
    return s ? this.emitChunk(s, out, item) : true;
  }

  /** The outcome of a window at its high watermark: its rows go into the stream, or it is read again. */
  private emitChunk(s: SnapshotState, out: HighOutcome<ChunkWindow>, item: Extract<SourceItem, { kind: 'watermark' }>): boolean {
    if (out.kind === 'reread') {
      // Its worker reads it again (workers.ts); a remote chunk becomes a job again.
      if (this.backlog) void this.backlog.enqueue(s, [out.meta]);
      return true;
    }
    if (out.kind !== 'emit') return true;
    const win = out.meta;
    const t = s.tables[win.ti]!;
    const flag = s.kind === 'incremental' ? 'incremental' : 'true';
    const last = s.kind === 'initial' && this.toEmit === 1 && !s.tables.some((x) => x.open);
    // Rows arrive serialized and leave as serialized envelopes: the stream never stringifies
    // a snapshot row again.
    const serialize = this.o.source.snapshotEvent!.chunk(win.table, item.at, Date.now());
    const { rows, bytes } = out.rows;
    const keys = out.rows.keys;
    // Only rows whose key no streamed change touched go out (window-tracker.ts). The final
    // emitted row of an initial snapshot carries "last".
    const emit = out.emit;
    let ok = true;
    let idx = item.idx + 1;
    const { push } = this.o;
    if (s.target && emit.length) this.o.targetedRows?.(s.target, emit.length, item.txn);
    for (let j = 0; j < emit.length; j++) {
      const i = emit[j]!;
      const f = last && j === emit.length - 1 ? 'last' : flag;
      ok = push({ kind: 'event', event: bytes ? serialize.bytes(bytes, i, f) : serialize(rows[i]!, keys[i]!, f), txn: item.txn, idx: idx++ }) && ok;
    }
    const n = emit.length;
    this.toEmit = Math.max(0, this.toEmit - 1);
    this.ledger.emit({ snapshot: s.id, ti: win.ti, ci: win.ci, rows: n, txn: item.txn });
    this.o.metrics.inc('tributary_snapshot_rows_total', n, { pipeline: this.o.pipeline, table: t.table.name });
    return ok;
  }

  /** Every sink holds everything up to `position`: mark those chunks done, persist. */
  onDurable(position: Position): void {
    const s = this.state;
    if (!s || !this.ledger.waiting) return;
    let changed = false;
    for (const p of this.ledger.durable(s, position)) {
      const t = s.tables[p.ti]!;
      if (t.done[p.ci]) continue;
      t.done[p.ci] = true;
      this.progressStore.chunkDone();
      t.rows += p.rows;
      this.o.metrics.set('tributary_snapshot_table_rows', t.rows, { pipeline: this.o.pipeline, table: t.table.name });
      changed = true;
      if (tableDone(t)) {
        this.o.logger.info({ snapshot: s.id, table: t.table.name, rows: t.rows }, `snapshot of ${t.table.name} done: ${t.rows} rows`);
        this.progress?.tableDone(t.table.name, t.rows);
      }
    }
    if (!changed) return;
    this.refreshWatched();
    const remainingTables = s.tables.filter((t) => !tableDone(t)).length;
    this.o.metrics.set('tributary_snapshot_remaining_tables', remainingTables, { pipeline: this.o.pipeline });
    if (remainingTables === 0 && isLive(s)) {
      s.status = 'done';
      delete s.error;
      this.health.clear();
      s.finishedAt = Date.now();
      const rows = s.tables.reduce((n, t) => n + t.rows, 0);
      this.o.logger.info({ snapshot: s.id, rows, seconds: (s.finishedAt - s.startedAt) / 1000 }, `snapshot completed: ${rows} rows in ${s.tables.length} table(s)`);
      this.progress?.stop();
    }
    void this.progressStore.save().then(() => {
      // Completions that arrive while a state write is in flight share the next, coalesced
      // write, and each looks at the status once it resolves: tell the pipeline only once.
      if (s.status === 'done' && this.o.mode === 'initial_only' && s.kind === 'initial' && !this.initialOnlyNotified) {
        this.initialOnlyNotified = true;
        this.o.onInitialOnlyDone();
      }
    });
  }

  /** `tributary snapshot`: start, pause, resume or cancel (control.ts has the rules). */
  async control(action: ControlAction, table: string | null, where: string | null): Promise<ControlAnswer> {
    if (!this.o.source.snapshots) return refuse(400, ErrorCodes.SNAPSHOT_UNSUPPORTED, 'this source cannot snapshot', 'snapshot a table of a pipeline whose source supports snapshots');
    return control(
      {
        current: () => this.state,
        begin: (tables, filter) => this.begin('incremental', tables, filter),
        changed: (s, a) => this.changed(s, a),
      },
      action,
      table,
      where,
    );
  }

  /** A pause, resume or cancel changed the status of `s`: apply it. */
  private async changed(s: SnapshotState, action: 'pause' | 'resume' | 'cancel'): Promise<void> {
    // The failure is tried again on resume; a pause or cancel ends the report of it.
    this.health.clear();
    if (this.backlog) {
      if (action === 'pause') await this.backlog.pause();
      else if (action === 'resume') await this.backlog.resume();
      else await this.backlog.drain();
    }
    if (action === 'cancel') {
      this.tracker.closeAll();
      this.ledger.forgetEmitted();
      this.o.logger.warn({ snapshot: s.id }, 'snapshot cancelled');
      this.progress?.stop();
    } else this.o.logger.info({ snapshot: s.id }, `snapshot ${action}d`);
    this.refreshWatched();
    await this.progressStore.save();
    this.kick();
  }

  /** For `/status` and `tributary status`. */
  summary(): Record<string, unknown> | null {
    return summarize(this.state);
  }

  /** Show progress bars (terminal) or periodic log lines. */
  showProgress(): void {
    this.progress ??= new SnapshotProgress(this.o.logger);
  }

  close(): Promise<void> {
    return (this.closed ??= (async () => {
      this.ac.abort();
      this.kick();
      this.tracker.closeAll();
      await this.workers?.stopped();
      await this.planning.close();
      await this.backlog?.close();
      await this.progressStore.settled();
      this.progress?.stop();
    })());
  }
}
