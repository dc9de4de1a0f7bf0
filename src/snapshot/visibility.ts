/**
 * Reconciling snapshot chunks with transactions whose commit precedes the chunk's low
 * watermark in the log but which the chunk's read did not see.
 *
 * Commit order in a change log is not visibility order. Postgres writes a transaction's
 * commit record, flushes it, waits for synchronous standbys, and only then removes the
 * transaction from the ProcArray; until that moment new snapshots treat it as running. A
 * chunk whose low watermark commits in that gap, and whose read starts before the gap ends,
 * reads the rows as they were before that transaction, although its change sits before the
 * low watermark in the WAL and so never reaches the window's dirty set. Emitted at the high
 * watermark, the chunk's old row would then overwrite the newer change in every sink.
 *
 * The database tells which transactions a snapshot saw: `pg_current_snapshot()` gives xmin,
 * xmax and the list of transactions in progress (xip). A transaction with an xid in xip, or at
 * or above xmax, was not visible to it. So:
 *
 * - every streamed change to a table being snapshotted is remembered with its transaction's
 *   xid ({@link RecentTransactions.note});
 * - every watermark carries a snapshot taken before it committed (the low one, its own; the
 *   high one, the chunk's read snapshot). A transaction that snapshot saw has left the
 *   ProcArray for good, and every later chunk read (which starts after a later watermark
 *   committed) sees it too: it is forgotten ({@link RecentTransactions.prune}). What remains is
 *   the handful of transactions that were still in flight;
 * - at the low watermark, a window takes the remembered transactions of its table
 *   ({@link RecentTransactions.capture});
 * - at the high watermark, the keys of those transactions that the chunk's read snapshot did
 *   not see are dirty too: the streamed change wins over the chunk's row, exactly as for a
 *   change inside the window ({@link RecentTransactions.resolve}).
 *
 * Memory: between two watermarks the remembered keys grow with the changes streamed, and are
 * capped ({@link RecentTransactions} `maxKeys`). Past the cap the oldest transactions' keys are
 * dropped and only the range of their xids is kept; a chunk whose read snapshot did not see
 * some xid of that range cannot be reconciled and is read again.
 *
 * Pure: no I/O. Xids are the 32-bit transaction ids of the log (pgoutput's Begin), compared
 * modulo 2^32 as Postgres compares them.
 */

/** What a database snapshot saw: transactions below `xmin` all finished; `xip` were running. */
export interface TxnSnapshot {
  xmin: number;
  xmax: number;
  /** Transactions in progress when the snapshot was taken (xmin ≤ xid < xmax). */
  xip: number[];
}

/** `a` comes before `b` in 32-bit xid order (wraparound-aware, like Postgres' TransactionIdPrecedes). */
export function xidPrecedes(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Whether the transaction `xid`, known to have committed, was visible to snapshot `s`. */
export function visibleIn(s: TxnSnapshot, xid: number): boolean {
  if (!xidPrecedes(xid, s.xmax)) return false;
  if (xidPrecedes(xid, s.xmin)) return true;
  return !s.xip.includes(xid);
}

/** The changes of one transaction to one table: row keys (see `keyString`), or a truncate. */
interface TableChanges {
  keys: string[];
  truncate: boolean;
}

/** A window's share of the remembered transactions, taken at its low watermark. */
export interface Captured {
  txns: { xid: number; changes: TableChanges }[];
  /** Xids whose keys were dropped at the cap (inclusive range), if any. */
  lost: { lo: number; hi: number } | null;
}

/** What a chunk must give way to, from transactions before its low watermark that its read did not see. */
export interface Resolution {
  /** Keys whose chunk rows must be dropped. */
  keys: string[];
  /** A truncate the read did not see: every row of the chunk is stale. */
  truncate: boolean;
  /** Some transaction of the dropped range was not seen: the chunk cannot be reconciled; read it again. */
  reread: boolean;
}

/**
 * The recently streamed changes of tables being snapshotted, by transaction, kept only while
 * some snapshot might still not see them (see the module comment).
 */
export class RecentTransactions {
  /** xid → table → changes, in stream order (a Map iterates in insertion order). */
  private readonly txns = new Map<number, Map<string, TableChanges>>();
  private keyCount = 0;
  /** The xid range of transactions dropped at the cap and not yet known visible. */
  private lost: { lo: number; hi: number } | null = null;

  constructor(private readonly maxKeys = 100_000) {}

  /** Keys held (for tests and metrics). */
  get size(): number {
    return this.keyCount;
  }

  /** Whether anything is remembered (or was dropped at the cap). */
  get empty(): boolean {
    return this.txns.size === 0 && !this.lost;
  }

  /** A streamed change of transaction `xid` to `table`: its row keys (null entries are skipped), or a truncate. */
  note(xid: number, table: string, k1: string | null, k2: string | null, truncate = false): void {
    // The rest of a transaction dropped at the cap: its xid is in the lost range already.
    if (xid === this.droppedXid) return;
    let byTable = this.txns.get(xid);
    if (!byTable) this.txns.set(xid, (byTable = new Map()));
    let c = byTable.get(table);
    if (!c) byTable.set(table, (c = { keys: [], truncate: false }));
    if (truncate) c.truncate = true;
    if (k1 !== null) {
      c.keys.push(k1);
      this.keyCount++;
    }
    if (k2 !== null && k2 !== k1) {
      c.keys.push(k2);
      this.keyCount++;
    }
    if (this.keyCount > this.maxKeys) this.evict();
  }

  /** The last transaction dropped at the cap (its later changes are not noted). */
  private droppedXid: number | null = null;

  /**
   * Drops the oldest transactions down to half the cap (the one being received too, when it
   * alone is that large), keeping only the range of their xids.
   */
  private evict(): void {
    for (const [xid, byTable] of this.txns) {
      if (this.keyCount <= this.maxKeys / 2) break;
      for (const c of byTable.values()) this.keyCount -= c.keys.length;
      this.txns.delete(xid);
      this.droppedXid = xid;
      const l = this.lost;
      this.lost = !l ? { lo: xid, hi: xid } : { lo: xidPrecedes(xid, l.lo) ? xid : l.lo, hi: xidPrecedes(l.hi, xid) ? xid : l.hi };
    }
  }

  /**
   * A snapshot taken before the point of the log reached now (a watermark's): forget every
   * transaction it saw. Later chunk reads start after that point, so they see them too.
   */
  prune(s: TxnSnapshot): void {
    for (const [xid, byTable] of this.txns) {
      if (!visibleIn(s, xid)) continue;
      for (const c of byTable.values()) this.keyCount -= c.keys.length;
      this.txns.delete(xid);
    }
    if (this.lost && !rangeMayBeInvisible(s, this.lost)) this.lost = null;
  }

  /** At a low watermark (after its `prune`): what a window on `table` must check at its high one. */
  capture(table: string): Captured {
    const txns: Captured['txns'] = [];
    for (const [xid, byTable] of this.txns) {
      const c = byTable.get(table);
      if (c) txns.push({ xid, changes: c });
    }
    return { txns, lost: this.lost ? { ...this.lost } : null };
  }

  /** At the high watermark: what of `captured` the chunk's read snapshot `read` did not see. */
  static resolve(captured: Captured, read: TxnSnapshot): Resolution {
    const keys: string[] = [];
    let truncate = false;
    for (const { xid, changes } of captured.txns) {
      if (visibleIn(read, xid)) continue;
      for (const k of changes.keys) keys.push(k);
      if (changes.truncate) truncate = true;
    }
    return { keys, truncate, reread: !!captured.lost && rangeMayBeInvisible(read, captured.lost) };
  }

  /** Forget everything (no snapshot is running). */
  clear(): void {
    this.txns.clear();
    this.droppedXid = null;
    this.keyCount = 0;
    this.lost = null;
  }
}

/** Whether some xid in [lo, hi] may have been invisible to `s`. */
function rangeMayBeInvisible(s: TxnSnapshot, r: { lo: number; hi: number }): boolean {
  if (!xidPrecedes(r.hi, s.xmax)) return true;
  return s.xip.some((x) => !xidPrecedes(x, r.lo) && !xidPrecedes(r.hi, x));
}
