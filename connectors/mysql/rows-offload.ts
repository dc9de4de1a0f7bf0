/**
 * The main-thread side of the rows decode worker: an ordered output queue in front of the
 * source, and the worker that decodes rows events of serialized tables into envelopes.
 *
 * Why: decoding and serializing rows is most of the work of a binlog drain, and one Node
 * thread is the limit while the second core idles. The main thread keeps the connection,
 * the event framing and every piece of BinlogDecoder state (FDE, checksums, GTIDs,
 * TABLE_MAP, transactions, DDL, positions); only the row images go to the worker.
 *
 * Order: everything the decoder produces passes through this queue, in binlog order: items
 * ({@link emit}), deferred callbacks ({@link run}: heartbeats, schema-history changes) and
 * offloaded rows events ({@link rows}). Entries are delivered strictly in that order; an
 * entry behind a rows event still in the worker waits for it. An item reaches the sink at
 * once when nothing is waiting (the usual case at low rates), so only the rows events pay
 * the worker's round trip. Event indexes (`idx`) depend on the row counts, known only after
 * decoding, so every event is numbered here, at delivery.
 *
 * Batching: rows events are copied into one buffer and posted at the end of the current
 * synchronous run (a microtask: one socket chunk's events) or when the buffer is full, not
 * one message per event; the worker answers each batch with one transferred buffer of
 * UTF-8 envelopes and their offsets.
 *
 * Memory: the bytes of events posted but not delivered are capped; over the cap the source
 * pauses reading the socket ({@link OffloadSink.pause}) until half of it is delivered.
 *
 * Reconnects: {@link begin} starts a new generation; results of an earlier one are dropped.
 */
import { Worker } from 'node:worker_threads';
import { SerializedChangeEvent } from '../../src/core/event.js';
import { ErrorCodes, TributaryError, type ErrorCode } from '../../src/core/errors.js';
import type { MysqlSourceItem, OffloadedRows, RowsOffloadTarget } from './decoder.js';
import type { MysqlPosition } from './position.js';
import type { RowDecoder } from './row-decoder.js';
import { type BatchMessage, M, type ResultMessage, type TableDesc, type WorkerError } from './rows-protocol.js';

/** Where the queue delivers, and how it applies backpressure; one per connection. */
export interface OffloadSink {
  /** One item, in binlog order, its `idx` numbered. */
  deliver(item: MysqlSourceItem): void;
  /** Too many bytes wait for the worker: stop reading the binlog. Counted with {@link resume}. */
  pause(): void;
  resume(): void;
  /**
   * Decoding a rows event failed (the same error inline decoding would have thrown), or the
   * worker died. Fail the stream; nothing more is delivered for this connection.
   */
  fail(err: Error): void;
}

export interface RowsOffloadOptions {
  /** Pipeline name, the envelopes' `source.name`. */
  pipeline: string;
  /** Event bytes posted to the worker but not delivered above which reading pauses (default 4 MiB). */
  maxInFlightBytes?: number;
  /** Event bytes after which a batch is posted without waiting for the end of the tick (default 256 KiB). */
  batchBytes?: number;
  /**
   * Let the main thread decode a rows event itself while the worker has more than this many
   * event bytes posted and not yet decoded (default 64 KiB; Infinity: never). With a fast
   * sink the worker is the slower side, and the main thread would otherwise idle.
   */
  shareAbove?: number;
  /** Items waiting behind rows still in the worker above which reading pauses too (default 16384). */
  maxQueued?: number;
}

/** Tables mirrored in the worker before it is told to forget them all (TABLE_MAP churn). */
const MAX_TABLES = 512;

/** A batch being filled, then in the worker, then (with its result) being delivered. */
class Batch {
  evs: Buffer;
  evLen = 0;
  meta: Float64Array;
  count = 0;
  readonly descs: TableDesc[] = [];
  readonly strs: string[] = [];
  private lastFile: string | null = null;
  private lastFileIdx = -1;
  private lastGtid: string | null = null;
  private lastGtidIdx = -1;
  reset = false;
  /** The result, once back. */
  done = false;
  out: Buffer | null = null;
  ends: Uint32Array | null = null;
  counts: Uint32Array | null = null;
  error: WorkerError | null = null;
  errorAt = -1;
  /** Next row of {@link ends} to deliver. */
  row = 0;

  constructor(
    readonly seq: number,
    evs: ArrayBuffer,
    meta: ArrayBuffer,
  ) {
    this.evs = Buffer.from(evs);
    this.meta = new Float64Array(meta);
  }

  add(job: OffloadedRows, desc: number): number {
    const len = job.ev.length;
    if (this.evLen + len > this.evs.length) {
      const next = Buffer.from(new ArrayBuffer(Math.max(this.evs.length * 2, this.evLen + len)));
      this.evs.copy(next, 0, 0, this.evLen);
      this.evs = next;
    }
    if ((this.count + 1) * M.SIZE > this.meta.length) {
      const next = new Float64Array(this.meta.length * 2);
      next.set(this.meta);
      this.meta = next;
    }
    const at = this.evLen;
    job.ev.copy(this.evs, at);
    this.evLen += len;
    const f = this.count * M.SIZE;
    const m = this.meta;
    m[f + M.DESC] = desc;
    m[f + M.EV_OFF] = at;
    m[f + M.EV_LEN] = len;
    m[f + M.BODY_POS] = job.bodyPos;
    m[f + M.END] = job.end;
    m[f + M.TYPE] = job.type;
    m[f + M.START] = job.start;
    m[f + M.POS] = job.pos;
    m[f + M.TS] = job.ts;
    m[f + M.SERVER_ID] = job.serverId;
    m[f + M.NOW] = job.now;
    if (job.file !== this.lastFile || this.lastFileIdx < 0) {
      this.lastFile = job.file;
      this.lastFileIdx = this.strs.push(job.file) - 1;
    }
    m[f + M.FILE] = this.lastFileIdx;
    if (job.gtid === null) m[f + M.GTID] = -1;
    else {
      if (job.gtid !== this.lastGtid || this.lastGtidIdx < 0) {
        this.lastGtid = job.gtid;
        this.lastGtidIdx = this.strs.push(job.gtid) - 1;
      }
      m[f + M.GTID] = this.lastGtidIdx;
    }
    return this.count++;
  }
}

/** A rows event's place in the queue. */
class Job {
  constructor(
    readonly batch: Batch,
    readonly k: number,
    readonly qualified: string,
    readonly ts: number,
    readonly txn: MysqlPosition,
  ) {}
}

type Entry = MysqlSourceItem | Job | (() => void);

/**
 * The ordered queue and its worker; one per source, reused across connections (see
 * {@link begin}). Pass it as the decoder's `offload`, and route the decoder's `emit` to
 * {@link emit}.
 */
export class RowsOffload implements RowsOffloadTarget {
  private readonly pipeline: string;
  private readonly maxInFlight: number;
  private readonly batchBytes: number;
  private readonly shareAbove: number;
  /** [0]: seq + 1 of the last batch the worker finished decoding (it stores it before posting the result). */
  private readonly progress = new Int32Array(new SharedArrayBuffer(4));
  private readonly maxQueued: number;
  private worker: Worker | null = null;
  private sink: OffloadSink | null = null;
  private gen = 0;
  private seq = 0;
  private q: Entry[] = [];
  private head = 0;
  /** Batch being filled (posted at the end of the tick), and batches posted, oldest first. */
  private filling: Batch | null = null;
  private posted: Batch[] = [];
  private inFlight = 0;
  private pressured = false;
  private failed = false;
  private closed: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];
  /** Tables the worker holds, by their decoder; ids never repeat. */
  private known = new WeakMap<RowDecoder, number>();
  private knownCount = 0;
  private nextDesc = 1;
  /** Event numbering at delivery: the transaction of the last event and the next idx. */
  private curTxn: MysqlPosition | null = null;
  private nextIdx = 0;
  /** Buffers to reuse: batch inputs back from the worker, and outputs to hand back to it. */
  private evsPool: ArrayBuffer[] = [];
  private metaPool: ArrayBuffer[] = [];
  private free: ArrayBuffer[] = [];
  private readonly flushTick = (): void => {
    const b = this.filling;
    if (b) this.post(b);
  };

  constructor(opts: RowsOffloadOptions) {
    this.pipeline = opts.pipeline;
    this.maxInFlight = opts.maxInFlightBytes ?? 4 << 20;
    this.batchBytes = opts.batchBytes ?? 256 << 10;
    this.shareAbove = opts.shareAbove ?? 64 << 10;
    this.maxQueued = opts.maxQueued ?? 16384;
  }

  /**
   * Starts a connection: whatever the previous one left (queued items, batches in the
   * worker, waiters of {@link idle}) is dropped, and later results of its batches ignored.
   * `null` only drops (the connection ended).
   */
  begin(sink: OffloadSink | null): void {
    this.gen++;
    this.sink = sink;
    this.q = [];
    this.head = 0;
    this.filling = null;
    this.posted = [];
    this.inFlight = 0;
    this.pressured = false;
    this.failed = false;
    this.curTxn = null;
    this.nextIdx = 0;
    // Dropped unresolved: their continuations belong to the dead connection.
    this.idleWaiters = [];
    this.worker?.unref();
  }

  /** True while anything waits to be delivered. */
  get busy(): boolean {
    return this.head < this.q.length && !this.failed;
  }

  /**
   * Resolves once everything queued so far is delivered, or delivery stopped on an error
   * ({@link OffloadSink.fail} was called). Dropped unresolved by {@link begin}.
   */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** An item from the decoder, delivered in order. */
  emit(item: MysqlSourceItem): void {
    if (this.failed) return;
    if (this.head === this.q.length) this.deliver(item);
    else if (this.q.push(item) - this.head > this.maxQueued && !this.pressured) this.press();
  }

  /**
   * Runs `fn` in order with the items: now when nothing waits (returns true), else when
   * everything queued before it is delivered (returns false).
   */
  run(fn: () => void): boolean {
    if (this.failed) return false;
    if (this.head === this.q.length) {
      fn();
      return true;
    }
    this.q.push(fn);
    return false;
  }

  /**
   * A rows event of a serialized table, from the decoder: copied into the batch being
   * filled, or declined (false: decode it inline) while the worker has enough queued.
   */
  rows(job: OffloadedRows): boolean {
    if (this.failed || !this.sink) return true;
    if (this.posted.length > 0 && this.undecoded() > this.shareAbove) return false;
    let b = this.filling;
    if (!b) {
      const size = Math.max(64 << 10, job.ev.length);
      const evs = this.evsPool.length > 0 && this.evsPool[this.evsPool.length - 1]!.byteLength >= size ? this.evsPool.pop()! : new ArrayBuffer(size);
      b = this.filling = new Batch(this.seq++, evs, this.metaPool.pop() ?? new ArrayBuffer(64 * M.SIZE * 8));
      if (this.knownCount >= MAX_TABLES) {
        // Start over: tables used from this batch on are sent again.
        b.reset = true;
        this.known = new WeakMap();
        this.knownCount = 0;
      }
      queueMicrotask(this.flushTick);
    }
    let desc = this.known.get(job.dec);
    if (desc === undefined) {
      desc = this.nextDesc++;
      this.known.set(job.dec, desc);
      this.knownCount++;
      const d = job.dec;
      b.descs.push({ id: desc, tableId: d.map.tableId, sig: d.map.signature, mariadb: d.map.mariadb, names: d.names, hint: d.hint });
    }
    const k = b.add(job, desc);
    this.q.push(new Job(b, k, job.qualified, job.ts, job.txn));
    this.inFlight += job.ev.length;
    if (this.inFlight > this.maxInFlight && !this.pressured) this.press();
    if (b.evLen >= this.batchBytes) this.post(b);
    return true;
  }

  /**
   * Event bytes the worker has not decoded yet. Not the posted batches whose results are
   * not handled yet: those may be done and only wait for this thread, which is busy (here).
   */
  private undecoded(): number {
    const done = Atomics.load(this.progress, 0);
    let n = 0;
    for (const b of this.posted) if (b.seq >= done) n += b.evLen;
    return n;
  }

  private press(): void {
    this.pressured = true;
    this.sink?.pause();
  }

  private post(b: Batch): void {
    if (this.filling !== b) return;
    this.filling = null;
    const w = this.ensureWorker();
    this.posted.push(b);
    if (this.posted.length === 1) w.ref();
    const msg: BatchMessage = {
      gen: this.gen, seq: b.seq, reset: b.reset, descs: b.descs, strs: b.strs,
      meta: b.meta.buffer as ArrayBuffer, count: b.count, evs: b.evs.buffer as ArrayBuffer, free: this.free,
    };
    this.free = [];
    w.postMessage(msg, [msg.meta, msg.evs, ...msg.free]);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    // Compiled next to this module in dist/ (rows-worker.js).
    const w = new Worker(new URL('./rows-worker.js', import.meta.url), { workerData: { pipeline: this.pipeline, progress: this.progress } });
    w.on('message', (m: ResultMessage) => this.onResult(m));
    const dead = (err: Error): void => {
      if (this.worker !== w) return;
      this.worker = null;
      // Its tables are gone with it.
      this.known = new WeakMap();
      this.knownCount = 0;
      if (this.posted.length > 0 || this.filling) this.fail(err);
    };
    w.on('error', (err) => dead(new TributaryError(ErrorCodes.MYSQL_DECODE, `the rows decode worker failed: ${err.message}`, { cause: err })));
    w.on('exit', (code) => dead(new TributaryError(ErrorCodes.MYSQL_DECODE, `the rows decode worker exited (code ${code})`)));
    // Only batches in flight keep the process alive (post() refs, onResult() unrefs).
    w.unref();
    this.worker = w;
    return w;
  }

  private onResult(m: ResultMessage): void {
    if (m.gen !== this.gen) return; // from a connection that is gone
    const b = this.posted.shift();
    if (!b || b.seq !== m.seq) {
      this.fail(new Error(`rows decode worker: result ${m.seq} out of order (expected ${b?.seq})`));
      return;
    }
    if (this.posted.length === 0) this.worker?.unref();
    b.done = true;
    b.out = Buffer.from(m.out);
    b.ends = new Uint32Array(m.ends);
    b.counts = new Uint32Array(m.counts);
    b.error = m.error ?? null;
    b.errorAt = m.errorAt ?? -1;
    this.inFlight -= b.evLen;
    if (this.evsPool.length < 4) this.evsPool.push(m.evs);
    if (this.metaPool.length < 4) this.metaPool.push(m.meta);
    this.drain();
    if (this.pressured && this.inFlight <= this.maxInFlight / 2 && this.q.length - this.head <= this.maxQueued / 2 && !this.failed) {
      this.pressured = false;
      this.sink?.resume();
    }
  }

  /** Delivers from the head of the queue up to the first rows event still in the worker. */
  private drain(): void {
    const q = this.q;
    while (this.head < q.length && !this.failed) {
      const e = q[this.head]!;
      if (e instanceof Job) {
        if (!e.batch.done) break;
        this.head++;
        this.deliverJob(e);
      } else {
        this.head++;
        if (typeof e === 'function') e();
        else this.deliver(e);
      }
    }
    if (this.head === q.length) {
      this.q = [];
      this.head = 0;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of waiters) r();
    } else if (this.head > 4096 && this.head * 2 > q.length) {
      this.q = q.slice(this.head);
      this.head = 0;
    }
  }

  private deliverJob(j: Job): void {
    const b = j.batch;
    const out = b.out!;
    const ends = b.ends!;
    const n = b.counts![j.k]!;
    let r = b.row;
    let s = r === 0 ? 0 : ends[r - 1]!;
    for (let i = 0; i < n; i++, r++) {
      const e = ends[r]!;
      // The event holds its bytes in the worker's output: no string unless a sink asks for one.
      this.deliver({ kind: 'event', event: SerializedChangeEvent.fromBytes(out, s, e - s, j.qualified, j.ts), txn: j.txn, idx: 0 });
      s = e;
    }
    b.row = r;
    if (j.k === b.errorAt && b.error) this.fail(rebuild(b.error));
    else if (j.k === b.count - 1) {
      // The offsets may be written over again; the output stays with its events.
      if (this.free.length < 8) this.free.push(ends.buffer as ArrayBuffer);
      b.out = null;
      b.ends = null;
    }
  }

  /** Numbers an event (see the module comment) and hands the item on. */
  private deliver(item: MysqlSourceItem): void {
    if (item.kind === 'event') {
      if (item.txn !== this.curTxn) {
        this.curTxn = item.txn;
        this.nextIdx = 0;
      }
      item.idx = this.nextIdx++;
    } else this.curTxn = null;
    this.sink?.deliver(item);
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.q = [];
    this.head = 0;
    this.sink?.fail(err);
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of waiters) r();
  }

  /** True once delivery stopped on an error, until the next {@link begin}. */
  get hasFailed(): boolean {
    return this.failed;
  }

  /** Terminates the worker; idempotent. Nothing is delivered afterwards. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      this.begin(null);
      this.failed = true;
      const w = this.worker;
      this.worker = null;
      if (w) await w.terminate().catch(() => undefined);
    })());
  }
}

/** The worker's error as the main thread would have thrown it. */
function rebuild(e: WorkerError): Error {
  if (e.code !== undefined && e.name === 'TributaryError') {
    const err = new TributaryError(e.code as ErrorCode, e.message, { fix: e.fix, retryable: e.retryable });
    if (e.stack) err.stack = e.stack;
    return err;
  }
  const err = new Error(e.message);
  err.name = e.name;
  if (e.code !== undefined) (err as { code?: string }).code = e.code;
  if (e.stack) err.stack = e.stack;
  return err;
}
