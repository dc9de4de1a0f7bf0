import type { ChangeEvent } from '../core/event.js';
import { emptyChunk, keyString, type ChunkRows, type SnapshotTable } from './types.js';
import { RecentTransactions, type Captured, type TxnSnapshot } from './visibility.js';

/**
 * The DBLog window logic: which rows of a chunk may go into the stream at its high watermark.
 *
 * A chunk is read between a low and a high watermark that the reader writes into the change
 * log. The coordinator hands this tracker every log item in log order (`low`, `change`,
 * `high`), plus the chunk's rows once they are read (`rows`, always before the high watermark
 * is written). At the high watermark the tracker answers with the rows to emit there: the
 * chunk's rows minus every key that a streamed change may have made stale.
 *
 * A row is stale when its key was changed by
 *
 * - a change inside the window (between the low and the high watermark in the log): the read
 *   may or may not have seen it, but its own event is in the stream either way;
 * - a change before the low watermark that the chunk's read did not see (Postgres: commit
 *   order is not visibility order; see visibility.ts). These are known from the watermarks'
 *   transaction snapshots (`vis`): the low one's says which remembered transactions were
 *   still in flight, the high one's (the read's own snapshot) which of those the read missed.
 *
 * A truncate in either place makes every row of the chunk stale; a chunk that cannot be
 * reconciled (the remembered transactions were capped and the read may have missed one of
 * the dropped ones) must be read again.
 *
 * Pure: no I/O, no clock, no timers. Windows carry an opaque `meta` for the caller (which
 * chunk, who waits for it), handed back when the window closes.
 */
export class WindowTracker<M> {
  private readonly windows = new Map<string, Window<M>>();
  /** Open windows (low watermark seen) by table: the per-event dirty check. */
  private readonly openByTable = new Map<string, Window<M>[]>();
  /** Tables with chunks still to come: their changes are remembered by transaction. */
  private readonly watched = new Map<string, SnapshotTable>();
  private readonly recent: RecentTransactions;
  private readonly onClose: (meta: M, reread: boolean) => void;

  /**
   * @param opts.onClose called once for every window that closes, however it closes (emitted,
   *   to be read again, dropped, or closed by the caller); `reread` is true when its chunk must
   *   be read again.
   * @param opts.maxKeys the cap on remembered keys (visibility.ts; tests make it small).
   */
  constructor(opts: { onClose?: (meta: M, reread: boolean) => void; maxKeys?: number } = {}) {
    this.onClose = opts.onClose ?? (() => undefined);
    this.recent = new RecentTransactions(opts.maxKeys);
  }

  /** Whether a streamed change can matter now: the cheap test before {@link change}. */
  get watching(): boolean {
    return this.openByTable.size > 0 || this.watched.size > 0;
  }

  /** Windows registered and not yet closed. */
  get size(): number {
    return this.windows.size;
  }

  /**
   * The tables of a running snapshot that still have chunks to come. Changes to them are
   * remembered by transaction, since a later chunk's read may not see them although they
   * precede its low watermark. With none, everything remembered is forgotten.
   */
  watch(tables: Iterable<SnapshotTable>): void {
    this.watched.clear();
    for (const t of tables) this.watched.set(t.name, t);
    if (!this.watched.size) this.recent.clear();
  }

  /** A window the caller is about to open: register it before its low watermark is written. */
  open(id: string, table: SnapshotTable, meta: M): void {
    this.windows.set(id, { id, table, meta, dirty: null, rows: null, truncated: false, captured: null, reread: false });
  }

  /**
   * A low watermark reached the stream. `vis`: the transactions its own snapshot saw (absent
   * where the source has none). Returns whether the window is one of ours (not one of an
   * earlier run, of another pipeline, or closed since).
   */
  low(id: string, vis?: TxnSnapshot): boolean {
    // Transactions the low watermark's snapshot saw are seen by every later read: forget them,
    // then give the window the ones still in flight.
    if (vis) this.recent.prune(vis);
    const win = this.windows.get(id);
    if (!win) return false;
    if (win.dirty) return true; // seen already
    win.dirty = new Set();
    win.captured = vis ? this.recent.capture(win.table.name) : null;
    const list = this.openByTable.get(win.table.name);
    if (list) list.push(win);
    else this.openByTable.set(win.table.name, [win]);
    return true;
  }

  /**
   * A streamed change of `table` (in log order), from transaction `xid` when the source gives
   * one. Its keys (see `keyString`: the key of the row after and before the change) become
   * dirty in every open window of the table, and are remembered by transaction while the
   * table has chunks to come. A truncate makes every open window of the table stale.
   */
  change(table: string, xid: number | undefined, ev: Pick<ChangeEvent, 'op' | 'key' | 'after' | 'before'>): void {
    const wins = this.openByTable.get(table);
    const watched = xid === undefined ? undefined : this.watched.get(table);
    if (!wins && !watched) return;
    if (ev.op === 't') {
      if (wins) for (const w of wins) w.truncated = true;
      if (watched) this.recent.note(xid!, table, null, null, true);
      return;
    }
    const t = wins ? wins[0]!.table : watched!;
    const k1 = t.key.length ? keyString(t, ev.key ?? ev.after ?? ev.before) : keyString(t, ev.after);
    const k2 = keyString(t, ev.before);
    if (wins) {
      for (const w of wins) {
        if (k1) w.dirty!.add(k1);
        if (k2) w.dirty!.add(k2);
      }
    }
    if (watched) this.recent.note(xid!, table, k1, k2);
  }

  /** The chunk's rows, read between its watermarks. Returns whether the window is still open. */
  rows(id: string, rows: ChunkRows): boolean {
    const win = this.windows.get(id);
    if (win) win.rows = rows;
    return !!win;
  }

  /**
   * A high watermark reached the stream. `vis`: the snapshot the chunk's rows were read in
   * (absent where the source has none). Every outcome but `awaiting-rows` closes the window.
   */
  high(id: string, vis?: TxnSnapshot): HighOutcome<M> {
    const win = this.windows.get(id);
    if (win?.captured && win.dirty && vis) {
      // Changes before the low watermark that the chunk's read did not see win over its rows.
      const r = RecentTransactions.resolve(win.captured, vis);
      for (const k of r.keys) win.dirty.add(k);
      if (r.truncate) win.truncated = true;
      if (r.reread) win.reread = true;
    }
    if (vis) this.recent.prune(vis);
    if (!win) return UNKNOWN;
    if (!win.dirty) {
      // Its low watermark was never seen: nothing can be reconciled.
      this.closeWindow(win);
      return { kind: 'dropped', meta: win.meta };
    }
    if (!win.rows) return { kind: 'awaiting-rows', meta: win.meta };
    return this.settle(win);
  }

  /**
   * After `awaiting-rows`: the rows have been handed over with {@link rows}; decide now. Unknown
   * when the window was closed meanwhile, or still has no rows.
   */
  finish(id: string): HighOutcome<M> {
    const win = this.windows.get(id);
    if (!win?.dirty || !win.rows) return UNKNOWN;
    return this.settle(win);
  }

  /** Close one window (its chunk is abandoned: a failed read, a fetch that failed). Returns whether it was open. */
  close(id: string): boolean {
    const win = this.windows.get(id);
    if (win) this.closeWindow(win);
    return !!win;
  }

  /** Close every window (a cancel, or shutting down). */
  closeAll(): void {
    for (const w of [...this.windows.values()]) this.closeWindow(w);
  }

  private settle(win: Window<M>): HighOutcome<M> {
    this.closeWindow(win);
    if (win.reread) return { kind: 'reread', meta: win.meta };
    const rows = win.truncated ? emptyChunk() : win.rows!;
    const dirty = win.dirty!;
    const keys = rows.keys;
    const emit: number[] = [];
    for (let i = 0; i < keys.length; i++) if (!dirty.size || !dirty.has(keys[i]!)) emit.push(i);
    return { kind: 'emit', meta: win.meta, rows, emit };
  }

  private closeWindow(win: Window<M>): void {
    if (!this.windows.delete(win.id)) return;
    const list = this.openByTable.get(win.table.name);
    if (list) {
      const i = list.indexOf(win);
      if (i >= 0) list.splice(i, 1);
      if (!list.length) this.openByTable.delete(win.table.name);
    }
    this.onClose(win.meta, win.reread);
  }
}

/** What a high watermark means for its chunk. */
export type HighOutcome<M> =
  /** Not a window of ours (an earlier run's, another pipeline's, or closed since): nothing to do. */
  | { kind: 'unknown' }
  /** Its low watermark was never seen: closed, nothing emitted. */
  | { kind: 'dropped'; meta: M }
  /** Still open: its rows were read elsewhere (distributed mode); hand them over, then {@link WindowTracker.finish}. */
  | { kind: 'awaiting-rows'; meta: M }
  /** Closed: it cannot be reconciled with the stream; read the chunk again with new watermarks. */
  | { kind: 'reread'; meta: M }
  /** Closed: emit `rows` at the high watermark, those at the indexes `emit` (ascending), and no others. */
  | { kind: 'emit'; meta: M; rows: ChunkRows; emit: number[] };

const UNKNOWN: HighOutcome<never> = { kind: 'unknown' };

/** A chunk between its low and high watermark. */
interface Window<M> {
  id: string;
  table: SnapshotTable;
  meta: M;
  /** Keys changed by streamed events since the low watermark; null until it is seen. */
  dirty: Set<string> | null;
  /** The rows read; set before the high watermark is written. */
  rows: ChunkRows | null;
  /** A truncate of the table was streamed in the window, or came before it unseen by the read: no row of the chunk is current. */
  truncated: boolean;
  /** Transactions before the low watermark the read may not have seen (visibility.ts); set at the low watermark. */
  captured: Captured | null;
  /** The chunk cannot be reconciled (visibility.ts): read it again instead of emitting it. */
  reread: boolean;
}
