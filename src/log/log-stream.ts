import { SerializedChangeEvent, commitTime } from '../core/event.js';
import type { Position } from '../core/source.js';
import { StreamEvent, type StreamCommit, type StreamEntry } from '../runtime/memory-stream.js';
import type { DecodedRecord } from './format.js';
import { keyRangeOf } from './json-scan.js';
import type { SegmentLog } from './segment-log.js';
import type { CommitInfo } from './segment.js';

/**
 * The durable log as the stream between a source and its sinks.
 *
 * Every entry a source pushes is appended to the {@link SegmentLog}; consumers read by
 * offset. Recent entries are also kept in memory (a tail bounded in bytes, evicted oldest
 * first whatever the consumers), so a sink that keeps up reads the very objects the source
 * made, with no disk read and no decoding; a sink that falls behind reads from disk. Either
 * way a consumer sees only what the log holds durably: a sink never writes, let alone
 * checkpoints, an entry that a crash could take back.
 *
 * Backpressure comes from the writer only (bytes waiting to be synced), never from a slow
 * sink: the database is acknowledged at log durability, and sinks catch up from disk.
 */
export class LogStream {
  private tail: (StreamEntry | undefined)[] = [];
  /** Offset of `tail[head]`. */
  private tailBase: number;
  private head = 0;
  private tailBytes = 0;
  /** Commit time of the transaction being appended (its latest event's), and of the last commit. */
  private txnTs = 0;
  private lastCommitTs = 0;
  private txnHasEvents = false;
  private readonly positions: { s: string; p: Position }[] = [];
  /** The last transaction position appended, and its string (its events share it). */
  private txnObj: Position | null = null;
  private txnStr = '';

  constructor(
    readonly log: SegmentLog,
    /** The source's position parser (positions are stored as strings). */
    private readonly parse: (s: string) => Position,
    /** Bytes of recent entries kept in memory for consumers in this process. */
    private readonly tailBudget = 32 << 20,
  ) {
    this.tailBase = log.end;
    this.lastCommitTs = log.lastCommit?.tsMs ?? 0;
  }

  /** Offset the next appended entry takes. */
  get end(): number {
    return this.log.end;
  }

  /** Offset after the last durable entry: what consumers may read. */
  get durableEnd(): number {
    return this.log.durableEnd;
  }

  /** Bytes of the in-memory tail. */
  get bytes(): number {
    return this.tailBytes;
  }

  /**
   * Append an entry. Returns false when the log writer is behind: the source then waits
   * for {@link drained} before it reads more.
   */
  append(entry: StreamEntry): boolean {
    let ok: boolean;
    if (entry.kind === 'event') {
      const ev = entry.event;
      const ts = commitTime(ev);
      if (ts > this.txnTs) this.txnTs = ts;
      this.txnHasEvents = true;
      const { buf, start, end } = envelopeBytes(entry);
      const [ks, ke] = keyRangeOf(buf, start, end);
      if (entry.txn !== this.txnObj) {
        this.txnObj = entry.txn;
        this.txnStr = entry.txn.serialize();
      }
      ok = this.log.appendEvent(this.txnStr, entry.index, entry.table, ts, buf[start + 7]!, buf, ks, ke, buf, start, end);
    } else {
      // A transaction's commit time is its events'; an empty one (a heartbeat) keeps the
      // previous commit's, so commit times never step back because of it.
      const ts = this.txnHasEvents ? Math.max(this.txnTs, this.lastCommitTs) : this.lastCommitTs;
      this.lastCommitTs = ts;
      this.txnTs = 0;
      this.txnHasEvents = false;
      ok = this.log.appendCommit(entry.txn === this.txnObj ? this.txnStr : entry.txn.serialize(), ts, entry.resume.serialize());
    }
    this.keep(entry);
    return ok;
  }

  private keep(entry: StreamEntry): void {
    this.tail.push(entry);
    this.tailBytes += entry.bytes;
    while (this.tailBytes > this.tailBudget && this.head < this.tail.length - 1) {
      this.tailBytes -= this.tail[this.head]!.bytes;
      this.tail[this.head++] = undefined;
      this.tailBase++;
    }
    if (this.head > 65536 && this.head * 2 > this.tail.length) {
      this.tail = this.tail.slice(this.head);
      this.head = 0;
    }
  }

  drained(): Promise<void> {
    return this.log.drained();
  }

  /** Called after each sync with the last durable commit (null before any). */
  onDurable(fn: (end: number, commit: CommitInfo | null) => void): void {
    this.log.onDurable(fn);
  }

  /** Resolves once an entry at `offset` is durable, or the signal aborts. */
  wait(offset: number, signal: AbortSignal): Promise<void> {
    return this.log.waitFor(offset, signal);
  }

  /**
   * Durable entries from `offset`: up to `maxEvents` events (commit markers do not count)
   * and about `maxBytes`, from the in-memory tail when it still holds them, else from disk.
   */
  async read(offset: number, maxEvents: number, maxBytes: number): Promise<StreamEntry[]> {
    const durable = this.log.durableEnd;
    if (offset >= durable) return [];
    if (offset >= this.tailBase) {
      const out: StreamEntry[] = [];
      let i = this.head + (offset - this.tailBase);
      const stop = this.head + (durable - this.tailBase);
      let bytes = 0;
      let events = 0;
      while (i < stop && i < this.tail.length && (bytes < maxBytes || out.length === 0)) {
        const e = this.tail[i]!;
        if (e.kind === 'event') {
          if (events === maxEvents) break;
          events++;
        }
        out.push(e);
        bytes += e.bytes;
        i++;
      }
      return out;
    }
    // Behind the tail: from disk. Records up to maxEvents events plus their commits.
    const r = await this.log.read(offset, maxEvents * 2 + 1, maxBytes);
    const out: StreamEntry[] = [];
    let events = 0;
    for (const rec of r.records) {
      if (rec.kind === 'event' && events === maxEvents) break;
      if (rec.kind === 'event') events++;
      out.push(this.entryOf(rec));
    }
    return out;
  }

  /** A stream entry made from a record read back from the log. */
  entryOf(rec: DecodedRecord): StreamEntry {
    if (rec.kind === 'commit') return { kind: 'commit', txn: this.position(rec.txn), resume: this.position(rec.resume), bytes: 64 } satisfies StreamCommit;
    const len = rec.envEnd - rec.envStart;
    const ev = SerializedChangeEvent.fromBytes(rec.buf, rec.envStart, len, rec.table, rec.tsMs);
    return new StreamEvent(ev, rec.table, this.position(rec.txn), rec.index, null, len + 200);
  }

  /** Parsed positions, cached: the events of a transaction share one. */
  private position(s: string): Position {
    for (const c of this.positions) if (c.s === s) return c.p;
    const p = this.parse(s);
    if (this.positions.length >= 4) this.positions.shift();
    this.positions.push({ s, p });
    return p;
  }

  /** Stop: what is queued is written and synced. Idempotent. */
  close(): Promise<void> {
    return this.log.close();
  }
}

/** The envelope of an entry as UTF-8 bytes (the source's own bytes when it made bytes). */
function envelopeBytes(entry: StreamEvent): { buf: Buffer; start: number; end: number } {
  const ev = entry.event;
  if (ev instanceof SerializedChangeEvent && ev.bytes) return { buf: ev.bytes, start: ev.offset, end: ev.offset + ev.byteLength };
  const b = Buffer.from(entry.json, 'utf8');
  return { buf: b, start: 0, end: b.length };
}
