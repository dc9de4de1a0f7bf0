/**
 * Row image decoding, compiled once per TABLE_MAP.
 *
 * When a TABLE_MAP arrives we resolve, for every column, a small integer "kind" plus its
 * numeric parameters (length-prefix width, fsp, precision/scale, ...), its JSON name and
 * its text decoding. Decoding a row is then one loop with one `switch` over plain arrays:
 * no per-row or per-field closures, no metadata parsing, no allocation beyond the values.
 *
 * Value rules (DESIGN.md), with the choices this decoder makes where the contract is open:
 * - integers: JSON numbers; LONGLONG (signed or unsigned) beyond ±(2^53−1) → decimal string;
 * - FLOAT: the shortest decimal that round-trips the stored float32 (1.1, not 1.100000023841858);
 * - NEWDECIMAL: exact string with the scale's digits (`"12.30"`);
 * - temporal: see temporal.ts (zero dates → null);
 * - YEAR: number (0 for the zero year);
 * - character columns: decoded with the column charset; collation 63 (binary) → base64; when
 *   no charset is known (no optional metadata): UTF-8 if the bytes are valid UTF-8, else base64;
 * - ENUM: label ("" for the invalid index 0); SET: labels joined by ","; when labels were not
 *   logged (binlog_row_metadata=MINIMAL): the ENUM index / SET bitmask as a number;
 * - BIT(n): unsigned number (most significant byte first); decimal string above 2^53−1;
 * - JSON: parsed value (MySQL binary JSON); MariaDB JSON is LONGTEXT and stays text unless the
 *   schema hint marks the column as JSON, then it is parsed;
 * - GEOMETRY: `{"srid": n, "wkb": "<base64>"}` (MySQL prefixes the WKB with a u32 LE SRID;
 *   Debezium's Geometry struct has the same two fields);
 * - VECTOR: array of float32 numbers (shortest round-trip form, like FLOAT).
 *
 * The same compiled plan serves two outputs: {@link RowDecoder.decode} fills a `Row` object
 * (tests, the offline decoder, partial JSON updates), {@link RowDecoder.write} writes the
 * image as JSON bytes into a scratch buffer for the streaming hot path (json-bytes.ts says
 * why), with each column's `"name":` prefix made into bytes once here. The writer handles
 * the common kinds itself (integers as digits, UTF-8 text copied from the binlog, temporal
 * and decimal values printed as bytes) and takes every other value from the object path's
 * `switch`, so the rarer kinds have one decoding only.
 */
import { isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import type { JsonValue, Row } from '../../src/core/event.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { ColumnType as T, TextKind, stringMeta, textKindFor } from './column-types.js';
import type { JsonBytes } from '../../src/core/json-bytes.js';
import { decimalBinarySize, decodeDecimal, writeDecimal } from './decimal.js';
import { applyJsonDiffs, parseJsonDiffs } from './json-diff.js';
import { decodeJsonBinary } from './json-binary.js';
import { embeddableJsonBytes } from './json-text.js';
import type { TableMap } from './table-map.js';
import {
  decodeDate, decodeDatetime, decodeDatetime2, decodeTime, decodeTime2, decodeTimestamp2, fracBytes, formatTimestamp,
  writeDate, writeDatetime, writeDatetime2, writeTime2, writeTimestamp, writeTimestamp2,
} from './temporal.js';

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

const MAX_SAFE = 9007199254740991;
/** Characters that JSON.stringify would escape (surrogates: a lone one is escaped). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A string as JSON text. Most column text needs no escaping, and a regex test plus two
 * concatenations is about twice as fast as JSON.stringify on short strings.
 */
export function quoteJson(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/**
 * True for names that an object would not keep in insertion order or at all: integer-like
 * keys (`"7"`, enumerated first by JSON.stringify) and `__proto__` (sets the prototype).
 * Images of tables with such column names are only built as objects, so the JSON path never
 * has to reproduce those quirks.
 */
function objectOnlyName(name: string): boolean {
  return name === '__proto__' || (/^(?:0|[1-9]\d*)$/.test(name) && Number(name) < 4294967295);
}
const JSON_DIFF_OPS = ['replace', 'insert', 'remove'];
const TWO_32 = 4294967296;

/** Below this a float32 is subnormal: fewer significant bits, so fewer digits may name it. */
const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;

/**
 * The shortest decimal that maps back to the same float32. For a normal float32, a decimal
 * of fewer than 6 digits that names it is also what its 6-digit rounding reads as (1.5 from
 * `1.50000`), since float32 steps are finer than that grid, so the search starts at 6. A
 * subnormal one has fewer significant bits: its 6-digit rounding may read back while a
 * shorter decimal names it too (1.4e-45 is `1e-45`, not `1.4013e-45`), so it starts at 1.
 */
export function float32ToNumber(f: number): number {
  if (!Number.isFinite(f) || f === 0) return f; // a zero keeps its sign
  for (let p = f > -FLOAT32_MIN_NORMAL && f < FLOAT32_MIN_NORMAL ? 1 : 6; p <= 9; p++) {
    const v = Number(f.toPrecision(p));
    if (Math.fround(v) === f) return v;
  }
  return f;
}

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

/** Anything with TextDecoder's `decode`. */
interface BytesDecoder {
  decode(input: Uint8Array): string;
}

/**
 * MySQL's latin1 is Windows-1252, except that the five bytes cp1252 leaves undefined map to
 * themselves. Node's TextDecoder('windows-1252') decodes 0x80–0x9F as ISO-8859-1 (so a
 * euro sign would become U+0080), hence this table.
 */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];
export const mysqlLatin1: BytesDecoder = {
  decode(b: Uint8Array): string {
    const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
    // Fast path: nothing in 0x80–0x9F, latin1 and cp1252 agree.
    if (!/[\x80-\x9f]/.test(s)) return s;
    return s.replace(/[\x80-\x9f]/g, (c) => String.fromCharCode(CP1252_HIGH[c.charCodeAt(0) - 0x80]!));
  },
};

const otherDecoders = new Map<string, TextDecoder>();
function decoderFor(label: string): TextDecoder {
  let d = otherDecoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    otherDecoders.set(label, d);
  }
  return d;
}

function decodeText(buf: Buffer, s: number, e: number, kind: TextKind, dec: BytesDecoder | null): string {
  switch (kind) {
    case TextKind.Utf8:
      return buf.toString('utf8', s, e);
    case TextKind.Binary:
      return buf.toString('base64', s, e);
    case TextKind.Unknown: {
      const sub = buf.subarray(s, e);
      return isUtf8(sub) ? buf.toString('utf8', s, e) : buf.toString('base64', s, e);
    }
    case TextKind.Utf16LE:
      return buf.toString('utf16le', s, e);
    case TextKind.Utf32BE: {
      let out = '';
      for (let p = s; p + 4 <= e; p += 4) out += String.fromCodePoint(buf.readUInt32BE(p));
      return out;
    }
    default:
      return dec!.decode(buf.subarray(s, e));
  }
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
      if (tk.kind === TextKind.Latin1) {
        this.textDecoders[i] = mysqlLatin1;
      } else if (tk.kind === TextKind.Utf16BE) this.textDecoders[i] = decoderFor('utf-16be');
      else if (tk.kind === TextKind.Other) this.textDecoders[i] = decoderFor(tk.label!);
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
          case K.YEAR: { const y = buf[p]!; w.int(y === 0 ? 0 : 1900 + y); p += 1; break; }
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
      case K.YEAR: { const y = buf[p]!; v = y === 0 ? 0 : 1900 + y; p += 1; break; }
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
          v = nb <= 6 ? buf.readUIntLE(p, nb) : bigToJson(buf.readBigUInt64LE(p) & ((1n << BigInt(nb * 8)) - 1n));
        }
        p += nb;
        break;
      }
      case K.BIT: {
        const nb = this.p1[i]!;
        if (nb <= 6) v = buf.readUIntBE(p, nb);
        else {
          let b = 0n;
          for (let q = 0; q < nb; q++) b = (b << 8n) | BigInt(buf[p + q]!);
          v = bigToJson(b);
        }
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
        v = { srid: buf.readUInt32LE(p), wkb: buf.toString('base64', p + 4, p + len) };
        p += len;
        break;
      }
      case K.VECTOR: {
        const w = this.p1[i]!;
        const len = buf.readUIntLE(p, w);
        p += w;
        if (p + len > end) bad(this.map, `column ${name} is truncated`);
        const arr: number[] = new Array(len >> 2);
        for (let q = 0; q < arr.length; q++) arr[q] = float32ToNumber(buf.readFloatLE(p + q * 4));
        v = arr;
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

/** A JSON text column's value on the object path: the parsed document, or the text when invalid. */
function parseJsonText(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

/**
 * A JSON text column (UTF-8 bytes `buf[s, e)`, MariaDB's JSON) as JSON text: a valid
 * document is copied, never parsed, so its numbers keep every digit (`1e400`,
 * `123456789012345678901234567890`, `-0`), and compacted when it spans lines so the envelope
 * stays on one (json-text.ts, JsonBytes.compactJson); text that is not JSON is a string, as
 * on the object path. The snapshot writes the same (snapshot-rows.ts `jsonText`).
 */
export function writeJsonText(w: JsonBytes, buf: Buffer, s: number, e: number): void {
  const r = embeddableJsonBytes(buf, s, e);
  if (r === 0) w.raw(buf, s, e);
  else if (r === 1) w.compactJson(buf, s, e);
  else w.string(buf, s, e);
}

function bigToJson(b: bigint): number | string {
  return b <= 9007199254740991n ? Number(b) : b.toString();
}
