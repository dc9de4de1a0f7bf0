import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { decompress } from '@mongodb-js/zstd';
import { stat } from 'node:fs/promises';
import { FLAG_COMMIT, FLAG_ZSTD, FLAGS_AT, HEADER_BYTES, MAGIC, decodeBody, readBatchHeader, type BatchHeader, type DecodedRecord } from './format.js';
import type { KeyQueries } from './key-index.js';

/** Bytes of log between two entries of the sparse offset index (Kafka's log.index.interval.bytes). */
export const INDEX_INTERVAL = 4096;

/** The last commit of a segment: where the source resumes if the log ends there. */
export interface CommitInfo {
  offset: number;
  txn: string;
  resume: string;
  tsMs: number;
}

/** The file name of the segment whose first offset is `base`: 20 digits, so names sort like offsets. */
export function segmentName(base: number, ext: 'log' | 'idx'): string {
  return `${String(base).padStart(20, '0')}.${ext}`;
}

/**
 * One segment: a file of batches holding offsets [base, next), with its sparse indexes.
 *
 * - offset index: every ~{@link INDEX_INTERVAL} bytes, (offset, file position) of a batch start;
 *   a read binary-searches it, then scans forward at most one interval.
 * - time index: (largest commit time so far, offset, position) at the same batches; since
 *   the largest-so-far only grows, "the first record committed after T" is a binary search
 *   and a short scan.
 *
 * The active segment builds both as batches are appended; a sealed one loads them from its
 * sidecar (`.idx`), or rebuilds them from the log when the sidecar is missing or damaged.
 */
export class Segment {
  /** Offset after the last record. */
  next: number;
  /** Valid bytes of the file. */
  size = 0;
  minTs = Infinity;
  maxTs = 0;
  lastCommit: CommitInfo | null = null;
  /** File position just after the last batch that ends with a commit. */
  lastCommitEnd = 0;
  sealed = false;
  /**
   * Key entries, once sealed: from the sidecar; in the writer, from memory until the
   * sidecar is written (see SegmentLog.roll).
   */
  keys: KeyQueries | null = null;
  private releaseKeys: (() => void) | null = null;
  /** Table names by hash, with one key JSON of each (from the sidecar, once sealed). */
  tables = new Map<number, { name: string; sampleKey: string | null }>();
  readonly idxOffset: number[] = [];
  readonly idxPos: number[] = [];
  readonly timeTs: number[] = [];
  readonly timeOffset: number[] = [];
  readonly timePos: number[] = [];
  private lastIndexedPos = -Infinity;
  private fd: number | null = null;

  constructor(
    readonly dir: string,
    readonly base: number,
  ) {
    this.next = base;
  }

  get path(): string {
    return join(this.dir, segmentName(this.base, 'log'));
  }

  get sidecarPath(): string {
    return join(this.dir, segmentName(this.base, 'idx'));
  }

  /**
   * Whether the batch before the next one ended with a commit, so the next batch starts a
   * transaction (the time index only points at transaction starts). A segment's first batch
   * starts one unless the segment rolled in the middle of a transaction.
   */
  afterCommit = true;

  /** Account for a batch written (or found by a scan) at `pos`. */
  noteBatch(pos: number, h: Pick<BatchHeader, 'length' | 'baseOffset' | 'count' | 'maxTsMs' | 'flags'>, commit?: CommitInfo | null): void {
    if (pos - this.lastIndexedPos >= INDEX_INTERVAL || this.idxPos.length === 0) {
      this.idxOffset.push(h.baseOffset);
      this.idxPos.push(pos);
      this.lastIndexedPos = pos;
    }
    if (this.afterCommit && (pos - this.lastTimePos >= INDEX_INTERVAL || this.timePos.length === 0)) {
      // The largest commit time of everything before this batch (in this segment): a search
      // for "committed after T" may start at any entry whose value is at or below T.
      this.timeTs.push(this.maxTs);
      this.timeOffset.push(h.baseOffset);
      this.timePos.push(pos);
      this.lastTimePos = pos;
    }
    if (h.maxTsMs > this.maxTs) this.maxTs = h.maxTsMs;
    if (h.maxTsMs && h.maxTsMs < this.minTs) this.minTs = h.maxTsMs;
    this.size = pos + h.length;
    this.next = h.baseOffset + h.count;
    this.afterCommit = (h.flags & FLAG_COMMIT) !== 0;
    if (this.afterCommit) {
      this.lastCommitEnd = this.size;
      if (commit) this.lastCommit = commit;
    }
  }
  private lastTimePos = -Infinity;

  /** The file position of the indexed batch at or before `offset` (0 when none). */
  positionFor(offset: number): number {
    const a = this.idxOffset;
    let lo = 0;
    let hi = a.length - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]! <= offset) {
        best = this.idxPos[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  /**
   * Where to start looking for the first transaction committed after `ts`: the last indexed
   * transaction start before which every commit of this segment is at or below `ts`, as
   * `{pos, offset}`; null when the segment has no such entry.
   */
  timeEntryFor(ts: number): { pos: number; offset: number } | null {
    const a = this.timeTs;
    let lo = 0;
    let hi = a.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]! <= ts) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best < 0 ? null : { pos: this.timePos[best]!, offset: this.timeOffset[best]! };
  }

  /** A synchronous read of `len` bytes at `pos` (short at the end of the file). */
  readSync(pos: number, len: number): Buffer {
    this.fd ??= openSync(this.path, 'r');
    const b = Buffer.allocUnsafe(len);
    let n = 0;
    while (n < len) {
      const r = readSync(this.fd, b, n, len - n, pos + n);
      if (r === 0) break;
      n += r;
    }
    return n === len ? b : b.subarray(0, n);
  }

  /** Attach the sealed key entries and what releases their file. */
  setKeys(k: { keys: KeyQueries; close(): void }): void {
    this.releaseKeys?.();
    this.keys = k.keys;
    this.releaseKeys = k.close;
  }

  /** Close the read descriptors (reopened on demand). Idempotent. */
  closeReads(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
    this.releaseKeys?.();
  }
}

/** A batch found in a segment file: where it is, its header, and its records. */
export interface ScannedBatch {
  pos: number;
  header: BatchHeader;
  records: DecodedRecord[];
}

/** The first damaged batch of a scan, and whether a valid batch follows it. */
export interface ScanStop {
  pos: number;
  problem: string;
  /** A valid batch exists after the damage: it is not a torn tail but corruption. */
  validAfter: boolean;
  /** The offset the damaged batch should have started at. */
  expectedOffset: number;
}

/**
 * Read a segment file from `from` to its end (or `limit`), batch by batch, calling `each`
 * for every valid batch with its decoded records, and stop at the first batch whose magic,
 * length, checksum or offset is wrong. `each` may return false to stop early. Reads in
 * large chunks, so a whole segment costs a few reads.
 */
export async function scanSegment(seg: Segment, opts: { from?: number; fromOffset?: number; limit?: number; decode?: boolean }, each: (b: ScannedBatch) => void | boolean): Promise<{ end: number; next: number; stop: ScanStop | null }> {
  const chunk = 8 << 20;
  const size = Math.min(opts.limit ?? Infinity, (await stat(seg.path)).size);
  let pos = opts.from ?? 0;
  let next = opts.fromOffset ?? seg.base;
  let buf: Buffer = Buffer.alloc(0);
  let p = 0;
  /** Decompressions started ahead, by file position (a wrong guess costs only the work). */
  const inflight = new Map<number, Promise<Buffer>>();
  const stop = async (problem: string): Promise<{ end: number; next: number; stop: ScanStop }> => ({
    end: pos + p,
    next,
    stop: { pos: pos + p, problem, validAfter: await validBatchAfter(seg, pos + p + 1, size), expectedOffset: next },
  });
  for (;;) {
    const at = pos + p;
    if (at >= size) return { end: at, next, stop: null };
    // Make sure the whole batch at `at` is in `buf` (or as much of it as the file has).
    const need = Math.min(size - at, buf.length - p >= 8 && buf.readUInt32LE(p) === MAGIC ? Math.max(HEADER_BYTES, buf.readUInt32LE(p + 4)) : HEADER_BYTES);
    if (buf.length - p < need) {
      pos = at;
      p = 0;
      buf = seg.readSync(pos, Math.min(size - pos, Math.max(chunk, need)));
      if (buf.length >= 8 && buf.readUInt32LE(0) === MAGIC) {
        const len = buf.readUInt32LE(4);
        if (len > buf.length && len <= size - pos) buf = seg.readSync(pos, len);
      }
    }
    const h = readBatchHeader(buf, p, size - at);
    if (typeof h === 'string') return stop(h);
    if (h.baseOffset !== next) return stop(`offset ${h.baseOffset} where ${next} was expected`);
    const records: DecodedRecord[] = [];
    if (opts.decode !== false) {
      let body: Buffer = buf;
      let bs = p + HEADER_BYTES;
      let be = p + h.length;
      if (h.flags & FLAG_ZSTD) {
        // Decompression runs in libuv's thread pool: keep a few of the next batches in this
        // buffer decompressing while this one decodes (one at a time left the main thread
        // idle half of a scan).
        for (let q = p + h.length, ahead = 0; ahead < 3 && q + HEADER_BYTES <= buf.length; ahead++) {
          if (buf.readUInt32LE(q) !== MAGIC) break;
          const len = buf.readUInt32LE(q + 4);
          if (len < HEADER_BYTES || q + len > buf.length) break;
          if (!inflight.has(pos + q) && buf[q + FLAGS_AT]! & FLAG_ZSTD) {
            const next = decompress(buf.subarray(q + HEADER_BYTES, q + len));
            next.catch(() => undefined); // awaited when its batch comes; a scan that stops first drops it
            inflight.set(pos + q, next);
          }
          q += len;
        }
        const pending = inflight.get(at);
        inflight.delete(at);
        body = await (pending ?? decompress(buf.subarray(bs, be)));
        bs = 0;
        be = body.length;
      }
      decodeBody(body, bs, be, h.baseOffset, (r) => records.push(r));
    }
    const more = each({ pos: at, header: h, records });
    next = h.baseOffset + h.count;
    p += h.length;
    if (more === false) return { end: pos + p, next, stop: null };
  }
}

/** Is there a whole, valid batch anywhere in [from, size)? (Tells corruption from a torn tail.) */
async function validBatchAfter(seg: Segment, from: number, size: number): Promise<boolean> {
  const chunk = 4 << 20;
  for (let pos = from; pos < size; pos += chunk - 8) {
    const buf = seg.readSync(pos, Math.min(chunk, size - pos));
    for (let i = buf.indexOf(MAGIC_BYTES); i >= 0 && i < buf.length; i = buf.indexOf(MAGIC_BYTES, i + 1)) {
      const len = buf.length - i >= 8 ? buf.readUInt32LE(i + 4) : 0;
      if (len < HEADER_BYTES || pos + i + len > size) continue;
      const whole = i + len <= buf.length ? buf.subarray(i, i + len) : seg.readSync(pos + i, len);
      if (typeof readBatchHeader(whole, 0, len) !== 'string') return true;
    }
  }
  return false;
}

const MAGIC_BYTES = Buffer.from([0x54, 0x52, 0x42, 0x31]);
