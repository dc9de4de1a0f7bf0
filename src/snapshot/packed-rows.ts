/**
 * A chunk's rows packed into one byte buffer, to cross from a worker thread to the main
 * thread. Structured-cloning 10,000 row strings costs about as much as building them; one
 * transferred ArrayBuffer of UTF-8 text plus one of offsets costs next to nothing, and the
 * main thread turns it back into strings with one decode per chunk (see {@link unpackRows}).
 */
import { isAscii } from 'node:buffer';
import type { ChunkRows, RowSink } from './types.js';

/** What crosses the thread boundary (both buffers transferred, not copied). */
export interface PackedRows {
  /** UTF-8 text: row 0, key 0, row 1, key 1, … with no separators. */
  data: ArrayBuffer;
  /** Bytes of `data` in use. */
  size: number;
  /** Per row, the end of its row text and the end of its key string in `data` (Int32 pairs). */
  ends: ArrayBuffer;
  count: number;
}

/** A {@link RowSink} that packs rows for {@link unpackRows}. */
export class RowPacker implements RowSink {
  // allocUnsafeSlow: a buffer of its own (not a slice of the shared pool), so its
  // ArrayBuffer can be transferred.
  private data = Buffer.allocUnsafeSlow(1 << 20);
  private n = 0;
  private ends = new Int32Array(2 * 1024);
  private count = 0;

  private room(k: number): void {
    if (this.n + k <= this.data.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.data.length * 2, this.n + k));
    this.data.copy(next, 0, 0, this.n);
    this.data = next;
  }

  private end(rowEnd: number): void {
    if (this.count * 2 + 2 > this.ends.length) {
      const next = new Int32Array(this.ends.length * 2);
      next.set(this.ends);
      this.ends = next;
    }
    this.ends[this.count * 2] = rowEnd;
    this.ends[this.count * 2 + 1] = this.n;
    this.count++;
  }

  bytes(buf: Buffer, s: number, rowEnd: number, keyEnd: number): void {
    this.room(keyEnd - s);
    buf.copy(this.data, this.n, s, keyEnd);
    const at = this.n + (rowEnd - s);
    this.n += keyEnd - s;
    this.end(at);
  }

  strings(row: string, key: string): void {
    this.room((row.length + key.length) * 3);
    this.n += this.data.write(row, this.n, 'utf8');
    const at = this.n;
    this.n += this.data.write(key, this.n, 'utf8');
    this.end(at);
  }

  /** The packed chunk; the packer must not be used afterwards (its buffers move away). */
  finish(): { packed: PackedRows; transfer: ArrayBuffer[] } {
    const data = this.data.buffer as ArrayBuffer;
    const ends = this.ends.buffer as ArrayBuffer;
    return { packed: { data, size: this.n, ends, count: this.count }, transfer: [data, ends] };
  }
}

/**
 * The strings of a packed chunk. When the text is all ASCII (the usual case) it is decoded
 * once, as one Latin-1 string, and each row and key is a substring of it: V8 makes those
 * slices (no copy) for all but the shortest. The slices keep the chunk's string alive only
 * until the envelopes built from them are flattened, when the chunk is emitted.
 */
export function unpackRows(p: PackedRows): ChunkRows {
  const buf = Buffer.from(p.data, 0, p.size);
  const ends = new Int32Array(p.ends, 0, p.count * 2);
  const rows = new Array<string>(p.count);
  const keys = new Array<string>(p.count);
  let s = 0;
  if (isAscii(buf)) {
    const all = buf.toString('latin1');
    for (let i = 0; i < p.count; i++) {
      const r = ends[2 * i]!;
      const k = ends[2 * i + 1]!;
      rows[i] = all.slice(s, r);
      keys[i] = all.slice(r, k);
      s = k;
    }
  } else {
    for (let i = 0; i < p.count; i++) {
      const r = ends[2 * i]!;
      const k = ends[2 * i + 1]!;
      rows[i] = buf.toString('utf8', s, r);
      keys[i] = buf.toString('utf8', r, k);
      s = k;
    }
  }
  return { rows, keys };
}
