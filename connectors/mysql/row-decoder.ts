/**
 * Row image decoding, compiled once per TABLE_MAP.
 *
 * When a TABLE_MAP arrives we resolve, for every column, a small integer "kind" plus its
 * numeric parameters (length-prefix width, fsp, precision/scale, ...), its JSON name and
 * its text decoding. Decoding a row is then one loop with one `switch` over plain arrays:
 * no per-row or per-field closures, no metadata parsing, no allocation beyond the values.
 *
 * The value rules are values.ts's, shared with the snapshot's readers; this module knows the
 * binlog's binary layouts. The same compiled plan serves two outputs: {@link RowDecoder.decode}
 * fills a `Row` object (tests, the offline decoder, partial JSON updates), {@link RowDecoder.write}
 * writes the image as JSON bytes into a scratch buffer for the streaming hot path
 * (json-bytes.ts says why), with each column's `"name":` prefix made into bytes once here. The writer handles
 * the common kinds itself (integers as digits, UTF-8 text copied from the binlog, temporal
 * and decimal values printed as bytes) and takes every other value from the object path's
 * `switch`, so the rarer kinds have one decoding only.
 */
import { isUtf8 } from 'node:buffer';
import type { JsonValue, Row } from '../../src/core/event.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { ColumnType as T, TextKind, stringMeta, textKindFor } from './column-types.js';
import type { JsonBytes } from '../../src/core/json-bytes.js';
import { decimalBinarySize, decodeDecimal, writeDecimal } from './decimal.js';
import { applyJsonDiffs, parseJsonDiffs } from './json-diff.js';
import { decodeJsonBinary } from './json-binary.js';
import type { TableMap } from './table-map.js';
import {
  decodeDate, decodeDatetime, decodeDatetime2, decodeTime, decodeTime2, decodeTimestamp2, fracBytes, formatTimestamp,
  writeDate, writeDatetime, writeDatetime2, writeTime2, writeTimestamp, writeTimestamp2,
} from './temporal.js';
import {
  MAX_SAFE, bitToJson, decodeText, float32ToNumber, geometryToJson, objectOnlyName, parseJsonText, quoteJson, textDecoderFor,
  uintToJson, vectorToJson, writeJsonText, yearToJson, type BytesDecoder,
} from './values.js';

/** Decode kinds: one per physical layout. */
const enum K {
  TINY, TINY_U, SHORT, SHORT_U, INT24, INT24_U, LONG, LONG_U, LONGLONG, LONGLONG_U,
  FLOAT, DOUBLE, YEAR, DATE, TIME, TIME2, DATETIME, DATETIME2, TIMESTAMP, TIMESTAMP2,
  NEWDECIMAL, VARSTR, BLOB, ENUM, SET, BIT, JSON, GEOMETRY, VECTOR, NULL,
}

/** Hints the caller's schema history can add to a TABLE_MAP that lacks full metadata. */
export interface TableSchemaHint {
  /** Column names in ordinal order; must have exactly the TABLE_MAP's column count. */
  columns: string[];
  /** Primary key column names, in key order. */
  primaryKey?: string[];
  /** Names of columns to parse as JSON text (MariaDB JSON is LONGTEXT on the wire). */
  jsonColumns?: string[];
  /** Collation id per column (null where not a character column), when metadata lacks it. */
  collations?: (number | null)[];
  /** ENUM labels per column name, when metadata lacks them. */
  enumValues?: Record<string, string[]>;
  /** SET labels per column name, when metadata lacks them. */
  setValues?: Record<string, string[]>;
  /** Unsigned flag per column, when metadata lacks signedness. */
  unsigned?: boolean[];
}

function bad(tm: TableMap, msg: string): never {
  throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${tm.db}.${tm.table}: ${msg}`);
}

const JSON_DIFF_OPS = ['replace', 'insert', 'remove'];
const TWO_32 = 4294967296;

/**
 * An ENUM or SET column's labels: the TABLE_MAP's, else the schema history's. MariaDB
 * writes the TABLE_MAP's labels in utf8mb3, each byte of a 4-byte character as `?` (seen on
 * 10.11: `'😀'` is logged as `????`), so where the history's labels read the same with their
 * 4-byte characters so replaced, the history's are the real ones.
 */
function labelsOf(logged: string[] | null | undefined, history: string[] | undefined): string[] | null {
  if (!logged) return history ?? null;
  if (history && history.length === logged.length && logged.some((l) => l.includes('????'))) {
    if (history.every((h, k) => h.replace(/[\u{10000}-\u{10ffff}]/gu, '????') === logged[k])) return history;
  }
  return logged;
}

/** A compiled decoder for one TABLE_MAP. */
export class RowDecoder {
  readonly columnCount: number;
  /** JSON property name per column. */
  readonly names: string[];
  /** Primary key column ordinals, or null when unknown. */
  readonly keyColumns: number[] | null;
  /** Ordinals 0..n-1, reused when every column is present (the usual FULL row image). */
  readonly allColumns: Int32Array;
  private readonly kinds: Uint8Array;
  /** Per-kind parameter: prefix width, fsp, precision, byte count. */
  private readonly p1: Int32Array;
  /** Second parameter: scale for NEWDECIMAL. */
  private readonly p2: Int32Array;
  private readonly textKinds: Uint8Array;
  private readonly textDecoders: (BytesDecoder | null)[];
  /** BINARY(n): the binlog drops trailing 0x00 padding; this is n, to put it back. */
  private readonly padTo: Int32Array;
  private readonly labels: (string[] | null)[];
  private readonly jsonText: Uint8Array;
  /**
   * JSON path: 1 where every string the column can produce is plain ASCII that needs no
   * escaping (old TIME, base64 of BINARY(n), SET labels checked once, big BIT values), so
   * a value the writer takes from the object path is quoted without a check.
   */
  private readonly safeText: Uint8Array;
  /** JSON path: `"name":` for the first column of an image, `,"name":` for the others. */
  private readonly firstPrefix: Buffer[];
  private readonly nextPrefix: Buffer[];
  /** JSON path: an ENUM column's labels as JSON strings, index 0 being `""` (the invalid value). */
  private readonly enumJson: (Buffer[] | null)[];
  /** JSON path: position of each column in {@link keyColumns}, -1 when not a key column. */
  private readonly keySlot: Int32Array;
  /** JSON path: `"name":` / `,"name":` per key column, in key order. */
  private readonly keyPrefix: Buffer[];
  /**
   * JSON path: where {@link write} put each key column's value (start at 2j, end at 2j+1 for
   * key column j, relative to the writer's `mark`; -1 when the image lacks it), one set per
   * image of an update.
   */
  readonly oldSpans: Int32Array;
  readonly newSpans: Int32Array;
  /**
   * False when the image must be built as an object (see objectOnlyName); callers then
   * serialize the object instead of calling {@link write}.
   */
  readonly canEncode: boolean;
  /** After {@link value}: the offset after the value. */
  private next = 0;

  /** @param hint what the schema history added to the TABLE_MAP */
  constructor(readonly map: TableMap, names: string[], readonly hint?: TableSchemaHint) {
    const n = map.columnCount;
    this.columnCount = n;
    this.names = names;
    this.kinds = new Uint8Array(n);
    this.p1 = new Int32Array(n);
    this.p2 = new Int32Array(n);
    this.textKinds = new Uint8Array(n);
    this.textDecoders = new Array(n).fill(null);
    this.labels = new Array(n).fill(null);
    this.jsonText = new Uint8Array(n);
    this.padTo = new Int32Array(n);
    this.safeText = new Uint8Array(n);
    this.firstPrefix = new Array<Buffer>(n);
    this.nextPrefix = new Array<Buffer>(n);
    this.enumJson = new Array(n).fill(null);
    this.keySlot = new Int32Array(n).fill(-1);
    this.allColumns = new Int32Array(n);
    let canEncode = true;
    for (let i = 0; i < n; i++) {
      this.allColumns[i] = i;
      const name = names[i]!;
      if (objectOnlyName(name)) canEncode = false;
      this.firstPrefix[i] = Buffer.from(JSON.stringify(name) + ':', 'utf8');
      this.nextPrefix[i] = Buffer.from(',' + JSON.stringify(name) + ':', 'utf8');
    }
    const jsonSet = new Set(hint?.jsonColumns ?? []);
    for (let i = 0; i < n; i++) {
      const type = map.types[i]!;
      const meta = map.metas[i]!;
      const unsigned = map.unsigned ? map.unsigned[i]! : hint?.unsigned?.[i] ?? false;
      const coll = map.collations[i] ?? hint?.collations?.[i] ?? null;
      const tk = textKindFor(coll);
      this.textKinds[i] = tk.kind;
      this.textDecoders[i] = textDecoderFor(tk);
      if (jsonSet.has(names[i]!)) this.jsonText[i] = 1;

      let kind: K;
      switch (type) {
        case T.TINY: kind = unsigned ? K.TINY_U : K.TINY; break;
        case T.SHORT: kind = unsigned ? K.SHORT_U : K.SHORT; break;
        case T.INT24: kind = unsigned ? K.INT24_U : K.INT24; break;
        case T.LONG: kind = unsigned ? K.LONG_U : K.LONG; break;
        case T.LONGLONG: kind = unsigned ? K.LONGLONG_U : K.LONGLONG; break;
        case T.FLOAT: kind = K.FLOAT; break;
        case T.DOUBLE: kind = K.DOUBLE; break;
        case T.YEAR: kind = K.YEAR; break;
        case T.DATE: case T.NEWDATE: kind = K.DATE; break;
        case T.TIME: kind = K.TIME; break;
        case T.TIME2: kind = K.TIME2; this.p1[i] = meta; break;
        case T.DATETIME: kind = K.DATETIME; break;
        case T.DATETIME2: kind = K.DATETIME2; this.p1[i] = meta; break;
        case T.TIMESTAMP: kind = K.TIMESTAMP; break;
        case T.TIMESTAMP2: kind = K.TIMESTAMP2; this.p1[i] = meta; break;
        case T.NEWDECIMAL: kind = K.NEWDECIMAL; this.p1[i] = meta >> 8; this.p2[i] = meta & 0xff; break;
        case T.VARCHAR: case T.VAR_STRING:
          kind = K.VARSTR; this.p1[i] = meta < 256 ? 1 : 2; break;
        case T.STRING: case T.ENUM: case T.SET: {
          const sm = type === T.STRING ? stringMeta(meta) : { realType: type, maxLen: meta & 0xff };
          if (sm.realType === T.ENUM) {
            kind = K.ENUM; this.p1[i] = sm.maxLen; this.labels[i] = labelsOf(map.enumValues[i], hint?.enumValues?.[names[i]!]);
          } else if (sm.realType === T.SET) {
            kind = K.SET; this.p1[i] = sm.maxLen; this.labels[i] = labelsOf(map.setValues[i], hint?.setValues?.[names[i]!]);
          } else {
            kind = K.VARSTR; this.p1[i] = sm.maxLen < 256 ? 1 : 2;
            if (tk.kind === TextKind.Binary) this.padTo[i] = sm.maxLen;
          }
          break;
        }
        case T.BIT: kind = K.BIT; this.p1[i] = (meta >> 8) + ((meta & 0xff) > 0 ? 1 : 0); break;
        case T.TINY_BLOB: case T.MEDIUM_BLOB: case T.LONG_BLOB: case T.BLOB:
          kind = K.BLOB; this.p1[i] = meta; break;
        case T.JSON: kind = K.JSON; this.p1[i] = meta; break;
        case T.GEOMETRY: kind = K.GEOMETRY; this.p1[i] = meta; break;
        case T.VECTOR: kind = K.VECTOR; this.p1[i] = meta; break;
        case T.NULL: kind = K.NULL; break;
        default:
          bad(map, `column ${names[i]} has unsupported type ${type}`);
      }
      this.kinds[i] = kind;
      this.safeText[i] = safeKind(kind, tk.kind, this.jsonText[i] === 1, this.labels[i]) ? 1 : 0;
      const labels = this.labels[i];
      if (kind === K.ENUM && labels) this.enumJson[i] = ['', ...labels].map((l) => Buffer.from(JSON.stringify(l), 'utf8'));
    }

    if (map.primaryKey) this.keyColumns = map.primaryKey;
    else if (hint?.primaryKey) {
      this.keyColumns = hint.primaryKey.map((k) => {
        const idx = names.indexOf(k);
        if (idx < 0) bad(map, `primary key column ${k} is not among the columns`);
        return idx;
      });
    } else this.keyColumns = null;
    const kc = this.keyColumns ?? [];
    this.keyPrefix = kc.map((c, j) => (j === 0 ? this.firstPrefix[c]! : this.nextPrefix[c]!));
    this.oldSpans = new Int32Array(2 * kc.length);
    this.newSpans = new Int32Array(2 * kc.length);
    for (let j = 0; j < kc.length; j++) this.keySlot[kc[j]!] = j;
    // A column named twice makes the object keep one value where the text would hold two; a
    // key column listed twice has one slot. Neither happens with real tables; if it does,
    // the object path copes.
    this.canEncode = canEncode && new Set(names).size === n && new Set(kc).size === kc.length;
  }

  /** True when column `i` is JSON (MySQL binary JSON), the only kind partial updates touch. */
  isJsonColumn(i: number): boolean {
    return this.kinds[i] === K.JSON;
  }

  /**
   * Decodes one row image at `buf[p]` into `out` and returns the offset after it.
   * `cols` lists the ordinals present in this image (from the rows event's column bitmap);
   * the image starts with a null bitmap sized to the present columns only.
   *
   * For PARTIAL_UPDATE_ROWS after images, `partial` flags JSON columns (by ordinal) whose
   * value is a diff list; `base` is the before image to apply it to. A diff for a column the
   * before image lacks cannot be resolved; its name goes to `missing` and it is left out.
   */
  decode(
    buf: Buffer, p: number, end: number, cols: Int32Array, out: Row,
    partial?: Uint8Array | null, base?: Row | null, missing?: string[],
  ): number {
    const nPresent = cols.length;
    const nullStart = p;
    p += (nPresent + 7) >> 3;
    if (p > end) bad(this.map, 'row image is truncated (null bitmap)');
    for (let k = 0; k < nPresent; k++) {
      const i = cols[k]!;
      if ((buf[nullStart + (k >> 3)]! & (1 << (k & 7))) !== 0) out[this.names[i]!] = null;
      else {
        out[this.names[i]!] = this.value(buf, p, end, i, partial ?? null, base ?? null, missing);
        p = this.next;
      }
    }
    return p;
  }

  /**
   * Writes one row image like {@link decode} builds it, as a JSON object into `w`: the same
   * keys in the same order, each value the text JSON.stringify gives for the object's. Notes
   * in `spans` ({@link oldSpans} or {@link newSpans}) where the key columns' values landed,
   * for {@link writeKey}. Returns the offset after the image. Only for tables with
   * {@link canEncode}; partial JSON updates need {@link decode}.
   */
  write(buf: Buffer, p: number, end: number, cols: Int32Array, w: JsonBytes, spans: Int32Array): number {
    const nPresent = cols.length;
    const nullStart = p;
    p += (nPresent + 7) >> 3;
    if (p > end) bad(this.map, 'row image is truncated (null bitmap)');
    const kinds = this.kinds;
    const keySlot = this.keySlot;
    spans.fill(-1);
    w.byte(123); // {
    for (let k = 0; k < nPresent; k++) {
      const i = cols[k]!;
      const prefix = k === 0 ? this.firstPrefix[i]! : this.nextPrefix[i]!;
      w.raw(prefix, 0, prefix.length);
      const at = w.n - w.mark;
      if ((buf[nullStart + (k >> 3)]! & (1 << (k & 7))) !== 0) w.raw(NULL, 0, 4);
      else {
        switch (kinds[i]) {
          case K.TINY: w.int(buf.readInt8(p)); p += 1; break;
          case K.TINY_U: w.int(buf[p]!); p += 1; break;
          case K.SHORT: w.int(buf.readInt16LE(p)); p += 2; break;
          case K.SHORT_U: w.int(buf.readUInt16LE(p)); p += 2; break;
          case K.INT24: w.int(buf.readIntLE(p, 3)); p += 3; break;
          case K.INT24_U: w.int(buf.readUIntLE(p, 3)); p += 3; break;
          case K.LONG: w.int(buf.readInt32LE(p)); p += 4; break;
          case K.LONG_U: w.int(buf.readUInt32LE(p)); p += 4; break;
          case K.LONGLONG: {
            const n = buf.readInt32LE(p + 4) * TWO_32 + buf.readUInt32LE(p);
            if (n >= -MAX_SAFE && n <= MAX_SAFE) w.int(n);
            else w.ascii('"' + buf.readBigInt64LE(p).toString() + '"');
            p += 8;
            break;
          }
          case K.LONGLONG_U: {
            const n = buf.readUInt32LE(p + 4) * TWO_32 + buf.readUInt32LE(p);
            if (n <= MAX_SAFE) w.int(n);
            else w.ascii('"' + buf.readBigUInt64LE(p).toString() + '"');
            p += 8;
            break;
          }
          case K.FLOAT: w.float(float32ToNumber(buf.readFloatLE(p))); p += 4; break;
          case K.DOUBLE: w.float(buf.readDoubleLE(p)); p += 8; break;
          case K.YEAR: w.int(yearToJson(buf[p]!)); p += 1; break;
          case K.DATE: writeDate(w, buf, p); p += 3; break;
          case K.TIME2: writeTime2(w, buf, p, this.p1[i]!); p += 3 + fracBytes(this.p1[i]!); break;
          case K.DATETIME: writeDatetime(w, buf, p); p += 8; break;
          case K.DATETIME2: writeDatetime2(w, buf, p, this.p1[i]!); p += 5 + fracBytes(this.p1[i]!); break;
          case K.TIMESTAMP: writeTimestamp(w, buf.readUInt32LE(p), 0, 0); p += 4; break;
          case K.TIMESTAMP2: writeTimestamp2(w, buf, p, this.p1[i]!); p += 4 + fracBytes(this.p1[i]!); break;
          case K.NEWDECIMAL: {
            const prec = this.p1[i]!;
            const scale = this.p2[i]!;
            const size = decimalBinarySize(prec, scale);
            if (p + size > end) bad(this.map, `column ${this.names[i]} is truncated`);
            writeDecimal(w, buf, p, prec, scale);
            p += size;
            break;
          }
          case K.ENUM: {
            const json = this.enumJson[i];
            if (json === null) {
              // No labels: the index, as the object path gives it.
              this.writeValue(w, this.value(buf, p, end, i, null, null, undefined), i);
              p = this.next;
              break;
            }
            const idx = this.p1[i] === 1 ? buf[p]! : buf.readUInt16LE(p);
            p += this.p1[i]!;
            const label = json[idx];
            if (label !== undefined) w.raw(label, 0, label.length);
            else w.ascii('"' + idx + '"'); // an index past the labels: as a string, like the object path
            break;
          }
          case K.VARSTR:
          case K.BLOB: {
            const lw = this.p1[i]!;
            if (kinds[i] === K.VARSTR && this.padTo[i]! !== 0) {
              // BINARY(n): padded back to n bytes by the object path.
              this.writeValue(w, this.value(buf, p, end, i, null, null, undefined), i);
              p = this.next;
              break;
            }
            const len = kinds[i] === K.BLOB ? buf.readUIntLE(p, lw) : lw === 1 ? buf[p]! : buf.readUInt16LE(p);
            p += lw;
            if (p + len > end) bad(this.map, `column ${this.names[i]} is truncated`);
            if (this.jsonText[i] === 1 && kinds[i] === K.BLOB) writeJsonText(w, buf, p, p + len);
            else this.writeText(w, buf, p, p + len, i);
            p += len;
            break;
          }
          default:
            // TIME, SET, BIT, JSON, GEOMETRY, VECTOR, NULL, BINARY(n): the object path's value.
            this.writeValue(w, this.value(buf, p, end, i, null, null, undefined), i);
            p = this.next;
        }
        if (p > end) bad(this.map, `row image is truncated at column ${this.names[i]}`);
      }
      const slot = keySlot[i]!;
      if (slot >= 0) {
        spans[2 * slot] = at;
        spans[2 * slot + 1] = w.n - w.mark;
      }
    }
    w.byte(125); // }
    return p;
  }

  /** True when the image {@link write} noted in `spans` holds every key column. */
  hasKey(spans: Int32Array): boolean {
    if (spans.length === 0) return false;
    for (let j = 0; j < spans.length; j += 2) if (spans[j]! < 0) return false;
    return true;
  }

  /**
   * Writes the key object (`{"k1":v1,...}` in key order, what `JSON.stringify(keyOf(row))`
   * gives) into `w`, its values copied from where {@link write} put them in `from`; `null`
   * when the key is unknown or the image lacks a key column.
   */
  writeKey(from: JsonBytes, spans: Int32Array, w: JsonBytes): void {
    if (!this.hasKey(spans)) {
      w.raw(NULL, 0, 4);
      return;
    }
    const kp = this.keyPrefix;
    w.byte(123); // {
    for (let j = 0; j < kp.length; j++) {
      w.raw(kp[j]!, 0, kp[j]!.length);
      // Spans are relative to the text's start: an arena writer may have moved it to a new
      // slab since (the old slab keeps the bytes, so reading from `from.buf` as it is now is right).
      const base = from.mark;
      w.raw(from.buf, base + spans[2 * j]!, base + spans[2 * j + 1]!);
    }
    w.byte(125);
  }

  /** A string column's text (not JSON text) as a JSON string. */
  private writeText(w: JsonBytes, buf: Buffer, s: number, e: number, i: number): void {
    const kind = this.textKinds[i]! as TextKind;
    switch (kind) {
      case TextKind.Utf8:
        w.string(buf, s, e);
        return;
      case TextKind.Binary:
        w.byte(34);
        w.ascii(buf.toString('base64', s, e));
        w.byte(34);
        return;
      case TextKind.Latin1:
        // ASCII is the same in latin1 and UTF-8: such text (the usual) is copied as it is.
        if (isAscii(buf, s, e)) {
          w.string(buf, s, e);
          return;
        }
        break;
      case TextKind.Unknown:
        if (isUtf8(buf.subarray(s, e))) w.string(buf, s, e);
        else {
          w.byte(34);
          w.ascii(buf.toString('base64', s, e));
          w.byte(34);
        }
        return;
    }
    w.text(quoteJson(decodeText(buf, s, e, kind, this.textDecoders[i]!)));
  }

  /** The JSON text JSON.stringify writes for `v`, a value of column `i`. */
  private writeValue(w: JsonBytes, v: JsonValue, i: number): void {
    if (v === null) w.raw(NULL, 0, 4);
    else if (typeof v === 'number') w.number(v);
    else if (typeof v === 'string') {
      if (this.safeText[i] === 1) {
        w.byte(34);
        w.ascii(v);
        w.byte(34);
      } else w.text(quoteJson(v));
    } else w.text(JSON.stringify(v));
  }

  /** Decodes the value of column `i` (not null) at `buf[p]`; {@link next} is set to its end. */
  private value(
    buf: Buffer, p: number, end: number, i: number, partial: Uint8Array | null, base: Row | null, missing: string[] | undefined,
  ): JsonValue {
    const name = this.names[i]!;
    let v: JsonValue;
    switch (this.kinds[i]) {
      case K.TINY: v = buf.readInt8(p); p += 1; break;
      case K.TINY_U: v = buf[p]!; p += 1; break;
      case K.SHORT: v = buf.readInt16LE(p); p += 2; break;
      case K.SHORT_U: v = buf.readUInt16LE(p); p += 2; break;
      case K.INT24: v = buf.readIntLE(p, 3); p += 3; break;
      case K.INT24_U: v = buf.readUIntLE(p, 3); p += 3; break;
      case K.LONG: v = buf.readInt32LE(p); p += 4; break;
      case K.LONG_U: v = buf.readUInt32LE(p); p += 4; break;
      case K.LONGLONG: {
        const n = buf.readInt32LE(p + 4) * TWO_32 + buf.readUInt32LE(p);
        v = n >= -MAX_SAFE && n <= MAX_SAFE ? n : buf.readBigInt64LE(p).toString();
        p += 8;
        break;
      }
      case K.LONGLONG_U: {
        const n = buf.readUInt32LE(p + 4) * TWO_32 + buf.readUInt32LE(p);
        v = n <= MAX_SAFE ? n : buf.readBigUInt64LE(p).toString();
        p += 8;
        break;
      }
      case K.FLOAT: v = float32ToNumber(buf.readFloatLE(p)); p += 4; break;
      case K.DOUBLE: v = buf.readDoubleLE(p); p += 8; break;
      case K.YEAR: v = yearToJson(buf[p]!); p += 1; break;
      case K.DATE: v = decodeDate(buf, p); p += 3; break;
      case K.TIME: v = decodeTime(buf, p); p += 3; break;
      case K.TIME2: v = decodeTime2(buf, p, this.p1[i]!); p += 3 + fracBytes(this.p1[i]!); break;
      case K.DATETIME: v = decodeDatetime(buf, p); p += 8; break;
      case K.DATETIME2: v = decodeDatetime2(buf, p, this.p1[i]!); p += 5 + fracBytes(this.p1[i]!); break;
      case K.TIMESTAMP: v = formatTimestamp(buf.readUInt32LE(p), 0, 0); p += 4; break;
      case K.TIMESTAMP2: v = decodeTimestamp2(buf, p, this.p1[i]!); p += 4 + fracBytes(this.p1[i]!); break;
      case K.NEWDECIMAL: {
        const prec = this.p1[i]!;
        const scale = this.p2[i]!;
        const size = decimalBinarySize(prec, scale);
        if (p + size > end) bad(this.map, `column ${name} is truncated`);
        v = decodeDecimal(buf, p, prec, scale);
        p += size;
        break;
      }
      case K.VARSTR: {
        const len = this.p1[i] === 1 ? buf[p]! : buf.readUInt16LE(p);
        p += this.p1[i]!;
        if (p + len > end) bad(this.map, `column ${name} is truncated`);
        const pad = this.padTo[i]!;
        if (pad > len) {
          // BINARY(n) is stored without its trailing zero bytes: restore them.
          const full = Buffer.alloc(pad);
          buf.copy(full, 0, p, p + len);
          v = full.toString('base64');
        } else v = decodeText(buf, p, p + len, this.textKinds[i]!, this.textDecoders[i]!);
        p += len;
        break;
      }
      case K.BLOB: {
        const w = this.p1[i]!;
        const len = buf.readUIntLE(p, w);
        p += w;
        if (p + len > end) bad(this.map, `column ${name} is truncated`);
        if (this.jsonText[i] === 1) v = parseJsonText(buf.toString('utf8', p, p + len));
        else v = decodeText(buf, p, p + len, this.textKinds[i]!, this.textDecoders[i]!);
        p += len;
        break;
      }
      case K.ENUM: {
        const idx = this.p1[i] === 1 ? buf[p]! : buf.readUInt16LE(p);
        p += this.p1[i]!;
        const labels = this.labels[i];
        v = labels ? (idx === 0 ? '' : labels[idx - 1] ?? String(idx)) : idx;
        break;
      }
      case K.SET: {
        const nb = this.p1[i]!;
        const labels = this.labels[i];
        if (labels) {
          let s = '';
          for (let b = 0; b < nb * 8 && b < labels.length; b++) {
            if ((buf[p + (b >> 3)]! & (1 << (b & 7))) !== 0) s = s.length === 0 ? labels[b]! : s + ',' + labels[b]!;
          }
          v = s;
        } else {
          v = nb <= 6 ? buf.readUIntLE(p, nb) : uintToJson(buf.readBigUInt64LE(p) & ((1n << BigInt(nb * 8)) - 1n));
        }
        p += nb;
        break;
      }
      case K.BIT: {
        const nb = this.p1[i]!;
        v = bitToJson(buf, p, p + nb);
        p += nb;
        break;
      }
      case K.JSON: {
        const w = this.p1[i]!;
        const len = buf.readUIntLE(p, w);
        p += w;
        if (p + len > end) bad(this.map, `column ${name} is truncated`);
        if (partial && partial[i] === 1) {
          const diffs = parseJsonDiffs(buf, p, p + len);
          if (base && name in base) v = applyJsonDiffs(base[name]!, diffs);
          else {
            // No before value to patch (binlog_row_image=MINIMAL): hand back the diffs in
            // a self-describing wrapper; the caller decides whether that is acceptable.
            missing?.push(name);
            v = {
              $jsonDiff: diffs.map((d) => {
                const o: { [k: string]: JsonValue } = { op: JSON_DIFF_OPS[d.op]!, path: d.path };
                if (d.value !== undefined) o.value = d.value;
                return o;
              }),
            };
          }
        } else v = decodeJsonBinary(buf, p, p + len);
        p += len;
        break;
      }
      case K.GEOMETRY: {
        const w = this.p1[i]!;
        const len = buf.readUIntLE(p, w);
        p += w;
        if (p + len > end || len < 4) bad(this.map, `column ${name} is truncated`);
        v = geometryToJson(buf, p, p + len);
        p += len;
        break;
      }
      case K.VECTOR: {
        const w = this.p1[i]!;
        const len = buf.readUIntLE(p, w);
        p += w;
        if (p + len > end) bad(this.map, `column ${name} is truncated`);
        v = vectorToJson(buf, p, p + len);
        p += len;
        break;
      }
      default:
        v = null;
    }
    if (p > end) bad(this.map, `row image is truncated at column ${name}`);
    this.next = p;
    return v;
  }

  /** The key object from an image, or null when the key is unknown or not in the image. */
  keyOf(row: Row | null): Row | null {
    const kc = this.keyColumns;
    if (!kc || !row || kc.length === 0) return null;
    const key: Row = {};
    for (let j = 0; j < kc.length; j++) {
      const name = this.names[kc[j]!]!;
      const v = row[name];
      if (v === undefined) return null;
      key[name] = v;
    }
    return key;
  }
}

/**
 * True when no string a column of this kind yields needs JSON escaping (digits, dates,
 * base64, labels checked here once): its JSON text is then the string in quotes.
 */
function safeKind(kind: K, text: TextKind, jsonText: boolean, labels: string[] | null): boolean {
  switch (kind) {
    case K.LONGLONG: case K.LONGLONG_U: case K.DATE: case K.TIME: case K.TIME2: case K.DATETIME: case K.DATETIME2:
    case K.TIMESTAMP: case K.TIMESTAMP2: case K.NEWDECIMAL: case K.SET: case K.BIT:
      // SET: labels are checked below; without labels it is a number (or a decimal string).
      return kind !== K.SET || labels === null || labels.every(plainAscii);
    case K.VARSTR: case K.BLOB:
      return text === TextKind.Binary && !jsonText; // base64
    case K.ENUM:
      return labels === null || labels.every(plainAscii);
    default:
      return false;
  }
}

/**
 * True for a label that is its own JSON string body: printable ASCII without `"` or `\`.
 * A safe text is written one byte per UTF-16 unit (JsonBytes.ascii), so a label that merely
 * needs no escaping is not enough: `é` would become one latin1 byte, and `😀` two broken ones.
 */
function plainAscii(label: string): boolean {
  return /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(label);
}

/** `null` as bytes. */
const NULL = Buffer.from('null', 'latin1');

function isAscii(buf: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (buf[i]! >= 0x80) return false;
  return true;
}
