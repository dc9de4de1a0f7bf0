/**
 * Writing a MySQL/MariaDB snapshot chunk's rows straight from the text protocol's bytes.
 *
 * The object path lets mysql2 parse every text-protocol row with its generated parser into
 * an object (one JavaScript string or number per value), converts some values per table,
 * and then stringifies the object again: most of a chunk's cost, and a heap full of small
 * strings that every young-generation GC copies until the chunk is emitted. Here each row
 * packet that the chunk's query (chunk-query.ts) receives has its length-encoded values
 * written as JSON text straight from their bytes into one scratch buffer ({@link JsonBytes}),
 * and the row leaves as one flat string plus its key string (see `ChunkRows`).
 *
 * Every value becomes exactly what the object path makes of it (mysql2's value for the
 * connection's options, then the table's converter; docs/snapshots.md "Values"), by the rules
 * of values.ts that the binlog decoder follows too. Per-column
 * writers are chosen once per result from the column definitions; columns whose value is
 * rare or intricate (MySQL JSON, GEOMETRY, VECTOR, text in other charsets) take the object
 * path's own value and converter, and only their stringify happens here. A result this
 * reader does not know how to write makes `readChunkRows` (chunk-query.ts) answer false: the caller
 * then reads that table through the object path.
 */
import type { JsonValue } from '../../src/core/event.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import type { RowSink } from '../../src/snapshot/types.js';
import { ColumnType as T, TextKind, textKindFor } from './column-types.js';
import {
  bitToJson, float32FromDouble, objectOnlyName, writeBigintText, writeDateText, writeDatetimeText, writeDouble, writeIntText, writeJsonText,
} from './values.js';

/** One column of a result set, from its column definition packet. */
export interface ResultField {
  name: string;
  columnType: number;
  flags: number;
  characterSet: number;
}

/** What a table's column needs beyond its result metadata (information_schema, see snapshot-columns.ts). */
export interface ColumnHint {
  via: 'plain' | 'float' | 'bytes-text' | 'bytes-geometry' | 'bytes-vector';
  json: boolean;
}

/** The object path's converter of one column: mysql2's value in, the decoder's value out. */
export type ValueConverter = (v: Buffer) => JsonValue;

/** How one column's bytes become JSON text. */
const enum W {
  /** TINY…INT24, YEAR: a number (mysql2's parseIntNoBigCheck). */
  Int,
  /** BIGINT: a number, or the digits as a string beyond ±(2^53−1). */
  LongLong,
  /** DOUBLE: the shortest form of the double. */
  Double,
  /** FLOAT (selected as `col+0E0`): the shortest form of the float32. */
  Float,
  /** DECIMAL, TIME, utf8mb4 text, ENUM, SET: a JSON string of the bytes. */
  Text,
  /** DATE: a string, `0000-00-00` → null. */
  Date,
  /** DATETIME: `T` for the space, zero → null. */
  DateTime,
  /** TIMESTAMP: as DATETIME, with `Z`. */
  Timestamp,
  /** Binary strings: base64. */
  Base64,
  /** BIT: a number, or a decimal string beyond 2^53. */
  Bit,
  /** MariaDB JSON (LONGTEXT): copied when it is valid JSON (compacted if on several lines), else a string. */
  JsonText,
  /** The object path's value (a utf8 string) through its converter. */
  ConvString,
  /** The object path's value (bytes) through its converter. */
  ConvBytes,
}

const MINUS = 45;
const ZERO = 48;
const NULL = Buffer.from('null');

/** Writes one result's rows as JSON text; built from its column definitions. */
export class RowWriter {
  private readonly w = new JsonBytes();
  private readonly prefixes: Buffer[];
  /** Per column: its key position, or -1. */
  private readonly keyPos: Int32Array;
  /** Where each key value's JSON text lies in the row being written (start, end pairs). */
  private readonly keySpans: Int32Array;

  private constructor(
    readonly sig: string,
    fields: ResultField[],
    private readonly kinds: Uint8Array,
    private readonly convs: (ValueConverter | null)[],
    key: string[],
  ) {
    this.prefixes = fields.map((f, j) => Buffer.from(`${j ? ',' : '{'}${JSON.stringify(f.name)}:`, 'utf8'));
    this.keyPos = new Int32Array(fields.length).fill(-1);
    key.forEach((k, i) => (this.keyPos[fields.findIndex((f) => f.name === k)] = i));
    this.keySpans = new Int32Array(key.length * 2);
  }

  /**
   * The writer of a result, or null when one of its columns has no writer here (the caller
   * then takes the object path). `hints` are the table's columns by name; `conv` is the
   * object path's converter of a column (snapshot-values.ts `converterFor`).
   */
  static for<H extends ColumnHint>(
    fields: ResultField[],
    hints: ReadonlyMap<string, H>,
    key: string[],
    conv: (f: ResultField, hint: H | undefined) => ValueConverter | null,
  ): RowWriter | null {
    if (!key.length || !fields.length) return null;
    const names = new Set(fields.map((f) => f.name));
    if (names.size !== fields.length || key.some((k) => !names.has(k)) || fields.some((f) => objectOnlyName(f.name))) return null;
    const kinds = new Uint8Array(fields.length);
    const convs: (ValueConverter | null)[] = [];
    for (let j = 0; j < fields.length; j++) {
      const f = fields[j]!;
      const hint = hints.get(f.name);
      const k = kindFor(f, hint, key.includes(f.name));
      if (k === null) return null;
      kinds[j] = k;
      convs.push(k === W.ConvString || k === W.ConvBytes ? conv(f, hint) : null);
    }
    return new RowWriter(fieldSig(fields), fields, kinds, convs, key);
  }

  /** Appends the row in `buf[p, end)` (a text-protocol row packet's payload) to `out`. */
  add(buf: Buffer, p: number, end: number, out: RowSink): void {
    const w = this.w;
    const kinds = this.kinds;
    const keyPos = this.keyPos;
    w.reset();
    for (let j = 0; j < kinds.length; j++) {
      const pre = this.prefixes[j]!;
      w.raw(pre, 0, pre.length);
      const at = w.n;
      let len = buf[p++]!;
      if (len === 0xfb) len = -1; // NULL
      else if (len === 0xfc) {
        len = buf[p]! | (buf[p + 1]! << 8);
        p += 2;
      } else if (len === 0xfd) {
        len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
        p += 3;
      } else if (len === 0xfe) {
        len = buf.readUInt32LE(p) + buf.readUInt32LE(p + 4) * 0x100000000;
        p += 8;
      }
      const s = p;
      const e = len < 0 ? p : (p += len);
      if (e > end) throw new Error(`row packet truncated in column ${j}`);
      if (len < 0) w.raw(NULL, 0, 4);
      else {
        switch (kinds[j]) {
          case W.Int:
            writeIntText(w, buf, s, e);
            break;
          case W.LongLong:
            writeBigintText(w, buf, s, e);
            break;
          case W.Double:
            writeDouble(w, s === e ? 0 : Number.parseFloat(buf.toString('latin1', s, e)));
            break;
          case W.Float:
            writeDouble(w, s === e ? 0 : float32FromDouble(Number.parseFloat(buf.toString('latin1', s, e))));
            break;
          case W.Text:
            w.string(buf, s, e);
            break;
          case W.Date:
            writeDateText(w, buf, s, e);
            break;
          case W.DateTime:
          case W.Timestamp:
            writeDatetimeText(w, buf, s, e, kinds[j] === W.Timestamp);
            break;
          case W.Base64:
            w.ascii(JSON.stringify(buf.toString('base64', s, e)));
            break;
          case W.Bit: {
            const v = bitToJson(buf, s, e);
            if (typeof v === 'number') w.uint(v);
            else w.ascii(`"${v}"`);
            break;
          }
          case W.JsonText:
            writeJsonText(w, buf, s, e);
            break;
          case W.ConvString: {
            const v = buf.toString('utf8', s, e);
            const c = this.convs[j];
            w.text(JSON.stringify(c ? c(v as unknown as Buffer) : v));
            break;
          }
          default: {
            const v = buf.subarray(s, e);
            const c = this.convs[j];
            w.text(JSON.stringify(c ? c(v) : v));
          }
        }
      }
      // Each writer above writes exactly JSON.stringify of the object path's value (JSON text
      // columns are never key columns), but for a float's -0, so a key part is the written
      // text, with -0 as 0 (below).
      const k = keyPos[j]!;
      if (k >= 0) {
        this.keySpans[k * 2] = at;
        this.keySpans[k * 2 + 1] = w.n;
      }
    }
    w.byte(125);
    const rowEnd = w.n;
    // The key string (each part followed by a NUL) is copied behind the row and handed over
    // with it, rather than concatenated from a string per part.
    const spans = this.keySpans;
    for (let i = 0; i < spans.length; i += 2) {
      const s = spans[i]!;
      const e = spans[i + 1]!;
      // A float key of -0: the key string is compared with what keyString makes of a
      // streamed (parsed) row, where JSON.stringify has made it 0.
      if (e - s === 2 && w.buf[s] === MINUS && w.buf[s + 1] === ZERO) w.byte(ZERO);
      else w.raw(w.buf, s, e);
      w.byte(0);
    }
    out.bytes(w.buf, 0, rowEnd, w.n);
  }
}

/** Names, types, charsets and flags: when they change, the writer is built again. */
export function fieldSig(fields: ResultField[]): string {
  return fields.map((f) => `${f.name}:${f.columnType}:${f.characterSet}:${f.flags}`).join('\u0000');
}

/**
 * The writer kind of a column, mirroring snapshot-values.ts `converterFor` and mysql2's text parser
 * for the connection's options (supportBigNumbers, dateStrings, jsonStrings, no
 * decimalNumbers), or null when it has none here.
 */
function kindFor(f: ResultField, hint: ColumnHint | undefined, isKey: boolean): W | null {
  switch (hint?.via) {
    case 'float':
      return W.Float;
    case 'bytes-text':
    case 'bytes-geometry':
    case 'bytes-vector':
      return f.characterSet === 63 ? W.ConvBytes : null;
    default:
  }
  switch (f.columnType) {
    case T.TINY: case T.SHORT: case T.LONG: case T.INT24: case T.YEAR:
      return W.Int;
    case T.LONGLONG:
      return W.LongLong;
    case T.DOUBLE:
      return W.Double;
    case T.FLOAT:
      return W.Float;
    case T.DECIMAL: case T.NEWDECIMAL: case T.TIME:
      return W.Text;
    case T.DATE: case T.NEWDATE:
      return W.Date;
    case T.DATETIME:
      return W.DateTime;
    case T.TIMESTAMP:
      return W.Timestamp;
    case T.BIT:
      return f.characterSet === 63 ? W.Bit : null;
    case T.JSON:
      return W.ConvString;
    default:
      // Strings, blobs, ENUM, SET (NULL, GEOMETRY, VECTOR and anything new: not here).
      if (f.columnType < 15 || (f.columnType > 16 && f.columnType < 247) || f.columnType > 254) return null;
      if (f.characterSet === 63) return hint?.json ? null : W.Base64;
      if (textKindFor(f.characterSet).kind !== TextKind.Utf8) return null;
      if (hint?.json) return isKey ? W.ConvString : W.JsonText;
      return W.Text;
  }
}
