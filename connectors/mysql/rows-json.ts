/**
 * The serialized rows-event path of the decoder (decoder.ts): reading a rows event's layout
 * after its table id, and writing each row's change-event envelope as JSON bytes straight
 * from the row images.
 */
import { AFTER, AFTER_NULL, HEAD_DELETE, HEAD_INSERT, HEAD_UPDATE, keyWritten, put, putKey } from '../../src/core/envelope-bytes.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import { inflateMariadb } from './compression.js';
import { EventType as E, eventTypeName } from './event-header.js';
import type { Reader } from './reader.js';
import type { RowDecoder } from './row-decoder.js';

/** Row-change op of a rows event. */
export type RowsOp = 'c' | 'u' | 'd';

/** Envelope pieces only this source writes (the shared ones are in envelope-bytes.ts). */
const ROW = Buffer.from(',"row":');
const TS_MS = Buffer.from('},"ts_ms":');

/** `,"source":` and the constant head of a table's `source` object, up to `"ts_ms":`. */
export function sourceHeadFor(pipeline: string, db: string, table: string): Buffer {
  return Buffer.from(
    `,"source":{"connector":"mysql","name":${JSON.stringify(pipeline)},"db":${JSON.stringify(db)},` +
      `"table":${JSON.stringify(table)},"ts_ms":`,
    'utf8',
  );
}

/** The `source` piece from `snapshot` to `pos`, for one binlog file. */
export function fileBytesFor(file: string): Buffer {
  return Buffer.from(`,"snapshot":"false","file":${JSON.stringify(file)},"pos":`, 'utf8');
}

/** The `source` piece from `gtid` to `server_id`, for one transaction. */
export function gtidBytesFor(gtid: string | null): Buffer {
  return Buffer.from(`,"gtid":${gtid === null ? 'null' : JSON.stringify(gtid)},"server_id":`, 'utf8');
}

/** True for the rows event types whose rows carry a before and an after image. */
export function isUpdateType(type: number): boolean {
  return type === E.UPDATE_ROWS_V1 || type === E.UPDATE_ROWS_V2 || type === E.PARTIAL_UPDATE_ROWS ||
    type === E.UPDATE_ROWS_COMPRESSED_V1 || type === E.UPDATE_ROWS_COMPRESSED;
}

/**
 * A rows event's layout after its table id, flags and extra data: the column bitmaps and
 * where the row images are (inflated for MariaDB's compressed rows events). One instance is
 * reused for every event: {@link read} overwrites its fields.
 */
export class RowsLayout {
  /** Column count of the event. */
  n = 0;
  /** Row images: `buf[p, end)` (the event itself, or its inflated images). */
  buf: Buffer = Buffer.alloc(0);
  p = 0;
  end = 0;
  /** Ordinals present in the first (or only) image, and in the after image of an update. */
  cols1: Int32Array = new Int32Array(0);
  cols2: Int32Array = new Int32Array(0);
  op: RowsOp = 'c';
  private readonly presentCache = new Map<string, Int32Array>();

  /**
   * Reads the layout from `r` (at the column count) of event `ev` of `type`, whose decoder
   * is `dec`. `file` and `start` only name the event in errors.
   */
  read(ev: Buffer, r: Reader, type: number, dec: RowDecoder, file: string, start: number): void {
    const n = r.lenenc();
    if (n !== dec.columnCount) {
      throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${file} at ${start}: rows event has ${n} columns, TABLE_MAP has ${dec.columnCount}`);
    }
    this.n = n;
    const nb = (n + 7) >> 3;
    r.need(nb);
    const cols1 = this.presentColumns(ev, r.pos, n, dec);
    r.pos += nb;
    const isUpdate = isUpdateType(type);
    let cols2 = cols1;
    if (isUpdate) {
      r.need(nb);
      cols2 = this.presentColumns(ev, r.pos, n, dec);
      r.pos += nb;
    }
    if (cols1.length === 0 && cols2.length === 0) {
      // Rows of no column take no bytes: the row loop would never reach the end.
      throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${file} at ${start}: ${eventTypeName(type)} has an empty column bitmap`);
    }
    this.cols1 = cols1;
    this.cols2 = cols2;
    this.buf = ev;
    this.p = r.pos;
    this.end = r.end;
    if (type >= E.WRITE_ROWS_COMPRESSED_V1 && type <= E.DELETE_ROWS_COMPRESSED) {
      this.buf = inflateMariadb(ev, this.p, this.end, `${file} at ${start}: ${eventTypeName(type)}`);
      this.p = 0;
      this.end = this.buf.length;
    }
    this.op =
      type === E.WRITE_ROWS_V1 || type === E.WRITE_ROWS_V2 || type === E.WRITE_ROWS_COMPRESSED_V1 || type === E.WRITE_ROWS_COMPRESSED
        ? 'c'
        : isUpdate ? 'u' : 'd';
  }

  /** Ordinals of the columns set in a column bitmap; cached per bitmap content. */
  private presentColumns(buf: Buffer, off: number, n: number, dec: RowDecoder): Int32Array {
    const nb = (n + 7) >> 3;
    let all = true;
    for (let i = 0; i < n; i++) if ((buf[off + (i >> 3)]! & (1 << (i & 7))) === 0) { all = false; break; }
    if (all) return dec.allColumns;
    const key = buf.toString('hex', off, off + nb) + ':' + n;
    let cols = this.presentCache.get(key);
    if (!cols) {
      const list: number[] = [];
      for (let i = 0; i < n; i++) if ((buf[off + (i >> 3)]! & (1 << (i & 7))) !== 0) list.push(i);
      cols = Int32Array.from(list);
      if (this.presentCache.size > 1024) this.presentCache.clear();
      this.presentCache.set(key, cols);
    }
    return cols;
  }
}

/** The error for row images that end past their event (or a trailing partial row). */
export function rowsOverrun(file: string, start: number, type: number, by: number): TributaryError {
  return new TributaryError(ErrorCodes.MYSQL_DECODE, `${file} at ${start}: ${eventTypeName(type)} rows overrun the event by ${by} bytes`);
}

/**
 * Writes row-change envelopes as JSON bytes, with the key order and values of the decoder's
 * object envelope (op, before, after, key, source{connector, name, db, table, ts_ms,
 * snapshot, file, pos, gtid, server_id, row}, ts_ms). The images are written in envelope
 * order; the key is copied from where its values landed. Everything of `source` but `row`,
 * and the trailing `ts_ms`, is fixed for a rows event: {@link begin} writes it once, from
 * pieces made per table, file and transaction, and {@link row} copies it for every row.
 */
export class RowsJsonWriter {
  /** Where the envelopes go; each {@link row} appends one at `out.n`. */
  out: JsonBytes;
  private readonly src = new JsonBytes(1024);
  /**
   * The envelope's tail before and after the row number, as views made once per rows event:
   * copied with one `set` per row (Buffer#copy makes a view per call, which showed up).
   */
  private tailHead: Uint8Array = new Uint8Array(0);
  private tailRest: Uint8Array = new Uint8Array(0);

  constructor(out = new JsonBytes()) {
    this.out = out;
  }

  /** Starts a rows event: the constant pieces of its envelopes. */
  begin(sourceHead: Buffer, ts: number, fileBytes: Buffer, pos: number, gtidBytes: Buffer, serverId: number, now: number): void {
    const src = this.src;
    src.reset();
    put(src, sourceHead);
    src.uint(ts);
    put(src, fileBytes);
    src.uint(pos);
    put(src, gtidBytes);
    src.uint(serverId);
    put(src, ROW);
    const split = src.n;
    put(src, TS_MS);
    src.uint(now);
    src.byte(125); // }
    this.tailHead = src.buf.subarray(0, split);
    this.tailRest = src.buf.subarray(split, src.n);
  }

  /** Appends row number `row`'s envelope, the row being at `buf[p]`; returns the offset after it. */
  row(dec: RowDecoder, buf: Buffer, p: number, end: number, cols1: Int32Array, cols2: Int32Array, op: RowsOp, row: number): number {
    const w = this.out;
    if (op === 'c') {
      put(w, HEAD_INSERT);
      put(w, AFTER);
      p = dec.write(buf, p, end, cols1, w, dec.newSpans);
      putKey(w);
      dec.writeKey(w, dec.newSpans, w);
    } else if (op === 'd') {
      put(w, HEAD_DELETE);
      p = dec.write(buf, p, end, cols1, w, dec.oldSpans);
      put(w, AFTER_NULL);
      putKey(w);
      dec.writeKey(w, dec.oldSpans, w);
    } else {
      put(w, HEAD_UPDATE);
      p = dec.write(buf, p, end, cols1, w, dec.oldSpans);
      put(w, AFTER);
      p = dec.write(buf, p, end, cols2, w, dec.newSpans);
      putKey(w);
      // As keyOf(after) ?? keyOf(before): an update's key is the new one when the image has it.
      dec.writeKey(w, dec.hasKey(dec.newSpans) ? dec.newSpans : dec.oldSpans, w);
    }
    keyWritten(w);
    const head = this.tailHead;
    w.ensure(head.length);
    w.buf.set(head, w.n);
    w.n += head.length;
    w.int(row);
    const rest = this.tailRest;
    w.ensure(rest.length);
    w.buf.set(rest, w.n);
    w.n += rest.length;
    return p;
  }
}
