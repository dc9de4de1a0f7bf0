import { constants, mkdir, open, readdir, rm, stat, truncate as truncateFile, type FileHandle } from 'node:fs/promises';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { compress, decompress } from '@mongodb-js/zstd';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { BatchBuilder, type SealedBatch } from './batch-builder.js';
import { FLAG_COMMIT, FLAG_ZSTD, HEADER_BYTES, decodeBody, readBatchHeader, sealBatch, type DecodedRecord } from './format.js';
import { KeyRun, RunKeys } from './key-index.js';
import { Segment, scanSegment, segmentName, type CommitInfo } from './segment.js';
import { attachSidecar, loadSidecar, sidecarFront, syncDir, writeSidecar } from './sidecar.js';
import { sidecarThread } from './sidecar-thread.js';
import { writeFully } from './write-fully.js';

/** How the embedded log is laid out and paced. */
export interface SegmentLogOptions {
  /** A segment rolls once it holds this many bytes (at a batch boundary). */
  segmentBytes: number;
  /** A batch is cut in the middle of a transaction once it holds this many bytes. */
  batchBytes: number;
  /** Appends report backpressure above this many bytes waiting to be written. */
  maxPendingBytes: number;
  /** Compress batch bodies of at least 1 KiB with zstd. */
  compression: 'none' | 'zstd';
  /** Open for reading only: no recovery, no appends (another process writes). */
  readOnly?: boolean;
  /** Told about repairs made at open (a torn tail cut, an unfinished transaction dropped). */
  onRepair?(message: string, details: Record<string, unknown>): void;
}

export const DEFAULT_LOG_OPTIONS: SegmentLogOptions = {
  segmentBytes: 64 << 20,
  batchBytes: 1 << 20,
  maxPendingBytes: 8 << 20,
  compression: 'none',
};

/** The `head` file: the durable end, rewritten after every sync, read by other processes. */
const HEAD_MAGIC = 0x48425254; // 'TRBH'
/** 48 bytes, then the writer's epoch (a head of 48 bytes, from before epochs, reads as epoch 0). */
const HEAD_BYTES = 56;
const HEAD_BYTES_V1 = 48;

/** What the `head` file says: the log is durable up to here. */
export interface Head {
  /** Offset after the last durable record. */
  end: number;
  /** The active segment's base offset and durable size. */
  activeBase: number;
  activeSize: number;
  /** Offset of the last durable commit, or -1. */
  lastCommit: number;
  /** First retained offset. */
  start: number;
  /**
   * Which opening of the log by a writer wrote this head: each writer's recovery makes the
   * next one. A reader in another process that sees it change starts its view over, because
   * the recovery may have cut records it had indexed (see {@link SegmentLog.refresh}).
   */
  epoch: number;
}

/** A read: the records from the requested offset, and the offset after them. */
export interface ReadResult {
  records: DecodedRecord[];
  next: number;
}

/**
 * The embedded log: a directory of segments, appended by one writer and read by any number
 * of consumers, in this process or in others.
 *
 * Appends build batches in memory ({@link BatchBuilder}); a background loop writes them
 * durably (O_DSYNC, or a write and an fdatasync), and only then moves the durable end and
 * tells listeners, so a database is acknowledged only for what survives a power loss.
 * Several transactions that arrive while a write runs share the next one (group commit).
 *
 * Readers only ever see durable records. After a crash, {@link open} cuts a torn tail and
 * the records of a transaction whose commit never reached the log (the source sends it
 * again), so a transaction is never in the log twice.
 */
export class SegmentLog {
  private segments: Segment[] = [];
  private run = new KeyRun();
  private builder = new BatchBuilder(this.run);
  private queue: SealedBatch[] = [];
  private queuedBytes = 0;
  /**
   * Uncompressed bytes of the batches in the active segment. With zstd a segment also rolls
   * at segmentBytes of these: a reader that opens the log (`state --at`, `log read`, a sinks
   * process) decodes the active segment in full to index its keys, and a 64 MiB segment of
   * zstd batches holds ten times as many events as a plain one (seconds to decompress).
   * After a restart it starts at the segment's size on disk, a lower bound.
   */
  private activeLogical = 0;
  private flushing: Promise<void> | null = null;
  private fh: FileHandle | null = null;
  private headFd: number | null = null;
  private failure: Error | null = null;
  private durableWaiters: { offset: number; resolve: () => void }[] = [];
  private drainWaiters: (() => void)[] = [];
  private listeners: ((end: number, commit: CommitInfo | null) => void)[] = [];
  private closed?: Promise<void>;
  /** Offset after the last durable record. */
  durableEnd = 0;
  /** The last durable commit. */
  lastCommit: CommitInfo | null = null;
  /** Offset the next appended record takes. */
  private nextOffset = 0;
  /** An unfinished transaction is being appended (events since the last commit). */
  private openTxn = false;
  /** Hints for sequential readers: next offset → where its batch starts. */
  private readonly hints = new Map<number, { seg: Segment; pos: number }>();
  /** The writer's epoch (see {@link Head.epoch}): this writer's, or the one a reader's view was built from. */
  epoch = 0;

  private constructor(
    readonly dir: string,
    readonly opts: SegmentLogOptions,
  ) {}

  /** Open (and recover) the log in `dir`, creating it when missing. */
  static async open(dir: string, opts: Partial<SegmentLogOptions> = {}): Promise<SegmentLog> {
    const log = new SegmentLog(dir, { ...DEFAULT_LOG_OPTIONS, ...opts });
    if (log.opts.readOnly) await log.refresh();
    else await log.recover();
    return log;
  }

  /** First retained offset. */
  get start(): number {
    return this.segments[0]?.base ?? 0;
  }

  /** Bytes held by the segments. */
  get bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  /** The segments, oldest first (read-only view for retention, info and tools). */
  get segmentList(): readonly Segment[] {
    return this.segments;
  }

  // ----- recovery --------------------------------------------------------------------

  private async listSegments(): Promise<number[]> {
    await mkdir(this.dir, { recursive: true });
    const names = await readdir(this.dir);
    return names
      .filter((n) => /^\d{20}\.log$/.test(n))
      .map((n) => Number(n.slice(0, 20)))
      .sort((a, b) => a - b);
  }

  private async recover(): Promise<void> {
    const bases = await this.listSegments();
    const head = this.readHead();
    this.epoch = (head?.epoch ?? 0) + 1;
    if (!bases.length) {
      const base = head?.end ?? 0;
      await this.createSegment(base);
    } else {
      for (let i = 0; i < bases.length - 1; i++) {
        const seg = new Segment(this.dir, bases[i]!);
        const size = (await stat(seg.path)).size;
        if (!loadSidecar(seg, size)) await this.rebuildSealed(seg);
        this.segments.push(seg);
      }
      await this.openActive(new Segment(this.dir, bases[bases.length - 1]!));
      await this.dropUnfinishedTransaction();
    }
    const active = this.active;
    this.nextOffset = active.next;
    this.durableEnd = active.next;
    this.lastCommit = this.findLastCommit();
    if (head && head.lastCommit >= 0 && (this.lastCommit?.offset ?? -1) < head.lastCommit) {
      throw new TributaryError(
        ErrorCodes.LOG_CORRUPT,
        `the log in ${this.dir} ends at offset ${this.lastCommit?.offset ?? -1}, but offset ${head.lastCommit} was durable and acknowledged: committed data is missing`,
        { fix: 'restore the log directory from a backup, or move it aside and re-snapshot (its sinks keep their data); do not delete the state directory' },
      );
    }
    this.builder.begin(this.nextOffset);
    this.fh = await openForAppend(active.path);
    this.writeHead();
  }

  /** Scan the active segment, cut a torn tail, and take its records into the indexes. */
  private async openActive(seg: Segment): Promise<void> {
    const prev = this.segments[this.segments.length - 1];
    seg.afterCommit = !prev || prev.size === prev.lastCommitEnd;
    const run = new KeyRun();
    const r = await scanSegment(seg, {}, (b) => this.account(seg, run, b.pos, b.header, b.records));
    if (r.stop) {
      if (r.stop.validAfter) throw corruption(seg, r.stop.expectedOffset, r.stop.pos, r.stop.problem);
      const size = (await stat(seg.path)).size;
      this.opts.onRepair?.('cut a torn tail off the log (a write cut short by a crash)', { segment: seg.path, at: r.stop.pos, bytes: size - r.stop.pos });
      await truncateFile(seg.path, r.stop.pos);
    }
    if (prev && seg.base !== prev.next) throw corruption(seg, prev.next, 0, `segment starts at ${seg.base}, after ${prev.next}`);
    this.run = run;
    this.builder.keys = run;
    this.segments.push(seg);
    this.activeLogical = seg.size;
  }

  /**
   * Records after the last commit belong to a transaction whose commit never reached the
   * log. The source sends it again from its start, so they are cut: otherwise it would be
   * in the log twice. Such a transaction may span segments (a segment can roll in the
   * middle of a big one).
   */
  private async dropUnfinishedTransaction(): Promise<void> {
    for (;;) {
      const seg = this.active;
      if (seg.size === seg.lastCommitEnd) return;
      const cutOffset = seg.lastCommitEnd === 0 ? seg.base : this.offsetAfterPos(seg, seg.lastCommitEnd);
      this.opts.onRepair?.('dropped the records of a transaction whose commit never reached the log (it is read from the source again)', {
        segment: seg.path,
        from: cutOffset,
        records: seg.next - cutOffset,
      });
      if (seg.lastCommitEnd === 0 && this.segments.length > 1) {
        // The whole segment is the unfinished transaction: remove it, and look at the one before.
        this.segments.pop();
        seg.closeReads();
        await rm(seg.path, { force: true });
        await rm(seg.sidecarPath, { force: true });
        const prev = this.segments.pop()!;
        prev.closeReads();
        await rm(prev.sidecarPath, { force: true });
        await this.openActive(new Segment(this.dir, prev.base));
        continue;
      }
      await truncateFile(seg.path, seg.lastCommitEnd);
      seg.closeReads();
      this.segments.pop();
      await this.openActive(new Segment(this.dir, seg.base));
      return;
    }
  }

  /** The offset that starts at file position `pos` of `seg` (a batch boundary). */
  private offsetAfterPos(seg: Segment, pos: number): number {
    const buf = seg.readSync(pos, HEADER_BYTES);
    return buf.length === HEADER_BYTES ? buf.readDoubleLE(16) : seg.next;
  }

  private findLastCommit(): CommitInfo | null {
    for (let i = this.segments.length - 1; i >= 0; i--) if (this.segments[i]!.lastCommit) return this.segments[i]!.lastCommit;
    return null;
  }

  /** A sealed segment without a usable sidecar: scan it (which also verifies it) and write one. */
  private async rebuildSealed(seg: Segment): Promise<void> {
    const prev = this.segments[this.segments.length - 1];
    seg.afterCommit = !prev || prev.size === prev.lastCommitEnd;
    const run = new KeyRun();
    const r = await scanSegment(seg, {}, (b) => this.account(seg, run, b.pos, b.header, b.records));
    if (r.stop) throw corruption(seg, r.stop.expectedOffset, r.stop.pos, r.stop.problem);
    seg.sealed = true;
    await writeSidecar(seg, run);
  }

  /** Take a scanned batch into a segment's indexes and a key run. */
  private account(seg: Segment, run: KeyRun, pos: number, h: Parameters<Segment['noteBatch']>[1], records: DecodedRecord[]): void {
    let commit: CommitInfo | null = null;
    for (const r of records) {
      if (r.kind === 'commit') commit = { offset: r.offset, txn: r.txn, resume: r.resume, tsMs: r.tsMs };
      else {
        const op = r.op;
        run.add(r.table, tableHashCached(r.table), op === 0x74 ? 2 : op === 0x64 ? 1 : 0, r.buf, r.keyStart, r.keyEnd, r.offset);
      }
    }
    seg.noteBatch(pos, h, commit);
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private async createSegment(base: number): Promise<Segment> {
    const seg = new Segment(this.dir, base);
    const fh = await open(seg.path, 'wx');
    await fh.close();
    await syncDir(this.dir);
    this.segments.push(seg);
    return seg;
  }

  // ----- the head file -----------------------------------------------------------------

  private get headPath(): string {
    return join(this.dir, 'head');
  }

  /** What the head file says, or null when it is missing or damaged. */
  readHead(): Head | null {
    let fd: number;
    try {
      fd = openSync(this.headPath, 'r');
    } catch {
      return null;
    }
    try {
      const b = Buffer.alloc(HEAD_BYTES);
      const n = readSync(fd, b, 0, HEAD_BYTES, 0);
      if ((n !== HEAD_BYTES && n !== HEAD_BYTES_V1) || b.readUInt32LE(0) !== HEAD_MAGIC) return null;
      return { end: b.readDoubleLE(8), activeBase: b.readDoubleLE(16), activeSize: b.readDoubleLE(24), lastCommit: b.readDoubleLE(32), start: b.readDoubleLE(40), epoch: n === HEAD_BYTES ? b.readDoubleLE(48) : 0 };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Rewrite the head file in place (no fsync: it is a hint for readers and a lower bound for
   * recovery; after a power loss it can only be older than the log, never newer).
   */
  private writeHead(): void {
    if (this.headFd === null) {
      try {
        this.headFd = openSync(this.headPath, 'r+');
      } catch {
        this.headFd = openSync(this.headPath, 'w+');
      }
    }
    const b = Buffer.alloc(HEAD_BYTES);
    b.writeUInt32LE(HEAD_MAGIC, 0);
    b.writeDoubleLE(this.durableEnd, 8);
    b.writeDoubleLE(this.active.base, 16);
    b.writeDoubleLE(this.active.size, 24);
    b.writeDoubleLE(this.lastCommit?.offset ?? -1, 32);
    b.writeDoubleLE(this.start, 40);
    b.writeDoubleLE(this.epoch, 48);
    writeSync(this.headFd, b, 0, HEAD_BYTES, 0);
  }

  // ----- appending ---------------------------------------------------------------------

  /**
   * Offset the next appended record takes. A reader in another process appends nothing: its
   * end is its {@link durableEnd}, the end of the whole transactions it can hand out (a
   * consumer's stored offset is clamped to it, a `start: latest` consumer begins there).
   */
  get end(): number {
    return this.opts.readOnly ? this.durableEnd : this.nextOffset;
  }

  /**
   * Append an event of transaction `txn`. The envelope is UTF-8 JSON `env[es, ee)` with its
   * `key` value at `env[ks, ke)` (see json-scan.ts keyRangeOf); `op` is the envelope's op
   * character code. Returns false when the writer is behind (wait for {@link drained} before
   * appending more).
   */
  appendEvent(txn: string, index: number, table: string, tsMs: number, op: number, env: Buffer, ks: number, ke: number, es: number, ee: number): boolean {
    this.checkWritable();
    this.builder.event(txn, index, table, tsMs, op, env, ks, ke, es, ee);
    this.nextOffset++;
    this.openTxn = true;
    if (this.builder.bytes >= this.opts.batchBytes) this.enqueue();
    return this.queuedBytes + this.builder.bytes < this.opts.maxPendingBytes;
  }

  /** Append the commit of `txn`: the transaction is complete, and the source resumes at `resume`. */
  appendCommit(txn: string, tsMs: number, resume: string): boolean {
    this.checkWritable();
    this.builder.commit(txn, tsMs, resume);
    this.nextOffset++;
    this.openTxn = false;
    this.enqueue();
    return this.queuedBytes < this.opts.maxPendingBytes;
  }

  private checkWritable(): void {
    if (this.failure) throw this.failure;
    if (this.opts.readOnly) throw new Error('the log is open read-only');
  }

  private enqueue(): void {
    if (this.builder.empty) return;
    const b = this.builder.seal();
    this.queue.push(b);
    this.queuedBytes += b.bytes.length;
    this.flushing ??= this.flushLoop();
  }

  /** Resolves when the bytes waiting to be written are below the budget again. */
  drained(): Promise<void> {
    if (this.queuedBytes < this.opts.maxPendingBytes) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  /** Called after each sync with the new durable end and the last durable commit. */
  onDurable(fn: (end: number, commit: CommitInfo | null) => void): void {
    this.listeners.push(fn);
  }

  /** Resolves when everything appended so far (up to the last commit or cut batch) is durable. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.failure) throw this.failure;
  }

  /** Write what is queued, sync, move the durable end; again while more was queued meanwhile. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length) {
        let batches = this.queue;
        this.queue = [];
        // The budget counts what was queued: compression changes the lengths.
        let queued = batches.map((b) => b.bytes.length);
        if (this.opts.compression === 'zstd') {
          // Small batches (a commit ends one) are joined first: one compress call per small
          // batch cost more than the compression itself.
          ({ batches, queued } = joinBatches(batches, queued, this.opts.batchBytes, (c) => this.builder.release(c)));
          // All at once: zstd runs in libuv's thread pool, so the batches of one flush
          // compress in parallel (one after another left a core idle).
          const packed = await Promise.all(batches.map(compressBatch));
          for (let i = 0; i < batches.length; i++) batches[i] = packed[i]!;
        }
        let pending: SealedBatch[] = [];
        let pendingBytes = 0;
        const writePending = async () => {
          if (!pending.length) return;
          const seg = this.active;
          await writeFully(this.fh!, coalesce(pending), seg.size);
          if (!DSYNC) await this.fh!.datasync();
          let pos = seg.size;
          for (const b of pending) {
            this.builder.release(b.chunk);
            seg.noteBatch(pos, { length: b.bytes.length, baseOffset: b.baseOffset, count: b.count, maxTsMs: b.maxTsMs, flags: b.commit ? 2 : 0 }, b.commit ? { offset: b.baseOffset + b.count - 1, txn: b.txn, resume: b.resume!, tsMs: b.maxTsMs } : null);
            pos += b.bytes.length;
            this.durableEnd = b.baseOffset + b.count;
            if (b.commit) this.lastCommit = seg.lastCommit;
          }
          pending = [];
          pendingBytes = 0;
        };
        for (let i = 0; i < batches.length; i++) {
          const b = batches[i]!;
          if ((this.active.size + pendingBytes >= this.opts.segmentBytes || this.activeLogical >= this.opts.segmentBytes) && this.active.size + pendingBytes > 0) {
            await writePending();
            await this.roll();
          }
          pending.push(b);
          pendingBytes += b.bytes.length;
          this.activeLogical += queued[i]!;
          this.queuedBytes -= queued[i]!;
        }
        await writePending();
        this.writeHead();
        this.notify();
      }
    } catch (err) {
      this.failure = new TributaryError(ErrorCodes.LOG_IO, `cannot write the log in ${this.dir}: ${(err as Error).message}`, {
        fix: 'check that the state directory is on a writable local disk with free space; the pipeline stops and resumes from the last durable commit after a restart',
        cause: err,
      });
      for (const w of this.drainWaiters.splice(0)) w();
      for (const w of this.durableWaiters.splice(0)) w.resolve();
    } finally {
      this.flushing = null;
    }
  }

  private notify(): void {
    for (const fn of this.listeners) fn(this.durableEnd, this.lastCommit);
    if (this.durableWaiters.length) {
      const keep: typeof this.durableWaiters = [];
      for (const w of this.durableWaiters) (w.offset < this.durableEnd ? w.resolve() : keep.push(w));
      this.durableWaiters = keep;
    }
    if (this.queuedBytes < this.opts.maxPendingBytes && this.drainWaiters.length) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Seal the active segment (sidecar written) and start a new one. */
  private async roll(): Promise<void> {
    const seg = this.active;
    const sealedRun = this.run.splitBelow(seg.next);
    seg.sealed = true;
    // The sidecar is sorted and written on a worker thread while appends go on; until it is
    // there, the sealed entries answer the segment's key queries from memory. A crash before
    // it is written leaves a sealed segment without one, which the next open rebuilds.
    seg.setKeys({ keys: new RunKeys(sealedRun, Infinity), close: () => undefined });
    seg.tables = new Map(sealedRun.tables);
    const front = sidecarFront(seg, sealedRun);
    const job = sidecarThread
      .write(seg.sidecarPath, front, sealedRun)
      .then(
        () => attachSidecar(seg, front, sealedRun),
        (err: Error) => this.opts.onRepair?.(`could not write the sidecar of a sealed segment (${err.message}); its keys stay in memory, and the next open rebuilds it`, { segment: seg.path }),
      )
      .finally(() => this.sidecars.delete(seg.base));
    this.sidecars.set(seg.base, job);
    await this.fh!.close();
    const next = await this.createSegment(seg.next);
    next.afterCommit = seg.afterCommit;
    this.activeLogical = 0;
    this.fh = await openForAppend(next.path);
  }

  /**
   * Seal the active segment now (sidecar written) and start an empty one, so a reader opens
   * the log from sidecars alone. Used for logs written in one go (a compacted generation).
   */
  async sealActive(): Promise<void> {
    this.enqueue();
    await this.flush();
    if (this.active.size > 0) {
      await this.roll();
      this.writeHead();
    }
    await this.sidecarsWritten();
  }

  /** Sidecars being written (see {@link roll}), by segment base. */
  private readonly sidecars = new Map<number, Promise<void>>();

  /** Resolves once every sidecar begun so far is written (or given up). */
  async sidecarsWritten(): Promise<void> {
    while (this.sidecars.size) await Promise.all(this.sidecars.values());
  }

  /** Resolves once the record at `offset` is durable, or the signal aborts. */
  waitFor(offset: number, signal?: AbortSignal): Promise<void> {
    if (offset < this.durableEnd || signal?.aborted || this.failure) return Promise.resolve();
    return new Promise((resolve) => {
      const w = { offset, resolve: () => {
        signal?.removeEventListener('abort', w.resolve);
        resolve();
      } };
      signal?.addEventListener('abort', w.resolve, { once: true });
      this.durableWaiters.push(w);
    });
  }

  // ----- reading -----------------------------------------------------------------------

  /**
   * Read-only mode: pick up what the writer made durable since the last look.
   *
   * A reader in another process (`run --role sinks`) sees only whole transactions: its end
   * is the writer's last durable commit. The records after it may belong to a transaction
   * whose commit never comes (the writer is killed), which the writer's next recovery cuts
   * and the source sends again; a reader that had handed them out would otherwise see them
   * twice, or index file positions that no longer hold them. When the writer's epoch
   * changes (a new writer recovered the log), the view is built again from the files.
   */
  async refresh(): Promise<void> {
    const head = this.readHead();
    if (head && head.epoch !== this.epoch) {
      if (this.epoch !== 0 || this.segments.length) this.resetView();
      this.epoch = head.epoch;
    }
    const bases = await this.listSegments();
    // Segments removed by retention.
    while (this.segments.length && !bases.includes(this.segments[0]!.base)) this.segments.shift()!.closeReads();
    // A follower looks every 20 ms: known sealed segments cost nothing (no stat, no search).
    const known = new Map(this.segments.map((s) => [s.base, s]));
    for (const base of bases) {
      let seg = known.get(base);
      if (seg?.sealed) continue;
      const size = (await stat(join(this.dir, segmentName(base, 'log'))).catch(() => null))?.size;
      if (size === undefined) continue;
      const isActive = head ? base === head.activeBase : base === bases[bases.length - 1];
      const limit = isActive && head ? head.activeSize : size;
      if (!seg) {
        seg = new Segment(this.dir, base);
        const prev = this.segments[this.segments.length - 1];
        seg.afterCommit = !prev || prev.size === prev.lastCommitEnd;
        if (!isActive && loadSidecar(seg, size)) {
          this.insertSegment(seg);
          continue;
        }
        this.insertSegment(seg);
      }
      if (seg.sealed) continue;
      if (!isActive) {
        // Sealed since the last look (read as the active one then): take its sidecar, whose
        // sorted key index time travel needs (the reader's run for it stops being consulted).
        const sealed = new Segment(this.dir, base);
        if (loadSidecar(sealed, size)) {
          this.segments[this.segments.indexOf(seg)] = sealed;
          seg.closeReads();
          this.readerRun.delete(base);
          this.hints.clear();
          continue;
        }
      }
      if (seg.size >= limit) continue;
      const run = this.readerRun.get(base) ?? new KeyRun();
      this.readerRun.set(base, run);
      const r = await scanSegment(seg, { from: seg.size, fromOffset: seg.next, limit }, (b) => this.account(seg!, run, b.pos, b.header, b.records));
      if (r.stop) {
        // A writer recovering the log cuts its tail while we read it: the file is shorter than
        // the head said, or holds new batches where we stopped. The new epoch (its head comes
        // once its recovery is done) makes the next look start over; real damage stays an error.
        const now = this.readHead();
        if (now?.epoch !== head?.epoch || !r.stop.validAfter) break;
        throw corruption(seg, r.stop.expectedOffset, r.stop.pos, r.stop.problem);
      }
    }
    this.lastCommit = this.findLastCommit();
    // Only whole transactions (see above); never past what the head says is durable.
    const committed = this.lastCommit ? this.lastCommit.offset + 1 : this.start;
    this.durableEnd = Math.min(head?.end ?? this.active?.next ?? 0, Math.max(committed, this.start));
  }

  /** Forget everything a reader indexed (the writer's epoch changed): the next refresh reads the files again. */
  private resetView(): void {
    for (const s of this.segments) s.closeReads();
    this.segments = [];
    this.readerRun.clear();
    this.hints.clear();
    this.recordCache = null;
    this.lastCommit = null;
  }
  private readonly readerRun = new Map<number, KeyRun>();

  private insertSegment(seg: Segment): void {
    this.segments.push(seg);
    this.segments.sort((a, b) => a.base - b.base);
  }

  /** The segment holding `offset`, or undefined when it is before the first retained one. */
  segmentFor(offset: number): Segment | undefined {
    const s = this.segments;
    let lo = 0;
    let hi = s.length - 1;
    let best: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]!.base <= offset) {
        best = s[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  /**
   * Durable records from `offset`, up to `maxRecords` and about `maxBytes` (at least one
   * record). Throws a coded gap error when `offset` is before the first retained record.
   * The events returned point into buffers of their own; nothing is shared with the writer.
   */
  async read(offset: number, maxRecords: number, maxBytes: number): Promise<ReadResult> {
    if (offset >= this.durableEnd) return { records: [], next: offset };
    if (offset < this.start) {
      throw new TributaryError(ErrorCodes.LOG_GAP, `offset ${offset} is no longer in the log (it starts at ${this.start})`, {
        fix: 'the consumer fell behind retention: set its on_gap (fail | rebuild), raise stream.retention, or rewind it',
      });
    }
    const hint = this.hints.get(offset);
    let seg = hint?.seg ?? this.segmentFor(offset)!;
    let pos = hint ? hint.pos : seg.positionFor(offset);
    const out: DecodedRecord[] = [];
    let bytes = 0;
    const full = () => out.length >= maxRecords || (bytes >= maxBytes && out.length > 0);
    // A reader in another process can find the file shorter than its view: a new writer's
    // recovery cut the records after the last commit (see refresh). Those were never handed
    // out, so the read ends there; the new epoch makes the next refresh build the view again.
    // Looping on the short read instead would hold the event loop for ever. (The writer's own
    // view never outruns its file: a short read there is damage.)
    const shortRead = (at: number) => {
      if (!this.opts.readOnly) throw corruption(seg, out.length ? out[out.length - 1]!.offset + 1 : offset, at, 'short');
    };
    scan: while (!full()) {
      if (pos >= seg.size) {
        const after = this.segments[this.segments.indexOf(seg) + 1];
        if (!after || after.base >= this.durableEnd) break;
        seg = after;
        pos = 0;
        continue;
      }
      let buf = seg.readSync(pos, Math.min(seg.size - pos, Math.max(256 << 10, Math.min(maxBytes, 8 << 20))));
      if (buf.length < HEADER_BYTES) {
        shortRead(pos);
        break;
      }
      let p = 0;
      while (p < buf.length && !full()) {
        const len = buf.length - p >= 8 ? buf.readUInt32LE(p + 4) : HEADER_BYTES;
        if (len > buf.length - p) {
          if (p > 0) break; // read again from this batch
          buf = seg.readSync(pos, Math.min(seg.size - pos, len));
        }
        const h = readBatchHeader(buf, p, seg.size - pos - p);
        if (h === 'short') {
          shortRead(pos + p);
          break scan;
        }
        if (typeof h === 'string') throw corruption(seg, out.length ? out[out.length - 1]!.offset + 1 : offset, pos + p, h);
        // Past the durable end: an unfinished transaction, or what a new writer put where it was.
        if (h.baseOffset >= this.durableEnd) break scan;
        if (h.baseOffset + h.count > offset) {
          let body: Buffer = buf;
          let bs = p + HEADER_BYTES;
          let be = p + h.length;
          if (h.flags & FLAG_ZSTD) {
            body = await decompress(buf.subarray(bs, be));
            bs = 0;
            be = body.length;
          }
          let stoppedInside = false;
          decodeBody(body, bs, be, h.baseOffset, (r) => {
            if (r.offset < offset) return;
            if (full() || r.offset >= this.durableEnd) {
              stoppedInside = true;
              return;
            }
            out.push(r);
            bytes += r.kind === 'event' ? r.envEnd - r.envStart + 64 : 64;
          });
          if (stoppedInside) {
            // The next read starts inside this batch: remember the batch, not what follows it.
            const next = out[out.length - 1]!.offset + 1;
            this.remember(next, seg, pos + p);
            return { records: out, next };
          }
        }
        p += h.length;
      }
      pos += p;
    }
    const next = out.length ? out[out.length - 1]!.offset + 1 : offset;
    this.remember(next, seg, pos);
    return { records: out, next };
  }

  /** The last batch {@link readRecord} decoded, reused while offsets fall inside it. */
  private recordCache: { seg: Segment; from: number; to: number; records: DecodedRecord[] } | null = null;

  /**
   * The one record at `offset` (null outside the durable, retained range). Reads only the
   * batch holding it, found through the offset index; a run of nearby offsets reuses the
   * batch (time travel and compaction read winners in offset order).
   */
  async readRecord(offset: number): Promise<DecodedRecord | null> {
    if (offset >= this.durableEnd || offset < this.start) return null;
    const c = this.recordCache;
    if (c && offset >= c.from && offset < c.to && this.segments.includes(c.seg)) return c.records[offset - c.from] ?? null;
    const seg = this.segmentFor(offset)!;
    let pos = seg.positionFor(offset);
    while (pos < seg.size) {
      const head = seg.readSync(pos, HEADER_BYTES);
      if (head.length < HEADER_BYTES) break;
      const len = head.readUInt32LE(4);
      const base = head.readDoubleLE(16);
      const count = head.readUInt32LE(24);
      if (base + count > offset && len >= HEADER_BYTES) {
        const buf = seg.readSync(pos, len);
        const h = readBatchHeader(buf, 0, seg.size - pos);
        if (typeof h === 'string') throw corruption(seg, base, pos, h);
        let body: Buffer = buf;
        let bs = HEADER_BYTES;
        let be = h.length;
        if (h.flags & FLAG_ZSTD) {
          body = await decompress(buf.subarray(bs, be));
          bs = 0;
          be = body.length;
        }
        const records: DecodedRecord[] = [];
        decodeBody(body, bs, be, h.baseOffset, (r) => records.push(r));
        this.recordCache = { seg, from: h.baseOffset, to: h.baseOffset + h.count, records };
        return records[offset - h.baseOffset] ?? null;
      }
      if (len < HEADER_BYTES) throw corruption(seg, offset, pos, 'length');
      pos += len;
    }
    return null;
  }

  private remember(offset: number, seg: Segment, pos: number): void {
    if (this.hints.size > 256) this.hints.clear();
    this.hints.set(offset, { seg, pos });
  }

  /**
   * The commit time of the first transaction in the log whose time is known, or null when
   * none is durable. An empty transaction (a heartbeat) before any other has no time of its
   * own (0): the history it would start is unknown, so it does not count.
   */
  async firstCommitTime(): Promise<number | null> {
    for (const seg of this.segments) {
      if (!seg.lastCommit) continue;
      let ts: number | null = null;
      await scanSegment(seg, { limit: seg.lastCommitEnd }, (b) => {
        for (const r of b.records) if (r.kind === 'commit' && r.tsMs > 0) {
          ts = r.tsMs;
          return false;
        }
        return true;
      });
      if (ts !== null) return ts;
    }
    return null;
  }

  /**
   * The first offset of the first transaction committed after `ts` (epoch ms): "the state
   * at ts" is every record before it. Commit order is log order; a commit time below an
   * earlier one (a clock step) does not reorder anything. Uses the time index: skips whole
   * segments, then scans from the last indexed transaction start at or below `ts`.
   */
  async offsetAfterTime(ts: number): Promise<number> {
    let commitEnd = this.start;
    for (const seg of this.segments) {
      if (seg.maxTs <= ts) {
        if (seg.lastCommit) commitEnd = seg.lastCommit.offset + 1;
        continue;
      }
      const entry = seg.timeEntryFor(ts);
      let from = 0;
      let fromOffset = seg.base;
      if (entry && (entry.pos > 0 || entry.offset === seg.base)) {
        from = entry.pos;
        fromOffset = entry.offset;
        commitEnd = entry.offset; // a transaction starts there
      }
      let found = -1;
      await scanSegment(seg, { from, fromOffset, limit: seg.size }, (b) => {
        for (const r of b.records) {
          if (r.kind !== 'commit') continue;
          if (r.tsMs > ts) {
            found = commitEnd;
            return false;
          }
          commitEnd = r.offset + 1;
        }
        return true;
      });
      if (found >= 0) return found;
    }
    return commitEnd;
  }

  /**
   * The first offset of the first transaction at or after source position `pos`, compared
   * with `compare` (the source's numeric order); the end of the log when there is none.
   */
  async offsetAtPosition(pos: string, compare: (a: string, b: string) => number): Promise<number> {
    for (const seg of this.segments) {
      if (seg.lastCommit && compare(seg.lastCommit.txn, pos) < 0) continue;
      let found = -1;
      await scanSegment(seg, { limit: seg.size }, (b) => {
        for (const r of b.records) {
          if (compare(r.txn, pos) >= 0) {
            found = r.offset;
            return false;
          }
        }
        return true;
      });
      if (found >= 0) return found;
    }
    return this.durableEnd;
  }

  // ----- retention ---------------------------------------------------------------------

  /**
   * Remove whole segments, oldest first: those whose newest commit is older than
   * `maxAgeMs` and that every consumer has read past (`keepFrom`), and then, while the log
   * is over `maxBytes`, the oldest ones whatever the consumers (the size cap wins). The
   * active segment is never removed. `before` runs with the segments about to go (the
   * compactor folds them into the compacted state first).
   */
  async retain(opts: { now: number; maxAgeMs?: number; maxBytes?: number; keepFrom: number; before?(segs: Segment[]): Promise<void> }): Promise<Segment[]> {
    const sealed = this.segments.slice(0, -1);
    let total = this.bytes;
    const remove: Segment[] = [];
    for (const seg of sealed) {
      const old = opts.maxAgeMs !== undefined && seg.maxTs < opts.now - opts.maxAgeMs && seg.next <= opts.keepFrom;
      const big = opts.maxBytes !== undefined && total > opts.maxBytes;
      if (!old && !big) break;
      remove.push(seg);
      total -= seg.size;
    }
    if (!remove.length) return [];
    await opts.before?.(remove);
    for (const seg of remove) {
      // Its sidecar may still be being written: after it, so no sidecar outlives its segment.
      await this.sidecars.get(seg.base);
      this.segments.shift();
      seg.closeReads();
      await rm(seg.path, { force: true });
      await rm(seg.sidecarPath, { force: true });
    }
    this.hints.clear();
    await syncDir(this.dir);
    if (!this.opts.readOnly) this.writeHead();
    return remove;
  }

  /** The key entries of the active segment that are durable, sorted (for lookups). */
  activeKeys(): KeyRun {
    return this.opts.readOnly ? (this.readerRun.get(this.active.base) ?? new KeyRun()) : this.run;
  }

  /**
   * Stop: write what is queued (a batch of an unfinished transaction is dropped at the next
   * open anyway), sync, and release files. Idempotent.
   */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      if (!this.opts.readOnly) {
        if (!this.openTxn) this.enqueue();
        await this.flush().catch(() => undefined);
        await this.sidecarsWritten();
        await this.fh?.close().catch(() => undefined);
        this.fh = null;
      }
      if (this.headFd !== null) closeSync(this.headFd);
      this.headFd = null;
      for (const s of this.segments) s.closeReads();
    })());
  }
}

function corruption(seg: Segment, offset: number, pos: number, problem: string): TributaryError {
  return new TributaryError(ErrorCodes.LOG_CORRUPT, `the log is damaged: segment ${seg.path}, at offset ${offset} (file position ${pos}): ${problem}`, {
    fix: 'restore the segment from a backup; or, to keep what precedes it, move the damaged segment and everything after it aside (consumers past it rewind to before it). Tributary never skips damaged records silently',
  });
}

const tableHashes = new Map<string, number>();
function tableHashCached(name: string): number {
  let h = tableHashes.get(name);
  if (h === undefined) {
    h = 0x811c9dc5;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
    h >>>= 0;
    tableHashes.set(name, h);
  }
  return h;
}

/**
 * Where the platform has it, segments are written with O_DSYNC: each write returns once its
 * data is durable, as a write and an fdatasync would, in one call to the thread pool instead
 * of two (less of the appending thread's time, and one hand-off less per group commit).
 */
const DSYNC = typeof constants.O_DSYNC === 'number' && process.platform === 'linux';

/** Open a segment for appending (see {@link DSYNC}). */
function openForAppend(path: string): Promise<FileHandle> {
  return open(path, DSYNC ? constants.O_RDWR | constants.O_DSYNC : 'r+');
}

/** The batches' bytes as few buffers: neighbours in one chunk become one view (no copy). */
function coalesce(batches: SealedBatch[]): Buffer[] {
  const out: Buffer[] = [];
  let cur: Buffer | null = null;
  for (const { bytes: b } of batches) {
    if (cur && cur.buffer === b.buffer && cur.byteOffset + cur.length === b.byteOffset) cur = Buffer.from(cur.buffer, cur.byteOffset, cur.length + b.length);
    else {
      if (cur) out.push(cur);
      cur = b;
    }
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * Join runs of consecutive batches that each end with a commit into batches of up to `max`
 * bytes. A joined batch holds several transactions and ends with its last part's commit, so
 * recovery's rule holds: a batch that holds the last commit ends with it.
 * The parts' table definitions are repeated inside it, which readers take in order. The
 * parts' chunks are handed back at once (their bytes are copied); the last part's is handed
 * back after the write, as for any batch. A joined batch's header is left for
 * {@link compressBatch} to write: its checksum over the uncompressed body would be thrown away.
 */
export function joinBatches(batches: SealedBatch[], queued: number[], max: number, release: (c: SealedBatch['chunk']) => void): { batches: SealedBatch[]; queued: number[] } {
  const out: SealedBatch[] = [];
  const outQueued: number[] = [];
  for (let i = 0; i < batches.length; ) {
    let j = i + 1;
    let body = batches[i]!.bytes.length - HEADER_BYTES;
    // Only batches that end with a commit: a joined batch that ended inside a transaction
    // would hold a commit before that transaction's start, and recovery, which cuts after the
    // batch that holds the last commit, would keep the unfinished start.
    if (batches[i]!.commit) {
      while (j < batches.length && batches[j]!.commit && body + batches[j]!.bytes.length - HEADER_BYTES <= max) body += batches[j++]!.bytes.length - HEADER_BYTES;
    }
    if (j === i + 1) {
      out.push(batches[i]!);
      outQueued.push(queued[i]!);
      i = j;
      continue;
    }
    const parts = batches.slice(i, j);
    const last = parts[parts.length - 1]!;
    const bytes = Buffer.allocUnsafe(HEADER_BYTES + body);
    let p = HEADER_BYTES;
    let count = 0;
    let maxTsMs = 0;
    let q = 0;
    for (let k = 0; k < parts.length; k++) {
      const b = parts[k]!;
      p += b.bytes.copy(bytes, p, HEADER_BYTES);
      count += b.count;
      maxTsMs = Math.max(maxTsMs, b.maxTsMs);
      q += queued[i + k]!;
      if (b !== last) release(b.chunk);
    }
    out.push({ ...last, bytes, baseOffset: parts[0]!.baseOffset, count, maxTsMs });
    outQueued.push(q);
    i = j;
  }
  return { batches: out, queued: outQueued };
}

/**
 * Compress a batch's body with zstd, and seal its header. A body under 1 KiB, or one that does
 * not shrink, stays as it is, sealed plain: a joined batch comes here with its header not yet
 * written (see {@link joinBatches}); for any other, sealing again writes what it held.
 */
async function compressBatch(b: SealedBatch): Promise<SealedBatch> {
  const body = b.bytes.subarray(HEADER_BYTES);
  const h = { baseOffset: b.baseOffset, count: b.count, bodyLength: body.length, maxTsMs: b.maxTsMs };
  const z = body.length < 1024 ? null : await compress(body, 3);
  if (!z || z.length >= body.length) {
    sealBatch(b.bytes, b.bytes.length, { ...h, flags: b.commit ? FLAG_COMMIT : 0 });
    return b;
  }
  const out = Buffer.allocUnsafe(HEADER_BYTES + z.length);
  z.copy(out, HEADER_BYTES);
  sealBatch(out, out.length, { ...h, flags: (b.commit ? FLAG_COMMIT : 0) | FLAG_ZSTD });
  return { ...b, bytes: out };
}
