/**
 * Snapshot readers in worker threads, so reading and serializing chunks runs on another
 * core than the stream, the envelopes and the sinks.
 *
 * A {@link ThreadedSupport} wraps a source's {@link SnapshotSupport}: `tables`, `plan` and
 * `planner` stay on the main thread (a few small queries), while every reader lives in a
 * thread (thread-main.ts) with its own database connection. The main thread still drives
 * each chunk step by step — low watermark, read, high watermark — so the watermark protocol
 * and the coordinator's window bookkeeping are exactly those of an inline reader; only the
 * rows arrive packed in one transferred buffer (packed-rows.ts).
 */
import { Worker } from 'node:worker_threads';
import { unpackRows } from './packed-rows.js';
import { deserializeError, type ThreadReply, type ThreadRequest } from './thread-protocol.js';
import { ByteRows, type ChunkBounds, type ChunkPlanner, type ChunkRows, type SnapshotReader, type SnapshotSupport, type SnapshotTable, type ThreadSpec } from './types.js';

/** Distributes the union over a request without its id. */
type Request = ThreadRequest extends infer R ? (R extends ThreadRequest ? Omit<R, 'id'> : never) : never;

/** How long a thread with no reader stays up for the next one (on-demand snapshots, BullMQ jobs). */
const IDLE_MS = 5_000;

/** One worker thread and the requests waiting for its answers. */
class ReaderThread {
  readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private dead: Error | null = null;
  /** Readers open (or opening) in this thread. */
  readers = 0;
  private idle?: NodeJS.Timeout;

  constructor(spec: ThreadSpec, onExit: (t: ReaderThread) => void) {
    this.worker = new Worker(new URL('./thread-main.js', import.meta.url), { workerData: spec });
    // A thread never keeps the process alive by itself: close() ends it, idle ones end alone.
    this.worker.unref();
    this.worker.on('message', (m: ThreadReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error) w.reject(deserializeError(m.error));
      else w.resolve(m);
    });
    const fail = (err: Error) => {
      this.dead ??= err;
      for (const w of this.waiting.values()) w.reject(this.dead);
      this.waiting.clear();
      clearTimeout(this.idle);
      onExit(this);
    };
    this.worker.on('error', (err) => fail(new Error(`snapshot reader thread failed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => fail(new Error(`snapshot reader thread exited (code ${code})`)));
  }

  call(req: Request): Promise<ThreadReply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id } as ThreadRequest);
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  acquire(): void {
    this.readers++;
    clearTimeout(this.idle);
  }

  release(): void {
    if (--this.readers > 0 || this.dead) return;
    this.idle = setTimeout(() => void this.worker.terminate(), IDLE_MS);
    this.idle.unref();
  }

  terminate(): Promise<void> {
    clearTimeout(this.idle);
    return this.worker.terminate().then(() => undefined);
  }
}

/**
 * A source's snapshot support with its readers in up to `threads` worker threads (readers
 * beyond that share threads). `warm(n)` starts threads and opens readers ahead of time, so a
 * thread's start-up (its modules, its connection) overlaps the pipeline's own.
 */
export class ThreadedSupport implements SnapshotSupport {
  private readonly pool: ReaderThread[] = [];
  private readonly spares: Promise<SnapshotReader>[] = [];
  private nextReader = 1;
  private closed?: Promise<void>;

  constructor(
    private readonly inner: SnapshotSupport,
    private readonly spec: ThreadSpec,
    private readonly threads: number,
  ) {}

  tables(only?: string[]): Promise<SnapshotTable[]> {
    return this.inner.tables(only);
  }

  plan(table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]> {
    return this.inner.plan(table, chunkRows, where);
  }

  planner(): Promise<ChunkPlanner> {
    return this.inner.planner();
  }

  checkFilter(table: SnapshotTable, where: string): Promise<void> {
    return this.inner.checkFilter(table, where);
  }

  /** Open `n` readers now, for the next `reader()` calls to take. */
  warm(n: number): void {
    while (this.spares.length < n) {
      const r = this.open();
      r.catch(() => undefined); // reported to whoever takes it
      this.spares.push(r);
    }
  }

  reader(): Promise<SnapshotReader> {
    if (this.closed) return Promise.reject(new Error('snapshot readers are closed'));
    return this.spares.shift() ?? this.open();
  }

  private thread(): ReaderThread {
    const live = this.pool.filter((t) => t.alive);
    if (live.length < this.threads) {
      const t = new ReaderThread(this.spec, (dead) => {
        const i = this.pool.indexOf(dead);
        if (i >= 0) this.pool.splice(i, 1);
      });
      this.pool.push(t);
      return t;
    }
    return live.reduce((a, b) => (b.readers < a.readers ? b : a));
  }

  private async open(): Promise<SnapshotReader> {
    const t = this.thread();
    const reader = this.nextReader++;
    t.acquire();
    try {
      await t.call({ op: 'open', reader });
    } catch (err) {
      t.release();
      throw err;
    }
    let closed: Promise<void> | undefined;
    return {
      async watermark(wid, mark) {
        await t.call({ op: 'watermark', reader, wid, mark });
      },
      async read(table, chunk, where): Promise<ChunkRows> {
        const r = await t.call({ op: 'read', reader, table, chunk, where });
        return unpackRows(r.rows!);
      },
      // The coordinator's own path: the packed bytes go on as the rows' bytes (no strings,
      // no second encoding on the main thread, which is what the thread is there to spare).
      async readInto(table, chunk, where, out): Promise<void> {
        const p = (await t.call({ op: 'read', reader, table, chunk, where })).rows!;
        const data = Buffer.from(p.data, 0, p.size);
        const ends = new Int32Array(p.ends, 0, p.count * 2);
        if (out instanceof ByteRows) {
          out.adopt(data, ends, p.count);
          return;
        }
        let s = 0;
        for (let i = 0; i < p.count; i++) {
          out.bytes(data, s, ends[2 * i]!, ends[2 * i + 1]!);
          s = ends[2 * i + 1]!;
        }
      },
      close() {
        return (closed ??= t
          .call({ op: 'close', reader })
          .then(
            () => undefined,
            () => undefined,
          )
          .finally(() => t.release()));
      },
    };
  }

  /** Close spare readers and end every thread. Idempotent. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      const spares = this.spares.splice(0);
      await Promise.allSettled(spares.map((p) => p.then((r) => r.close())));
      await Promise.allSettled(this.pool.map((t) => t.terminate()));
    })());
  }
}
