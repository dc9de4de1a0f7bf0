/**
 * The rows decode worker (a node:worker_threads entry; the main side is rows-offload.ts).
 *
 * It receives runs of rows events of serialized tables and writes every row's change-event
 * envelope, with the same code as the inline path (rows-json.ts), into one byte buffer per
 * run, which it hands back, transferred, with the row end offsets and per-event row counts.
 * It keeps one RowDecoder per table, built from the TABLE_MAP the main thread sends once.
 *
 * Events are decoded strictly in the order received; a failing event stops its run, and the
 * error goes back with the rows done before it, as inline decoding would have emitted them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TributaryError } from '../../src/core/errors.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import { Reader } from './reader.js';
import { RowDecoder } from './row-decoder.js';
import { RowsJsonWriter, RowsLayout, fileBytesFor, gtidBytesFor, rowsOverrun, sourceHeadFor } from './rows-json.js';
import { type BatchMessage, M, type ResultMessage, type TableDesc, type WorkerError } from './rows-protocol.js';
import { parseTableMapBody } from './table-map.js';

interface Table {
  dec: RowDecoder;
  sourceHead: Buffer;
}

const data = (workerData ?? {}) as { pipeline?: string; progress?: Int32Array };
const pipeline = String(data.pipeline ?? '');
/** Shared with the main thread: seq + 1 of the last batch decoded (rows-offload.ts shares work by it). */
const progress = data.progress ?? new Int32Array(1);
const tables = new Map<number, Table>();
const layout = new RowsLayout();
const writer = new RowsJsonWriter();
/** Envelope pieces of the last file and GTID (they change rarely; most runs have one of each). */
let fileOf: string | null = null;
let fileBytes: Buffer = Buffer.alloc(0);
let gtidOf: string | null | undefined;
let gtidBytes: Buffer = Buffer.alloc(0);
/**
 * Envelope bytes per event byte of the last run (the `source` block makes an envelope many
 * times its binary row): the next run's buffer is sized from it, so it rarely grows (a grow
 * copies everything written so far).
 */
let ratio = 8;
/** Output and offset buffers the main thread handed back (see BatchMessage.free). */
const pool: ArrayBuffer[] = [];

/** A buffer of at least `size` bytes from the pool, else a new one. */
function take(size: number): ArrayBuffer {
  for (let i = pool.length - 1; i >= 0; i--) {
    if (pool[i]!.byteLength >= size) {
      const ab = pool[i]!;
      pool[i] = pool[pool.length - 1]!;
      pool.pop();
      return ab;
    }
  }
  return new ArrayBuffer(size);
}

function build(d: TableDesc): Table {
  const sig = Buffer.from(d.sig.buffer, d.sig.byteOffset, d.sig.byteLength);
  const map = parseTableMapBody(new Reader(sig), d.tableId, d.mariadb);
  return { dec: new RowDecoder(map, d.names, d.hint), sourceHead: sourceHeadFor(pipeline, map.db, map.table) };
}

/** A growable Uint32 list whose buffer is transferred at the end of a run. */
class U32List {
  a: Uint32Array;
  n = 0;
  constructor(cap: number) {
    const ab = take(cap * 4);
    this.a = new Uint32Array(ab, 0, ab.byteLength >> 2);
  }
  push(v: number): void {
    if (this.n === this.a.length) {
      const next = new Uint32Array(this.a.length * 2);
      next.set(this.a);
      this.a = next;
    }
    this.a[this.n++] = v;
  }
}

function describe(err: unknown): WorkerError {
  if (err instanceof TributaryError) {
    return { name: err.name, message: err.message, code: err.code, fix: err.fix, retryable: err.retryable, stack: err.stack };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, stack: e.stack, code: (e as { code?: string }).code };
}

/**
 * The output as a transferable ArrayBuffer of its own: a Buffer from the shared pool (small
 * allocations) must be copied, or transferring would detach the pool.
 */
function ownBuffer(b: Buffer, n: number): ArrayBuffer {
  const ab = b.buffer;
  if (b.byteOffset === 0 && ab instanceof ArrayBuffer && ab.byteLength === b.length) return ab;
  return b.buffer.slice(b.byteOffset, b.byteOffset + n) as ArrayBuffer;
}

function run(m: BatchMessage): ResultMessage {
  for (const ab of m.free) if (pool.length < 16) pool.push(ab);
  if (m.reset) tables.clear();
  for (const d of m.descs) tables.set(d.id, build(d));
  const meta = new Float64Array(m.meta);
  const evs = Buffer.from(m.evs);
  // Not from the pool: the main thread's events keep this buffer as their bytes.
  const out = new JsonBytes(0);
  out.buf = Buffer.allocUnsafeSlow(Math.max(16384, Math.ceil(evs.length * ratio * 1.1)));
  writer.out = out;
  const ends = new U32List(Math.max(256, evs.length >> 5));
  const counts = new Uint32Array(m.count);
  let k = 0;
  let rows = 0;
  try {
    for (; k < m.count; k++) {
      rows = 0;
      const f = k * M.SIZE;
      const t = tables.get(meta[f + M.DESC]!);
      if (!t) throw new Error(`rows worker: unknown table ${meta[f + M.DESC]}`);
      const off = meta[f + M.EV_OFF]!;
      // A view of exactly the event, as inline: reads past it fail alike.
      const ev = evs.subarray(off, off + meta[f + M.EV_LEN]!);
      const type = meta[f + M.TYPE]!;
      const start = meta[f + M.START]!;
      const file = m.strs[meta[f + M.FILE]!]!;
      const gi = meta[f + M.GTID]!;
      const gtid = gi < 0 ? null : m.strs[gi]!;
      const dec = t.dec;
      layout.read(ev, new Reader(ev, meta[f + M.BODY_POS]!, meta[f + M.END]!), type, dec, file, start);
      if (file !== fileOf) {
        fileOf = file;
        fileBytes = fileBytesFor(file);
      }
      if (gtid !== gtidOf) {
        gtidOf = gtid;
        gtidBytes = gtidBytesFor(gtid);
      }
      writer.begin(t.sourceHead, meta[f + M.TS]!, fileBytes, meta[f + M.POS]!, gtidBytes, meta[f + M.SERVER_ID]!, meta[f + M.NOW]!);
      const { buf, end, cols1, cols2, op } = layout;
      let p = layout.p;
      while (p < end) {
        p = writer.row(dec, buf, p, end, cols1, cols2, op, rows);
        rows++;
        ends.push(out.n);
      }
      counts[k] = rows;
      if (p !== end) throw rowsOverrun(file, start, type, p - end);
    }
  } catch (err) {
    counts[k] = rows;
    const res = result(m, out, ends, counts);
    res.error = describe(err);
    res.errorAt = k;
    return res;
  }
  return result(m, out, ends, counts);
}

function result(m: BatchMessage, out: JsonBytes, ends: U32List, counts: Uint32Array): ResultMessage {
  const inBytes = m.evs.byteLength;
  if (inBytes > 0 && out.n > 0) ratio = Math.min(64, Math.max(1, out.n / inBytes));
  return {
    gen: m.gen, seq: m.seq, out: ownBuffer(out.buf, out.n), ends: ends.a.buffer as ArrayBuffer, counts: counts.buffer as ArrayBuffer,
    evs: m.evs, meta: m.meta,
  };
}

const port = parentPort;
if (port) {
  port.on('message', (m: BatchMessage) => {
    let res: ResultMessage;
    try {
      res = run(m);
    } catch (err) {
      // Not from an event (a bad TABLE_MAP copy): the whole run fails at its first event.
      res = {
        gen: m.gen, seq: m.seq, out: new ArrayBuffer(0), ends: new ArrayBuffer(0), counts: new ArrayBuffer(4 * m.count),
        evs: m.evs, meta: m.meta, error: describe(err), errorAt: 0,
      };
    }
    Atomics.store(progress, 0, m.seq + 1);
    port.postMessage(res, [res.out, res.ends, res.counts, res.evs, res.meta]);
  });
}
