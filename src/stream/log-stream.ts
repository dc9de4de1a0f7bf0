import { join } from 'node:path';
import type { Logger } from 'pino';
import { SerializedChangeEvent, commitTime } from '../core/event.js';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import type { Position } from '../core/source.js';
import { Compactor, type CompactedState } from '../log/compaction.js';
import type { DecodedRecord } from '../log/format.js';
import { keyRangeOf } from '../log/json-scan.js';
import { SegmentLog, type SegmentLogOptions } from '../log/segment-log.js';
import { StreamEvent, type StreamCommit, type StreamEntry } from './entries.js';
import type { DurableCommit, EventStream, StartAt, StreamConsumer } from './types.js';

/** How the log keeps and trims its history (`stream:` in YAML). */
export interface LogStreamOptions {
  dir: string;
  /** The source's position parser (positions are stored as strings). */
  parse: (s: string) => Position;
  logger: Logger;
  log?: Partial<SegmentLogOptions>;
  /** Bytes of recent entries kept in memory for consumers in this process. */
  tailBytes?: number;
  retention?: { maxAgeMs?: number; maxBytes?: number };
  compaction?: { enabled: boolean; tombstonesMs: number };
  /** Open for reading only (`run --role sinks`): another process writes. */
  readOnly?: boolean;
  /** How long a consumer that reads from the in-memory tail may hold the source back (0: never). */
  followMs?: number;
}

/**
 * The durable log as the stream between a source and its sinks.
 *
 * Every entry the source appends goes into the {@link SegmentLog}; consumer groups read by
 * offset. Recent entries are also kept in memory (a tail bounded in bytes, evicted oldest
 * first), so a sink that keeps up reads the very objects the source made, with no disk read
 * and no decoding; a sink that falls behind reads from disk. Either way a consumer sees only
 * what the log holds durably: a sink never writes, let alone checkpoints, an entry that a
 * crash could take back.
 *
 * Backpressure comes from the writer (bytes waiting to be synced) and, briefly, from a sink
 * reading the tail: when the tail is full of entries it has not read, the source waits up to
 * `followMs` for it to make room (see {@link trim}). The database is still acknowledged at
 * log durability, and a sink that makes no room in that time reads from disk instead.
 */
export class LogStream implements EventStream {
  readonly kind = 'log' as const;
  private tail: (StreamEntry | undefined)[] = [];
  /** Offset of `tail[head]`. */
  private tailBase: number;
  private head = 0;
  private tailBytes = 0;
  private readonly tailBudget: number;
  /** Commit time of the transaction being appended (its latest event's), and of the last commit. */
  private txnTs = 0;
  private lastCommitTs = 0;
  private txnHasEvents = false;
  private readonly positions: { s: string; p: Position }[] = [];
  /** The last transaction position appended, and its string (its events share it). */
  private txnObj: Position | null = null;
  private txnStr = '';
  private readonly consumers = new Set<LogConsumer>();
  private closed?: Promise<void>;
  private refresher?: NodeJS.Timeout;
  /** How long a consumer reading the tail may hold the source back (see {@link trim}). */
  private readonly followMs: number;
  /** Since when the tail is over its budget only because a consumer has not read its oldest entries. */
  private pacingSince = 0;
  private roomWaiters: (() => void)[] = [];
  private roomTimer?: NodeJS.Timeout;

  private constructor(
    readonly log: SegmentLog,
    readonly compactor: Compactor,
    private readonly o: LogStreamOptions,
  ) {
    this.tailBudget = o.tailBytes ?? 4 << 20;
    this.followMs = o.followMs ?? 0;
    this.tailBase = log.end;
    this.lastCommitTs = log.lastCommit?.tsMs ?? 0;
  }

  /** Open (and recover) the log in `o.dir`, with its compacted state. */
  static async open(o: LogStreamOptions): Promise<LogStream> {
    const log = await SegmentLog.open(o.dir, {
      ...o.log,
      readOnly: o.readOnly,
      onRepair: (message, details) => o.logger.warn({ ...details }, `log: ${message}`),
    });
    const compactor = new Compactor(o.dir, { tombstonesMs: o.compaction?.tombstonesMs ?? 86_400_000, log: o.log, readOnly: o.readOnly });
    await compactor.load();
    const s = new LogStream(log, compactor, o);
    if (o.readOnly) {
      // Another process writes: look for new durable records often while someone waits.
      s.refresher = setInterval(() => void s.refresh(), 20);
      s.refresher.unref();
    }
    return s;
  }

  /** The compacted state in force, if any. */
  get compacted(): CompactedState | null {
    return this.compactor.state;
  }

  /** The last durable commit: where the source resumes. */
  get lastCommit(): DurableCommit | null {
    const c = this.log.lastCommit;
    return c ? { offset: c.offset, txn: c.txn, resume: c.resume, tsMs: c.tsMs } : null;
  }

  get end(): number {
    return this.log.end;
  }

  get durableEnd(): number {
    return this.log.durableEnd;
  }

  /** First retained offset. */
  get start(): number {
    return this.log.start;
  }

  get bytes(): number {
    return this.tailBytes;
  }

  append(entry: StreamEntry): boolean {
    entry.offset = this.log.end;
    let ok: boolean;
    if (entry.kind === 'event') {
      const ev = entry.event;
      const ts = commitTime(ev);
      if (ts > this.txnTs) this.txnTs = ts;
      this.txnHasEvents = true;
      if (entry.txn !== this.txnObj) {
        this.txnObj = entry.txn;
        this.txnStr = entry.txn.serialize();
      }
      let buf: Buffer;
      let start: number;
      let end: number;
      // Where the key is: noted by the writer of a source's arena envelope, else searched for.
      let ks = -1;
      let ke = -1;
      if (ev instanceof SerializedChangeEvent && ev.bytes) {
        buf = ev.bytes;
        start = ev.offset;
        end = ev.offset + ev.byteLength;
        ks = ev.keyStart;
        ke = ev.keyEnd;
      } else {
        buf = Buffer.from(entry.json, 'utf8');
        start = 0;
        end = buf.length;
      }
      if (ks < 0) {
        const r = keyRangeOf(buf, start, end);
        ks = r[0];
        ke = r[1];
      }
      ok = this.log.appendEvent(this.txnStr, entry.index, entry.table, ts, buf[start + 7]!, buf, ks, ke, start, end);
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
    return ok && this.pacingSince === 0;
  }

  private keep(entry: StreamEntry): void {
    this.tail.push(entry);
    this.tailBytes += entry.bytes;
    if (this.tailBytes > this.tailBudget) this.trim(false);
  }

  /**
   * Bring the tail back to its budget, oldest entries first. Unless `force`, an entry that a
   * consumer reading the tail has not reached yet stays, and the source is asked to pause
   * (append returns false) for up to `followMs`: reading it back from disk later would cost
   * the process more CPU than the wait. Past a hard cap, or once `followMs` is up, it goes
   * anyway, and that consumer reads from disk: a slow sink never holds the source for long.
   */
  private trim(force: boolean): void {
    let follow = Infinity;
    if (!force && this.followMs > 0 && this.tailBytes <= 4 * this.tailBudget) {
      for (const c of this.consumers) if (!c.rebuilding && c.position >= this.tailBase && c.position < follow) follow = c.position;
    }
    let to = this.tailBase;
    for (let i = this.head, bytes = this.tailBytes; bytes > this.tailBudget && i < this.tail.length - 1 && to < follow; i++, to++) bytes -= this.tail[i]!.bytes;
    if (to > this.tailBase) this.dropTo(to);
    const held = this.tailBytes > this.tailBudget && this.head < this.tail.length - 1;
    if (held && this.pacingSince === 0) this.pacingSince = Date.now();
    else if (!held && this.pacingSince !== 0) this.releaseSource();
  }

  private releaseSource(): void {
    this.pacingSince = 0;
    clearTimeout(this.roomTimer);
    this.roomTimer = undefined;
    for (const w of this.roomWaiters.splice(0)) w();
  }

  /**
   * @internal A consumer moved on. What every consumer here has read leaves the tail at once:
   * held up to the budget, those entries (and the source's slabs they keep alive) lived long
   * enough to be promoted, and the old generation's collections cost the log path more CPU
   * than the memory stream, which lets an entry go as soon as every sink has it. A reader
   * that starts later (a rewind, a late sink) reads from disk. Room also frees a source that
   * waits for it.
   */
  moved(): void {
    let min = Infinity;
    for (const c of this.consumers) if (c.position < min) min = c.position;
    if (min !== Infinity && min > this.tailBase) this.dropTo(min);
    if (this.pacingSince !== 0) this.trim(false);
  }

  /** Drop tail entries below offset `to` (oldest first). */
  private dropTo(to: number): void {
    const stop = Math.min(this.head + (to - this.tailBase), this.tail.length);
    let bytes = this.tailBytes;
    for (let i = this.head; i < stop; i++) {
      bytes -= this.tail[i]!.bytes;
      this.tail[i] = undefined;
    }
    this.tailBytes = bytes;
    this.tailBase += stop - this.head;
    this.head = stop;
    if (this.head > 65536 && this.head * 2 > this.tail.length) {
      this.tail = this.tail.slice(this.head);
      this.head = 0;
    }
  }

  async drained(): Promise<void> {
    await this.log.drained();
    if (this.pacingSince === 0) return;
    await new Promise<void>((resolve) => {
      this.roomWaiters.push(resolve);
      this.roomTimer ??= setTimeout(() => {
        this.roomTimer = undefined;
        this.trim(true);
      }, Math.max(0, this.pacingSince + this.followMs - Date.now()));
    });
  }

  onDurable(fn: (commit: DurableCommit) => void): void {
    this.log.onDurable((_end, c) => {
      if (c) fn({ offset: c.offset, txn: c.txn, resume: c.resume, tsMs: c.tsMs });
    });
  }

  /**
   * A consumer group's reader. With a committed offset it resumes there; a group that fell
   * behind retention gets TRB5002 (its `on_gap` decides what then). A new group starts at the
   * end (`latest`) or at the start of the history (`earliest`): the compacted state first,
   * when retention has trimmed the log, then the log.
   */
  async consumer(group: string, from: number | null, start: StartAt): Promise<LogConsumer> {
    await this.reloadCompacted();
    let c: LogConsumer;
    if (from !== null) {
      if (from < this.log.start) {
        throw new TributaryError(ErrorCodes.LOG_GAP, `sink ${group} committed offset ${from}, but the log now starts at ${this.log.start}: retention removed what it had not read`, {
          fix: `set the sink's on_gap: rebuild (the compacted state, then the log), or rewind it (tributary rewind --sink ${group} --to earliest)`,
        });
      }
      c = new LogConsumer(this, group, Math.min(from, this.log.end));
    } else if (start === 'latest') {
      c = new LogConsumer(this, group, this.log.end);
    } else {
      c = new LogConsumer(this, group, this.log.start, this.log.start > 0 ? this.compacted : null);
    }
    this.consumers.add(c);
    return c;
  }

  /** A consumer group that fell off the start: the compacted state, then the log from its horizon. */
  async rebuild(group: string): Promise<LogConsumer> {
    await this.reloadCompacted();
    const c = new LogConsumer(this, group, this.log.start, this.compacted);
    this.consumers.add(c);
    return c;
  }

  /**
   * A reader in another process than the writer (`run --role sinks`) takes the compacted
   * generation in force now, and the log's latest files: the writer folds and trims while
   * it runs, so what it saw at open may be gone.
   */
  private async reloadCompacted(): Promise<void> {
    if (!this.o.readOnly) return;
    await this.refresh();
    await this.compactor.load();
  }

  /**
   * The view brought up to the files: for a reader in another process than the writer, one
   * whole refresh (between refreshes of a new writer's epoch the view can be half built); the
   * writer's own view is always whole. Read {@link lastCommit} right after it.
   */
  async settle(): Promise<void> {
    if (this.o.readOnly) await this.refresh();
  }

  /** @internal */
  forget(c: LogConsumer): void {
    this.consumers.delete(c);
    this.moved();
  }

  /** Resolves once an entry at `offset` is durable, or the signal aborts. */
  wait(offset: number, signal: AbortSignal): Promise<void> {
    if (this.o.readOnly) return this.poll(offset, signal);
    return this.log.waitFor(offset, signal);
  }

  private async poll(offset: number, signal: AbortSignal): Promise<void> {
    if (offset < this.log.durableEnd) {
      // A read came back empty below the durable end: the files are shorter than this view
      // while a new writer recovers the log. Pause, so the caller's next read is not a busy
      // loop, and look again (the new epoch starts the view over).
      await new Promise((r) => setTimeout(r, 20));
      return this.refresh();
    }
    while (offset >= this.log.durableEnd && !signal.aborted) {
      await this.refresh();
      if (offset < this.log.durableEnd) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private refreshing: Promise<void> | null = null;
  private refresh(): Promise<void> {
    return (this.refreshing ??= this.log.refresh().finally(() => (this.refreshing = null)));
  }

  /**
   * Durable entries from `offset`: up to `maxEvents` events (commit markers do not count)
   * and about `maxBytes`, from the in-memory tail when it still holds them, else from disk.
   */
  async read(offset: number, maxEvents: number, maxBytes: number): Promise<StreamEntry[]> {
    const durable = this.log.durableEnd;
    if (offset >= durable) return [];
    if (offset >= this.tailBase && !this.o.readOnly) {
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
    return this.readFrom(this.log, offset, maxEvents, maxBytes);
  }

  /** Entries read back from `log` (the main log or a compacted generation). */
  async readFrom(log: SegmentLog, offset: number, maxEvents: number, maxBytes: number): Promise<StreamEntry[]> {
    const r = await log.read(offset, maxEvents * 2 + 1, maxBytes);
    const out: StreamEntry[] = [];
    let events = 0;
    for (const rec of r.records) {
      if (rec.kind === 'event' && events === maxEvents) break;
      if (rec.kind === 'event') events++;
      out.push(this.entryOf(rec));
    }
    return out;
  }

  /** The entry at `offset` if the in-memory tail holds it. */
  at(offset: number): StreamEntry | undefined {
    return offset >= this.tailBase ? this.tail[this.head + (offset - this.tailBase)] : undefined;
  }

  /** A stream entry made from a record read back from the log. */
  entryOf(rec: DecodedRecord): StreamEntry {
    if (rec.kind === 'commit') {
      const c: StreamCommit = { kind: 'commit', txn: this.position(rec.txn), resume: rec.resume ? this.position(rec.resume) : this.position(rec.txn), bytes: 64, offset: rec.offset };
      return c;
    }
    const len = rec.envEnd - rec.envStart;
    const ev = SerializedChangeEvent.fromBytes(rec.buf, rec.envStart, len, rec.table, rec.tsMs);
    const e = new StreamEvent(ev, rec.table, this.position(rec.txn), rec.index, null, len + 200);
    e.offset = rec.offset;
    return e;
  }

  /** Parsed positions, cached: the events of a transaction share one. */
  private position(s: string): Position {
    for (const c of this.positions) if (c.s === s) return c.p;
    let p: Position;
    try {
      p = this.o.parse(s);
    } catch (err) {
      // A log written by another source type (the config's source changed under an existing
      // state directory): its positions mean nothing to this one.
      throw new TributaryError(ErrorCodes.LOG_POSITION, `the log in ${this.o.dir} holds position "${s}", which this pipeline's source cannot read: ${(err as Error).message}`, {
        fix: 'point state.dir at the log of this source, or move this log aside to start a new one (its sinks then start over)',
        cause: err,
      });
    }
    if (this.positions.length >= 4) this.positions.shift();
    this.positions.push({ s, p });
    return p;
  }

  /**
   * Apply retention: remove old segments (folding them into the compacted state first when
   * compaction is on). `keepFrom` is the lowest offset any consumer group still needs.
   */
  async retain(keepFrom: number, now = Date.now()): Promise<{ removed: number; bytes: number }> {
    const r = this.o.retention;
    if (!r || this.o.readOnly || (r.maxAgeMs === undefined && r.maxBytes === undefined)) return { removed: 0, bytes: 0 };
    const removed = await this.log.retain({
      now,
      maxAgeMs: r.maxAgeMs,
      maxBytes: r.maxBytes,
      keepFrom,
      before: this.o.compaction?.enabled ? async (segs) => void (await this.compactor.fold(this.log, segs, now)) : undefined,
    });
    const bytes = removed.reduce((n, s) => n + s.size, 0);
    if (removed.length) this.o.logger.info({ segments: removed.length, bytes, start: this.log.start, compacted: this.compacted?.records ?? null }, 'log: retention removed old segments');
    return { removed: removed.length, bytes };
  }

  close(): Promise<void> {
    return (this.closed ??= (async () => {
      clearInterval(this.refresher);
      for (const c of [...this.consumers]) c.close();
      this.releaseSource();
      await this.log.close();
      await this.compactor.close();
    })());
  }
}

/**
 * One consumer group's reader of the log. A group that starts from the compacted state reads
 * it first (each key's latest row as an `r` event, as one transaction), then the log from
 * the compacted state's horizon.
 */
export class LogConsumer implements StreamConsumer {
  private closed = false;
  /** Reading the compacted state: the generation and the offset in it. */
  private compactedPhase: { state: CompactedState; at: number } | null;

  constructor(
    private readonly s: LogStream,
    readonly group: string,
    public position: number,
    compacted: CompactedState | null = null,
  ) {
    this.compactedPhase = compacted && compacted.horizon >= position ? { state: compacted, at: 0 } : null;
    if (this.compactedPhase) this.position = compacted!.horizon;
  }

  /** Reading the compacted state now. */
  get rebuilding(): boolean {
    return this.compactedPhase !== null;
  }

  async next(maxEvents: number, maxBytes: number, signal: AbortSignal, wait = true): Promise<StreamEntry[]> {
    if (this.compactedPhase) {
      const ph = this.compactedPhase;
      const out = await this.s.readFrom(ph.state.log, ph.at, maxEvents, maxBytes);
      if (out.length) {
        ph.at += out.length;
        const last = out[out.length - 1]!;
        if (last.kind === 'commit') {
          // The compacted state ends in one commit: checkpointing it means "at the horizon".
          last.offset = ph.state.horizon - 1;
          this.compactedPhase = null;
        } else last.offset = -1;
        for (const e of out) if (e !== last) e.offset = -1;
        return out;
      }
      this.compactedPhase = null;
    }
    for (;;) {
      if (signal.aborted || this.closed) return [];
      const out = await this.s.read(this.position, maxEvents, maxBytes);
      if (out.length) {
        this.position += out.length;
        this.s.moved();
        return out;
      }
      if (!wait) return out;
      await this.s.wait(this.position, signal);
    }
  }

  get behind(): number {
    return Math.max(0, this.s.durableEnd - this.position);
  }

  nextTime(): number | null {
    const e = this.s.at(this.position);
    return e && e.kind === 'event' ? commitTime(e.event) : null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.s.forget(this);
  }
}

/** Where a pipeline's log lives: `<state dir>/<pipeline>/log`. */
export function logDir(stateDir: string, pipeline: string): string {
  return join(stateDir, encodeURIComponent(pipeline), 'log');
}
