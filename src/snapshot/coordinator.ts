import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { SerializedChangeEvent, qualifiedTable } from '../core/event.js';
import { ErrorCodes, TributaryError, errorMessage, type ErrorCode } from '../core/errors.js';
import type { Position, Source, SourceItem } from '../core/source.js';
import type { StateStore } from '../state/store.js';
import type { Metrics } from '../runtime/metrics.js';
import { sleep } from '../runtime/retry.js';
import { classifyError } from '../runtime/error-class.js';
import { ByteRows, emptyChunk, keyString, type ChunkBounds, type ChunkPlanner, type ChunkRows, type SnapshotReader, type SnapshotState, type SnapshotSupport, type SnapshotTable } from './types.js';
import { SnapshotProgress } from './progress.js';
import { ThreadedSupport } from './thread-reader.js';
import { RecentTransactions, type Captured } from './visibility.js';
import { SnapshotFailures } from './failures.js';
// distributed.ts (BullMQ, ioredis) is imported only with `snapshot.queue.redis`: loading it
// costs about 150 ms of startup that every other pipeline would pay for nothing.
import type { ChunkQueue, ChunkJob } from './distributed.js';

const STATE_KEY = 'snapshot';

/** A chunk between its low and high watermark. */
interface Window {
  id: string;
  ti: number;
  ci: number;
  table: SnapshotTable;
  /** Keys changed by streamed events since the low watermark; null until it is seen. */
  dirty: Set<string> | null;
  /** The rows read; set before the high watermark is written. */
  rows: ChunkRows | null;
  /** A truncate of the table was streamed in the window, or came before it unseen by the read: no row of the chunk is current. */
  truncated?: boolean;
  /** Transactions before the low watermark the read may not have seen (visibility.ts); set at the low watermark. */
  captured?: Captured | null;
  /** The chunk cannot be reconciled (visibility.ts): read it again instead of emitting it. */
  reread?: boolean;
  closed: () => void;
}

/** Rows emitted at a high watermark, waiting for every sink to hold them. */
interface Pending {
  snapshot: string;
  ti: number;
  ci: number;
  rows: number;
  txn: Position;
}

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
  /** With `snapshot.queue.redis`: chunks are BullMQ jobs that `--worker` processes share. */
  distributed?: { url: string };
  /**
   * Read and serialize chunks in worker threads (one per worker, up to the CPUs), when the
   * source supports it. Default false: on a 2-core machine the threads did not shorten a
   * snapshot (the database needs the second core too) and cost ~0.4 s more CPU.
   */
  threads?: boolean;
}

/** A refused control request, shaped as the admin API's coded replies: `{ error, code, fix }`. */
function refuse(status: number, code: ErrorCode, message: string, fix: string, extra: object = {}): { status: number; body: unknown } {
  return { status, body: { error: `${code} ${message}`, code, fix, ...extra } };
}

/**
 * Snapshots that run while streaming continues, chunk by chunk, with the DBLog watermark
 * algorithm (Andreakis & Papapanagiotou, arXiv 2010.12597):
 *
 * 1. write a low watermark into the change log;
 * 2. read the chunk's rows (keyset pagination on the primary key);
 * 3. write a high watermark.
 *
 * When the stream reaches the low watermark, the keys of every change to the table are
 * noted; when it reaches the high watermark, the chunk's rows whose key changed in between
 * are dropped (the streamed change is as new or newer) and the rest are inserted into the
 * stream right there, as `op: "r"` events of the high watermark's transaction. So a snapshot
 * row never overwrites a newer change, no lock is taken, the slot or binlog keeps being
 * consumed, and every chunk is independent: chunks run in parallel and a chunk is the unit
 * of resumption. A chunk counts as done once every sink has committed the high watermark's
 * transaction; that progress is persisted, and after a crash only unfinished chunks are
 * read again.
 */
export class SnapshotCoordinator {
  state: SnapshotState | null = null;
  private support?: SnapshotSupport;
  private readonly windows = new Map<string, Window>();
  /** Open windows (low watermark seen) by table, for the per-event dirty check. */
  private readonly openByTable = new Map<string, Window[]>();
  private pending: Pending[] = [];
  /** `onInitialOnlyDone` has been called (it must be, exactly once). */
  private initialOnlyNotified = false;
  private inflight = new Set<string>();
  private workers: Promise<void>[] = [];
  private readonly ac = new AbortController();
  /** When a chunk retry after a lost connection may be logged again (see retryWarning). */
  private quietUntil = 0;
  private wakers: (() => void)[] = [];
  private persisting: Promise<void> = Promise.resolve();
  /** The state write that has not started yet, if any (see `persist`). */
  private persistQueued: Promise<void> | null = null;
  /** Chunks marked done whose done flag no state write has stored yet. */
  private unpersisted = 0;
  private progress?: SnapshotProgress;
  /** High watermarks still to be processed in the current snapshot (for `"last"`). */
  private toEmit = 0;
  private closed?: Promise<void>;
  private queue?: ChunkQueue;
  /** While the rows of a remote chunk are fetched, later items wait here, in order. */
  blocked: Promise<void> | null = null;
  private backlog: SourceItem[] = [];
  /** The loop that finds the bounds of keyed chunks ahead of the workers, while it runs. */
  private planning: Promise<void> | null = null;
  private planner: ChunkPlanner | null = null;
  private started = false;
  /** Tables of the current snapshot with chunks still to come: their changes are remembered by transaction. */
  private readonly watched = new Map<string, SnapshotTable>();
  /** Streamed changes a chunk's read may not have seen although they precede its low watermark. */
  private readonly recent = new RecentTransactions();
  /** Errors retrying cannot fix, per table, while they last (the snapshot is `failed`). */
  private readonly failures = new SnapshotFailures();

  constructor(private readonly o: SnapshotOptions) {}

  /** A snapshot is reading (running, or failed and being tried again). */
  get active(): boolean {
    return SnapshotCoordinator.live(this.state);
  }

  /** Whether chunks of `s` are read: it runs, or it failed and is tried again with backoff. */
  private static live(s: SnapshotState | null): s is SnapshotState {
    return s?.status === 'running' || s?.status === 'failed';
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
    this.state = (await this.o.store.get<SnapshotState>(this.o.pipeline, STATE_KEY)) ?? null;
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
      this.warm();
      this.refreshWatched();
      this.o.logger.info({ snapshot: this.state.id, remaining: this.remainingChunks() }, 'resuming snapshot from its last durable chunk');
      this.toEmit = this.remainingChunks();
    }
  }

  /** True when `initial_only` has nothing (left) to do. */
  get initialOnlyComplete(): boolean {
    return this.o.mode === 'initial_only' && (!this.state || this.state.status === 'done');
  }

  /** Chunks found but not done (an open table has more to come). */
  private remainingChunks(): number {
    return this.state ? this.state.tables.reduce((n, t) => n + t.done.filter((d) => !d).length, 0) : 0;
  }

  /** Whether the chunks of a table are all found and all done. */
  private static tableDone(t: SnapshotState['tables'][number]): boolean {
    return !t.open && t.done.every(Boolean);
  }

  /** The tables whose changes are remembered by transaction: those of a live snapshot with chunks to come. */
  private refreshWatched(): void {
    this.watched.clear();
    const s = this.state;
    if (s && s.status !== 'done' && s.status !== 'cancelled') {
      for (const t of s.tables) if (!SnapshotCoordinator.tableDone(t)) this.watched.set(t.table.name, t.table);
    }
    if (!this.watched.size) this.recent.clear();
  }

  /** Plan and persist a snapshot of `tables` (all captured tables when null). */
  async begin(kind: 'initial' | 'incremental', tables: string[] | null, where: string | null): Promise<SnapshotState> {
    const support = this.snapshotSupport();
    this.warm();
    const list = await support.tables(tables ?? undefined);
    // A filter is vetted before anything is planned or persisted: a bad one is answered now
    // (400 with the database's message), not retried chunk after chunk.
    if (where !== null) for (const table of list) await support.checkFilter(table, where);
    const state: SnapshotState = { id: randomUUID(), kind, status: 'running', startedAt: Date.now(), tables: [] };
    for (const table of list) {
      if (table.keyKind === 'ctid') {
        // Block ranges come from the statistics in one cheap query: all of them up front.
        const chunks = await support.plan(table, this.o.chunkRows, where);
        state.tables.push({ table, where, chunks, done: chunks.map(() => false), rows: 0 });
      } else {
        // Keyed tables are cut as they are read (planLoop): no pass over the whole key
        // before the first row, which took as long as reading a few chunks.
        state.tables.push({ table, where, chunks: [], open: true, done: [], rows: 0 });
      }
    }
    this.state = state;
    this.pending = [];
    this.failures.clear();
    this.refreshWatched();
    this.toEmit = this.remainingChunks();
    await this.persist();
    this.o.logger.info({ snapshot: state.id, kind, tables: list.map((t) => t.name), where }, `snapshot started: ${list.length} table(s)`);
    this.o.metrics.set('tributary_snapshot_remaining_tables', list.length, { pipeline: this.o.pipeline });
    if (this.queue) await this.enqueuePending();
    this.kick();
    return state;
  }

  /** The source's support, with its readers in worker threads when it and the options allow. */
  private snapshotSupport(): SnapshotSupport {
    if (this.support) return this.support;
    const inner = this.o.source.snapshots!();
    const spec = this.o.threads === true ? inner.threadSpec?.() : undefined;
    this.support = spec ? new ThreadedSupport(inner, spec, Math.max(1, Math.min(this.o.workers, availableParallelism()))) : inner;
    return this.support;
  }

  /**
   * Start the reader threads and their connections now, while the pipeline is still
   * starting: a thread takes about as long to load its modules and connect as a few chunks
   * take to read.
   */
  private warm(): void {
    const s = this.snapshotSupport();
    if (s instanceof ThreadedSupport && this.o.workers > 0) s.warm(this.o.workers);
  }

  /** Start the workers (after the source runs, so watermarks flow). */
  async start(): Promise<void> {
    if (!this.o.source.snapshots) return;
    this.snapshotSupport();
    if (this.o.distributed) {
      const { ChunkQueue } = await import('./distributed.js');
      this.queue = new ChunkQueue(this.o.distributed.url, this.o.pipeline);
      await this.queue.reset();
      if (this.o.workers > 0) this.queue.work(this.snapshotSupport(), this.o.workers, this.o.logger);
      await this.enqueuePending();
      this.started = true;
      this.ensurePlanning();
      return;
    }
    this.started = true;
    for (let i = 0; i < this.o.workers; i++) this.workers.push(this.workerLoop(i));
    this.ensurePlanning();
  }

  /**
   * Find the next chunks' bounds in the background: one index probe per chunk, kept
   * `workers` chunks ahead of the workers (all of them in distributed mode, where every
   * chunk becomes a job at once). In distributed mode it waits for `start`, so no chunk is
   * both enqueued here and by `enqueuePending`.
   */
  private ensurePlanning(): void {
    if (this.planning || this.ac.signal.aborted || (!this.started && this.o.distributed)) return;
    if (!this.state?.tables.some((t) => t.open)) return;
    this.planning = this.planLoop().finally(() => {
      this.planning = null;
    });
  }

  /** The table whose next chunk is to be found now, or -1. */
  private tableToPlan(s: SnapshotState): number {
    const ti = s.tables.findIndex((t) => t.open);
    if (ti < 0 || this.queue) return ti;
    let ready = 0;
    s.tables.forEach((t, i) =>
      t.done.forEach((d, ci) => {
        if (!d && !this.inflight.has(`${s.id}:${i}:${ci}`) && !this.pending.some((p) => p.snapshot === s.id && p.ti === i && p.ci === ci)) ready++;
      }),
    );
    return ready < Math.max(1, this.o.workers) ? ti : -1;
  }

  /**
   * A failed chunk read or probe, retried each second. A lost database (the source link logs
   * the outage) is logged once a minute, not once per retry and worker; anything else every time.
   */
  private retryWarning(err: unknown, fields: Record<string, unknown>, msg: string): void {
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

  private async planLoop(): Promise<void> {
    const signal = this.ac.signal;
    for (;;) {
      const s = this.state;
      if (signal.aborted || !SnapshotCoordinator.live(s)) return;
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
        this.planner ??= await this.support!.planner();
        const hi = await this.planner.next(t.table, lo, this.o.chunkRows, t.where);
        // Cancelled, or another snapshot began, while the probe ran.
        if (this.state !== s || (s.status as SnapshotState['status']) === 'cancelled' || !t.open) continue;
        t.chunks.push({ lo, hi });
        t.done.push(false);
        if (hi === null) t.open = false;
        this.toEmit++;
        this.succeeded(`plan ${t.table.name}`);
        if (this.queue) await this.queue.enqueue([this.registerRemote(s, ti, t.chunks.length - 1)]);
        this.kick();
      } catch (err) {
        if (signal.aborted) return;
        await this.closePlanner();
        await sleep(this.failed(err, `plan ${t.table.name}`, 'cannot find the next snapshot chunk'), signal);
      }
    }
  }

  private async closePlanner(): Promise<void> {
    const p = this.planner;
    this.planner = null;
    await p?.close().catch(() => undefined);
  }

  /** Distributed mode: one job per unfinished chunk, its window registered first. */
  private async enqueuePending(): Promise<void> {
    const s = this.state;
    if (!this.queue || !s || s.status === 'done' || s.status === 'cancelled') return;
    const jobs: ChunkJob[] = [];
    s.tables.forEach((t, ti) =>
      t.chunks.forEach((chunk, ci) => {
        if (t.done[ci]) return;
        jobs.push(this.registerRemote(s, ti, ci));
      }),
    );
    await this.queue.enqueue(jobs);
    if (s.status === 'paused') await this.queue.pause();
  }

  private registerRemote(s: SnapshotState, ti: number, ci: number): ChunkJob {
    const t = s.tables[ti]!;
    const id = `${s.id}/${ti}/${ci}/${randomUUID().slice(0, 8)}`;
    this.windows.set(id, { id, ti, ci, table: t.table, dirty: null, rows: null, closed: () => undefined });
    return { pipeline: this.o.pipeline, windowId: id, table: t.table, chunk: t.chunks[ci]!, where: t.where };
  }

  /** Resolves once no remote chunk is being fetched. */
  async unblocked(): Promise<void> {
    while (this.blocked) await this.blocked;
  }

  private kick(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const fn of w) fn();
    this.ensurePlanning();
  }

  /** The next chunk no worker has and that is not done, or null. */
  private nextChunk(): { ti: number; ci: number } | null {
    const s = this.state;
    if (!SnapshotCoordinator.live(s)) return null;
    // A chunk stays at stake (read again after a crash) from its read until its done flag
    // is stored. Keeping at most one such chunk per worker bounds the rows a crash makes
    // us read twice, however far reading runs ahead of the sinks.
    if (this.inflight.size + this.pending.length + this.unpersisted >= this.o.workers) return null;
    for (let ti = 0; ti < s.tables.length; ti++) {
      const t = s.tables[ti]!;
      for (let ci = 0; ci < t.chunks.length; ci++) {
        if (!t.done[ci] && !this.inflight.has(`${s.id}:${ti}:${ci}`) && !this.pending.some((p) => p.snapshot === s.id && p.ti === ti && p.ci === ci)) return { ti, ci };
      }
    }
    return null;
  }

  /** Whether any chunk of a running snapshot is neither done nor taken. */
  private hasWork(): boolean {
    const s = this.state;
    if (!SnapshotCoordinator.live(s)) return false;
    return s.tables.some((t, ti) => t.open || t.done.some((d, ci) => !d && !this.inflight.has(`${s.id}:${ti}:${ci}`)));
  }

  private async workerLoop(n: number): Promise<void> {
    const signal = this.ac.signal;
    let reader: SnapshotReader | null = null;
    try {
      while (!signal.aborted) {
        const next = this.nextChunk();
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
        const s = this.state!;
        const tag = `${s.id}:${next.ti}:${next.ci}`;
        this.inflight.add(tag);
        this.ensurePlanning();
        // Failures and successes count per table and per step: finding bounds succeeding
        // says nothing about reading the rows.
        const table = `read ${s.tables[next.ti]!.table.name}`;
        try {
          reader ??= await this.support!.reader();
          await this.readChunk(reader, s, next.ti, next.ci);
          this.succeeded(table);
        } catch (err) {
          if (signal.aborted) break;
          // A new connection for the next try (a grant on a database reaches new sessions).
          await reader?.close();
          reader = null;
          await sleep(this.failed(err, table, `snapshot chunk ${next.ci} failed`, n), signal);
        } finally {
          this.inflight.delete(tag);
        }
      }
    } finally {
      await reader?.close();
    }
  }

  private async readChunk(reader: SnapshotReader, s: SnapshotState, ti: number, ci: number): Promise<void> {
    // A chunk that cannot be reconciled with the stream is read again, with new watermarks,
    // after a growing pause: the transaction it missed may still be in flight.
    for (let n = 0; (await this.readWindow(reader, s, ti, ci)).reread && !this.ac.signal.aborted && this.state === s && SnapshotCoordinator.live(s); n++) {
      this.o.logger.debug({ table: s.tables[ti]!.table.name, chunk: ci }, 'snapshot chunk read again: a transaction it did not see is no longer remembered');
      await sleep(Math.min(5000, 50 * 2 ** n), this.ac.signal);
    }
  }

  /** One chunk between its watermarks; resolves once the high watermark has been handled. */
  private async readWindow(reader: SnapshotReader, s: SnapshotState, ti: number, ci: number): Promise<Window> {
    const t = s.tables[ti]!;
    const id = `${s.id}/${ti}/${ci}/${randomUUID().slice(0, 8)}`;
    let closed!: () => void;
    const done = new Promise<void>((r) => (closed = r));
    const win: Window = { id, ti, ci, table: t.table, dirty: null, rows: null, closed };
    this.windows.set(id, win);
    try {
      await reader.watermark(id, 'low');
      const rows = await readRows(reader, t.table, t.chunks[ci]!, t.where);
      win.rows = rows;
      this.progress?.read(t.table.name, rows.keys.length, t.table.estimate);
      await reader.watermark(id, 'high');
      // Wait until the stream has passed the high watermark: that bounds memory to one
      // chunk per worker.
      let onAbort!: () => void;
      const aborted = new Promise<void>((r) => (onAbort = r));
      this.ac.signal.addEventListener('abort', onAbort, { once: true });
      try {
        await Promise.race([done, aborted]);
      } finally {
        this.ac.signal.removeEventListener('abort', onAbort);
      }
    } finally {
      if (this.windows.get(id) === win) this.closeWindow(win);
    }
    return win;
  }

  private closeWindow(win: Window): void {
    this.windows.delete(win.id);
    const list = this.openByTable.get(win.table.name);
    if (list) {
      const i = list.indexOf(win);
      if (i >= 0) list.splice(i, 1);
      if (!list.length) this.openByTable.delete(win.table.name);
    }
    win.closed();
  }

  /**
   * Every source item passes here on its way into the stream (synchronously, in log order).
   * Returns what `push` returned (backpressure).
   */
  intake(item: SourceItem): boolean {
    if (this.blocked) {
      this.backlog.push(item);
      return false;
    }
    if (item.kind === 'watermark') return this.onWatermark(item);
    if (item.kind === 'event' && (this.openByTable.size || this.watched.size)) this.noteChange(item);
    return this.o.push(item);
  }

  /**
   * A streamed change of a table with an open window or chunks to come: its keys become dirty
   * in every open window of the table, and are remembered by transaction (visibility.ts).
   */
  private noteChange(item: Extract<SourceItem, { kind: 'event' }>): void {
    const ev = item.event;
    const name = ev instanceof SerializedChangeEvent ? ev.table : qualifiedTable(ev);
    const wins = this.openByTable.get(name);
    const watched = item.xid === undefined ? undefined : this.watched.get(name);
    if (!wins && !watched) return;
    if (ev.op === 't') {
      // A truncate makes the whole chunk stale.
      if (wins) for (const w of wins) w.truncated = true;
      if (watched) this.recent.note(item.xid!, name, null, null, true);
      return;
    }
    const table = wins ? wins[0]!.table : watched!;
    const k1 = table.key.length ? keyString(table, ev.key ?? ev.after ?? ev.before) : keyString(table, ev.after);
    const k2 = keyString(table, ev.before);
    if (wins) {
      for (const w of wins) {
        if (k1) w.dirty!.add(k1);
        if (k2) w.dirty!.add(k2);
      }
    }
    if (watched) this.recent.note(item.xid!, name, k1, k2);
  }

  private onWatermark(item: Extract<SourceItem, { kind: 'watermark' }>): boolean {
    const win = this.windows.get(item.id);
    const vis = item.visibility;
    if (item.mark === 'low') {
      // Transactions the low watermark's snapshot saw are seen by every later read: forget
      // them, then give the window the ones still in flight (visibility.ts).
      if (vis) this.recent.prune(vis);
      if (!win) return true; // from an earlier run, another pipeline, or cancelled: nothing to do
      win.dirty = new Set();
      win.captured = vis ? this.recent.capture(win.table.name) : null;
      const list = this.openByTable.get(win.table.name);
      if (list) list.push(win);
      else this.openByTable.set(win.table.name, [win]);
      return true;
    }
    if (win?.captured && win.dirty && vis) {
      // Changes before the low watermark that the chunk's read did not see win over its rows.
      const r = RecentTransactions.resolve(win.captured, vis);
      for (const k of r.keys) win.dirty.add(k);
      if (r.truncate) win.truncated = true;
      if (r.reread) win.reread = true;
    }
    if (vis) this.recent.prune(vis);
    if (!win) return true;
    const s = this.state;
    if (s && win.dirty && !win.rows && this.queue) {
      // A worker elsewhere read this chunk and left the rows in Redis: fetch them, holding
      // every later item back so the log order is kept.
      this.blocked = this.fetchRemote(win, item);
      return false;
    }
    if (!s || !win.rows || !win.dirty) {
      this.closeWindow(win);
      return true;
    }
    return this.emitChunk(s, win, item);
  }

  private async fetchRemote(win: Window, item: Extract<SourceItem, { kind: 'watermark' }>): Promise<void> {
    try {
      const { takeChunkRows } = await import('./distributed.js');
      win.rows = await takeChunkRows(this.queue!.redis, this.o.pipeline, win.id);
      this.progress?.read(win.table.name, win.rows.keys.length, win.table.estimate);
    } catch (err) {
      this.o.logger.warn({ err, table: win.table.name, chunk: win.ci }, `cannot fetch a snapshot chunk's rows; reading the chunk again: ${errorMessage(err)}`);
      win.rows = null;
    }
    this.blocked = null;
    const s = this.state!;
    if (win.rows) this.emitChunk(s, win, item);
    else {
      this.closeWindow(win);
      void this.queue!.enqueue([this.registerRemote(s, win.ti, win.ci)]);
    }
    const q = this.backlog;
    this.backlog = [];
    for (const it of q) this.intake(it);
  }

  private emitChunk(s: SnapshotState, win: Window, item: Extract<SourceItem, { kind: 'watermark' }>): boolean {
    if (win.reread) {
      this.closeWindow(win);
      // Its worker reads it again (readChunk); a remote chunk becomes a job again.
      if (this.queue) void this.queue.enqueue([this.registerRemote(s, win.ti, win.ci)]);
      return true;
    }
    if (win.truncated) win.rows = emptyChunk();
    const t = s.tables[win.ti]!;
    const flag = s.kind === 'incremental' ? 'incremental' : 'true';
    const last = s.kind === 'initial' && this.toEmit === 1 && !s.tables.some((x) => x.open);
    // Rows arrive serialized and leave as serialized envelopes: the stream never stringifies
    // a snapshot row again.
    const serialize = this.o.source.snapshotEvent!.chunk(win.table, item.at, Date.now());
    const { rows, keys, bytes } = win.rows!;
    const dirty = win.dirty!;
    // Rows whose key changed inside the window are dropped: the streamed change is as new
    // or newer. The final emitted row of an initial snapshot carries "last".
    let end = keys.length;
    if (last) while (end > 0 && dirty.has(keys[end - 1]!)) end--;
    let ok = true;
    let idx = item.idx + 1;
    let n = 0;
    const { push } = this.o;
    for (let i = 0; i < end; i++) {
      const key = keys[i]!;
      if (dirty.size && dirty.has(key)) continue;
      const f = last && i === end - 1 ? 'last' : flag;
      ok = push({ kind: 'event', event: bytes ? serialize.bytes(bytes, i, f) : serialize(rows[i]!, key, f), txn: item.txn, idx: idx++ }) && ok;
      n++;
    }
    this.toEmit = Math.max(0, this.toEmit - 1);
    this.pending.push({ snapshot: s.id, ti: win.ti, ci: win.ci, rows: n, txn: item.txn });
    this.o.metrics.inc('tributary_snapshot_rows_total', n, { pipeline: this.o.pipeline, table: t.table.name });
    this.closeWindow(win);
    return ok;
  }

  /** Every sink holds everything up to `position`: mark those chunks done, persist. */
  onDurable(position: Position): void {
    const s = this.state;
    if (!s || !this.pending.length) return;
    const stillPending: Pending[] = [];
    let changed = false;
    for (const p of this.pending) {
      if (p.snapshot === s.id && p.txn.compare(position) <= 0) {
        const t = s.tables[p.ti]!;
        if (!t.done[p.ci]) {
          t.done[p.ci] = true;
          this.unpersisted++;
          t.rows += p.rows;
          changed = true;
          if (SnapshotCoordinator.tableDone(t)) {
            this.o.logger.info({ snapshot: s.id, table: t.table.name, rows: t.rows }, `snapshot of ${t.table.name} done: ${t.rows} rows`);
            this.progress?.tableDone(t.table.name, t.rows);
          }
        }
      } else if (p.snapshot === s.id) stillPending.push(p);
    }
    this.pending = stillPending;
    if (!changed) return;
    this.refreshWatched();
    const remainingTables = s.tables.filter((t) => !SnapshotCoordinator.tableDone(t)).length;
    this.o.metrics.set('tributary_snapshot_remaining_tables', remainingTables, { pipeline: this.o.pipeline });
    if (remainingTables === 0 && SnapshotCoordinator.live(s)) {
      s.status = 'done';
      delete s.error;
      this.failures.clear();
      s.finishedAt = Date.now();
      const rows = s.tables.reduce((n, t) => n + t.rows, 0);
      this.o.logger.info({ snapshot: s.id, rows, seconds: (s.finishedAt - s.startedAt) / 1000 }, `snapshot completed: ${rows} rows in ${s.tables.length} table(s)`);
      this.progress?.stop();
    }
    void this.persist().then(() => {
      // Completions that arrive while a state write is in flight share the next, coalesced
      // write, and each looks at the status once it resolves: tell the pipeline only once.
      if (s.status === 'done' && this.o.mode === 'initial_only' && s.kind === 'initial' && !this.initialOnlyNotified) {
        this.initialOnlyNotified = true;
        this.o.onInitialOnlyDone();
      }
    });
  }

  /**
   * Write the state after any write in progress. Writes that have not started yet coalesce:
   * the queued one copies the state when it starts, so it carries every change made while it
   * waited. Done flags then reach the store one write after the sinks commit, however fast
   * chunks complete, which keeps the rows re-read after a crash few.
   */
  private persist(): Promise<void> {
    if (this.persistQueued) return this.persistQueued;
    const write = this.persisting
      .catch(() => undefined)
      .then(async () => {
        this.persistQueued = null;
        const stored = this.unpersisted;
        const snap = this.state ? JSON.parse(JSON.stringify(this.state)) : null;
        try {
          if (snap) await this.o.store.put(this.o.pipeline, STATE_KEY, snap);
        } catch (err) {
          // Workers wait for these flags: try again soon (the next write carries them too).
          this.o.logger.warn({ err }, `cannot store snapshot progress, retrying: ${errorMessage(err)}`);
          setTimeout(() => void this.persist().catch(() => undefined), 1000).unref();
          throw err;
        }
        this.unpersisted -= stored;
        this.kick();
      });
    this.persistQueued = write;
    this.persisting = write;
    return write;
  }

  /** `tributary snapshot`: start, pause, resume or cancel. */
  async control(action: 'start' | 'pause' | 'resume' | 'cancel', table: string | null, where: string | null): Promise<{ status: number; body: unknown }> {
    if (!this.o.source.snapshots) return refuse(400, ErrorCodes.SNAPSHOT_UNSUPPORTED, 'this source cannot snapshot', 'snapshot a table of a pipeline whose source supports snapshots');
    const s = this.state;
    switch (action) {
      case 'start': {
        if (s && s.status !== 'done' && s.status !== 'cancelled') {
          return refuse(409, ErrorCodes.SNAPSHOT_BUSY, `snapshot ${s.id} is ${s.status}; cancel it or wait for it to finish`, '`tributary snapshot --cancel`, or wait until `tributary status` shows it done', { snapshot: this.summary() });
        }
        try {
          const st = await this.begin('incremental', table ? [table] : null, where);
          return { status: 202, body: { started: st.id, snapshot: this.summary() } };
        } catch (err) {
          const coded = err instanceof TributaryError ? { code: err.code, fix: err.fix } : {};
          return { status: 400, body: { error: err instanceof TributaryError ? `${err.code} ${err.message}` : errorMessage(err), ...coded } };
        }
      }
      case 'pause':
      case 'resume':
      case 'cancel': {
        if (!s || s.status === 'done' || s.status === 'cancelled') return refuse(404, ErrorCodes.SNAPSHOT_NONE, 'no snapshot is running', 'start one first (`tributary snapshot --table …`)');
        s.status = action === 'pause' ? 'paused' : action === 'resume' ? 'running' : 'cancelled';
        // The failure is tried again on resume; a pause or cancel ends the report of it.
        delete s.error;
        this.failures.clear();
        if (this.queue) {
          if (action === 'pause') await this.queue.pause();
          else if (action === 'resume') await this.queue.resume();
          else await this.queue.drain();
        }
        if (action === 'cancel') {
          for (const w of [...this.windows.values()]) this.closeWindow(w);
          this.pending = [];
          this.o.logger.warn({ snapshot: s.id }, 'snapshot cancelled');
          this.progress?.stop();
        } else this.o.logger.info({ snapshot: s.id }, `snapshot ${action}d`);
        this.refreshWatched();
        await this.persist();
        this.kick();
        return { status: 200, body: { snapshot: this.summary() } };
      }
    }
  }

  /** For `/status` and `tributary status`. */
  summary(): Record<string, unknown> | null {
    const s = this.state;
    if (!s) return null;
    return {
      id: s.id,
      kind: s.kind,
      status: s.status,
      startedAt: new Date(s.startedAt).toISOString(),
      finishedAt: s.finishedAt ? new Date(s.finishedAt).toISOString() : null,
      error: s.error ?? null,
      tables: s.tables.map((t) => ({
        table: t.table.name,
        where: t.where,
        chunksDone: t.done.filter(Boolean).length,
        chunks: t.chunks.length,
        rows: t.rows,
        estimate: t.table.estimate,
      })),
    };
  }

  /** Show progress bars (terminal) or periodic log lines. */
  showProgress(): void {
    this.progress ??= new SnapshotProgress(this.o.logger);
  }

  /**
   * A chunk or bound of `table` failed: returns how long to wait before trying again. An error
   * retrying cannot fix by itself (not retryable) marks the snapshot `failed`, with the error
   * stored and logged once, but it is not given up: it is tried again with growing delays
   * (up to a minute) and goes on once the cause is fixed. Other errors are retried in a second.
   */
  private failed(err: unknown, step: string, what: string, worker?: number): number {
    const s = this.state;
    if (!(err instanceof TributaryError) || err.retryable || !SnapshotCoordinator.live(s)) {
      // A lost database is logged once a minute, not per worker per second.
      this.retryWarning(err, { worker, err, step }, `${what}, retrying: ${errorMessage(err)}`);
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
      void this.persist().catch(() => undefined);
    }
    return delayMs;
  }

  /** `step` (reading or cutting a table's chunks) succeeded: a failed snapshot whose last failing step this was runs again. */
  private succeeded(step: string): void {
    const s = this.state;
    if (!this.failures.succeed(step) || s?.status !== 'failed') return;
    this.o.logger.info({ snapshot: s.id, error: s.error?.code }, 'snapshot recovered: reading again');
    s.status = 'running';
    delete s.error;
    void this.persist().catch(() => undefined);
  }

  close(): Promise<void> {
    return (this.closed ??= (async () => {
      this.ac.abort();
      this.kick();
      for (const w of [...this.windows.values()]) this.closeWindow(w);
      await Promise.allSettled(this.workers);
      await this.planning?.catch(() => undefined);
      await this.closePlanner();
      await this.queue?.close();
      if (this.support instanceof ThreadedSupport) await this.support.close();
      await this.persisting.catch(() => undefined);
      this.progress?.stop();
    })());
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
