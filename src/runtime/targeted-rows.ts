import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Log offsets [from, to) that hold snapshot rows read for one sink alone, events of transaction `txn`. */
export interface TargetedRange {
  sink: string;
  from: number;
  to: number;
  /** The high watermark's transaction (serialized position) the rows belong to. */
  txn: string;
}

/**
 * Where in the log the rows of targeted snapshots are: `<log dir>/targeted.json`.
 *
 * A sink that fell off the start of the log, where the compacted state does not cover it
 * either, is given a snapshot from the source for itself alone (pipeline.ts). Its rows go
 * into the log like any snapshot's (`r` events of the high watermark's transaction: they are
 * true rows, so compaction, time travel and `log read` use them as they are), but every other
 * sink skips them: they already hold those rows. This file says which offsets to skip.
 *
 * A range is written (fsynced, renamed) before its rows are appended, so no sink can read a
 * targeted row without knowing it is one, even after a crash. A crash can also leave a range
 * whose rows never became durable: the offsets are then taken by other records after the
 * restart, so a range names its transaction too, and only events of that transaction in it
 * are skipped (the writer also drops such ranges when it opens the log, {@link truncate}).
 * Ranges below the start of the log are dropped when the next one is written.
 */
export class TargetedRows {
  private ranges: TargetedRange[] = [];
  /** The file's identity when last read (see {@link refresh}). */
  private seen = '';

  private constructor(
    private readonly dir: string,
    private readonly follows: boolean,
  ) {}

  /**
   * The ranges stored in log directory `dir` (none when the file is missing). With `follow`,
   * for a process that reads a log another process writes (`run --role sinks`): the writer
   * adds ranges while it runs, and {@link refresh} takes them.
   */
  static load(dir: string, opts: { follow?: boolean } = {}): TargetedRows {
    const t = new TargetedRows(dir, !!opts.follow);
    t.read();
    return t;
  }

  private read(): void {
    const path = join(this.dir, 'targeted.json');
    try {
      // Identity first: a file replaced between the stat and the read is read again next time.
      this.seen = identity(path);
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as { ranges?: TargetedRange[] };
      this.ranges = (parsed.ranges ?? []).filter((r) => typeof r.sink === 'string' && typeof r.txn === 'string' && Number.isFinite(r.from) && Number.isFinite(r.to));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.ranges = [];
      // Any other failure keeps the ranges known so far (forgetting them would hand a sink
      // another sink's snapshot rows), and the next refresh reads again.
      else this.seen = '';
    }
  }

  /**
   * A following reader takes the writer's latest ranges. Call it after reading entries from
   * the log and before deciding which to skip: the writer stores a range (renamed into place)
   * before it appends the range's rows, so once a row is readable its range is in the file.
   * One stat when nothing changed.
   */
  refresh(): void {
    if (this.follows && identity(join(this.dir, 'targeted.json')) !== this.seen) this.read();
  }

  get empty(): boolean {
    return this.ranges.length === 0;
  }

  /** A copy of the ranges, oldest first. */
  list(): TargetedRange[] {
    return this.ranges.map((r) => ({ ...r }));
  }

  /**
   * Record that offsets [from, to) will hold rows for `sink` alone, durably, before they are
   * appended. Synchronous on purpose: the rows are appended right after, in log order.
   */
  add(sink: string, from: number, to: number, txn: string, logStart: number): void {
    if (to <= from) return;
    const last = this.ranges[this.ranges.length - 1];
    if (last && last.sink === sink && last.txn === txn && last.to === from) last.to = to;
    else this.ranges.push({ sink, from, to, txn });
    this.ranges = this.ranges.filter((r) => r.to > logStart);
    this.store();
  }

  /**
   * The log was recovered and holds [start, end): ranges past its end held rows that never
   * became durable (their transaction's commit did not reach the log), and ranges before its
   * start were removed by retention; both are dropped.
   */
  truncate(start: number, end: number): void {
    const keep = this.ranges.filter((r) => r.from < end && r.to > start);
    if (keep.length === this.ranges.length) return;
    this.ranges = keep;
    this.store();
  }

  private store(): void {
    const path = join(this.dir, 'targeted.json');
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify({ ranges: this.ranges }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const d = openSync(this.dir, 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  }

  /** True when the event at `offset`, of transaction `txn`, is a targeted row of another sink than `sink`. */
  skips(offset: number, sink: string, txn: { serialize(): string }): boolean {
    // Ranges are appended in log order and never overlap: binary search on `from`.
    const rs = this.ranges;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = rs[mid]!;
      if (offset < r.from) hi = mid - 1;
      else if (offset >= r.to) lo = mid + 1;
      else return r.sink !== sink && txn.serialize() === r.txn;
    }
    return false;
  }
}

/** Inode, size and change time: a rename over the file, or a rewrite, changes it. */
function identity(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return '';
  }
}
