import { EVENT_FIXED, FLAG_COMMIT, HEADER_BYTES, OP_DELETE, OP_TRUNCATE, REC_COMMIT, REC_EVENT, REC_TABLE, REC_TXN, sealBatch } from './format.js';
import { KIND_DELETE, KIND_TRUNCATE, KIND_UPSERT, KeyRun, tableHash } from './key-index.js';

/** A batch ready to be written: its bytes and what the indexes need to know of it. */
export interface SealedBatch {
  bytes: Buffer;
  baseOffset: number;
  count: number;
  maxTsMs: number;
  /** The batch ends with a commit (a transaction boundary). */
  commit: boolean;
  /** The last commit's resume position and transaction, when `commit`. */
  resume: string | null;
  txn: string;
  /** The chunk the bytes are a view of: hand it back with {@link BatchBuilder.release} once written. */
  chunk: Chunk;
}

/** A chunk batches are built in, and how many of its batches are not written yet. */
export interface Chunk {
  buf: Buffer;
  outstanding: number;
  /** No batch will be built in it any more. */
  retired: boolean;
}

/** Size of the chunks batches are built in. */
const CHUNK = 4 << 20;

/**
 * Builds batches one after the other in large chunks: records are appended as they come,
 * {@link seal} fills in the header, and the batch's bytes are handed out as a view of the
 * chunk (no copy). A chunk is never written to again where it was handed out; when it is
 * full, the batch being built moves to a fresh chunk.
 *
 * The key-index entries are added here, to `keys` (owned by the log, which files them with
 * the segment the batch lands in), from the bytes being copied anyway: an event is touched
 * once on its way to disk.
 */
export class BatchBuilder {
  private chunk: Chunk = { buf: Buffer.allocUnsafeSlow(CHUNK), outstanding: 0, retired: false };
  private buf = this.chunk.buf;
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  /**
   * Chunks whose batches are all written, for reuse: a fresh chunk costs a page fault per
   * 4 KiB on first touch, which made copying into it three times slower.
   */
  private readonly pool: Buffer[] = [];
  /** Where the batch being built starts in `buf`. */
  private start = 0;
  private n = HEADER_BYTES;
  private tables = new Map<string, number>();
  private txn: string | null = null;
  private count = 0;
  private maxTs = 0;
  private baseOffset = 0;

  private readonly tableHashes = new Map<string, number>();

  /** `keys`: where key-index entries go (the log swaps it when it seals a segment). */
  constructor(public keys: KeyRun) {}

  /** Bytes in the batch so far (header included). */
  get bytes(): number {
    return this.n - this.start;
  }

  /** Records that take an offset, so far. */
  get records(): number {
    return this.count;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** Start a batch whose first record takes `offset`. */
  begin(offset: number): void {
    this.n = this.start + HEADER_BYTES;
    this.tables.clear();
    this.txn = null;
    this.count = 0;
    this.maxTs = 0;
    this.baseOffset = offset;
  }

  private ensure(k: number): void {
    if (this.n + k <= this.buf.length) return;
    // A new chunk; the batch being built moves there (the old chunk's earlier batches were
    // handed out and stay as they are).
    const len = this.n - this.start;
    const old = this.chunk;
    const need = len + k + 4096;
    const next = need <= CHUNK && this.pool.length ? this.pool.pop()! : Buffer.allocUnsafeSlow(Math.max(CHUNK, need));
    this.buf.copy(next, 0, this.start, this.n);
    old.retired = true;
    if (old.outstanding === 0) this.recycle(old.buf);
    this.chunk = { buf: next, outstanding: 0, retired: false };
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.length);
    this.start = 0;
    this.n = len;
  }

  private setTxn(txn: string): void {
    if (this.txn === txn) return;
    const len = Buffer.byteLength(txn);
    this.ensure(3 + len);
    this.buf[this.n] = REC_TXN;
    this.buf.writeUInt16LE(len, this.n + 1);
    this.buf.write(txn, this.n + 3, 'utf8');
    this.n += 3 + len;
    this.txn = txn;
  }

  private tableId(name: string): number {
    let id = this.tables.get(name);
    if (id !== undefined) return id;
    id = this.tables.size;
    this.tables.set(name, id);
    const len = Buffer.byteLength(name);
    this.ensure(5 + len);
    this.buf[this.n] = REC_TABLE;
    this.buf.writeUInt16LE(id, this.n + 1);
    this.buf.writeUInt16LE(len, this.n + 3);
    this.buf.write(name, this.n + 5, 'utf8');
    this.n += 5 + len;
    return id;
  }

  /**
   * Add an event. The envelope is UTF-8 JSON `env[es, ee)`, and its `key` value lies at
   * `env[ks, ke)` inside it; `op` is the envelope's op character code.
   */
  event(txn: string, index: number, table: string, tsMs: number, op: number, env: Buffer, ks: number, ke: number, es: number, ee: number): void {
    this.setTxn(txn);
    const tid = this.tableId(table);
    const envLen = ee - es;
    this.ensure(EVENT_FIXED + envLen);
    const b = this.buf;
    // The fixed fields through a DataView: Buffer's write methods check their arguments on
    // every call, which cost as much as the envelope's copy.
    const v = this.view;
    let p = this.n;
    b[p] = REC_EVENT;
    b[p + 1] = op;
    v.setUint16(p + 2, tid, true);
    v.setUint32(p + 4, index, true);
    v.setFloat64(p + 8, tsMs, true);
    v.setUint32(p + 16, ks - es, true);
    v.setUint32(p + 20, ke - ks, true);
    v.setUint32(p + 24, envLen, true);
    p += EVENT_FIXED;
    // One copy of the envelope (the key is its own, so it is not copied again), from a plain
    // view: a Buffer's subarray goes through Buffer's constructor.
    b.set(new Uint8Array(env.buffer, env.byteOffset + es, envLen), p);
    this.n = p + envLen;
    if (tsMs > this.maxTs) this.maxTs = tsMs;
    this.addKey(table, op, env, ks, ke, this.baseOffset + this.count);
    this.count++;
  }

  private addKey(table: string, op: number, key: Buffer, ks: number, ke: number, offset: number): void {
    let th = this.tableHashes.get(table);
    if (th === undefined) this.tableHashes.set(table, (th = tableHash(table)));
    this.keys.add(table, th, op === OP_TRUNCATE ? KIND_TRUNCATE : op === OP_DELETE ? KIND_DELETE : KIND_UPSERT, key, ks, ke, offset);
  }

  /** Add a commit record: the transaction `txn` ends here, and the source resumes at `resume`. */
  commit(txn: string, tsMs: number, resume: string): void {
    this.setTxn(txn);
    const len = Buffer.byteLength(resume);
    this.ensure(11 + len);
    const b = this.buf;
    b[this.n] = REC_COMMIT;
    b.writeDoubleLE(tsMs, this.n + 1);
    b.writeUInt16LE(len, this.n + 9);
    b.write(resume, this.n + 11, 'utf8');
    this.n += 11 + len;
    if (tsMs > this.maxTs) this.maxTs = tsMs;
    this.count++;
    this.lastResume = resume;
  }

  private lastResume: string | null = null;

  /** Finish the batch: header and CRC written, its bytes handed out as a view. The builder is then empty. */
  seal(): SealedBatch {
    const length = this.n - this.start;
    const commit = this.lastResume !== null;
    const bytes = this.buf.subarray(this.start, this.n);
    sealBatch(bytes, length, { flags: commit ? FLAG_COMMIT : 0, baseOffset: this.baseOffset, count: this.count, bodyLength: length - HEADER_BYTES, maxTsMs: this.maxTs });
    this.start = this.n;
    this.chunk.outstanding++;
    const out: SealedBatch = { bytes, baseOffset: this.baseOffset, count: this.count, maxTsMs: this.maxTs, commit, resume: this.lastResume, txn: this.txn ?? '', chunk: this.chunk };
    this.lastResume = null;
    this.begin(this.baseOffset + this.count);
    return out;
  }

  /** A batch of `chunk` is written: its bytes are no longer needed. */
  release(chunk: Chunk): void {
    chunk.outstanding--;
    if (chunk.retired && chunk.outstanding === 0) this.recycle(chunk.buf);
  }

  private recycle(buf: Buffer): void {
    if (buf.length === CHUNK && this.pool.length < 4) this.pool.push(buf);
  }
}
