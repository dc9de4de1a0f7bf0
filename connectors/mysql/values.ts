/**
 * The JSON form of MySQL/MariaDB values: the output rules in one module, called by both
 * readers of values.
 *
 * - the binlog's binary row images (row-decoder.ts, with temporal.ts and decimal.ts for the
 *   binary layouts of dates and DECIMAL);
 * - the snapshot's text protocol, as mysql2 row objects (snapshot-values.ts) and as bytes
 *   written straight into JSON (snapshot-rows.ts).
 *
 * The snapshot-to-stream hand-over depends on a snapshot row and a streamed row giving
 * byte-identical keys and values, so every rule that both readers apply lives here, and
 * `test/unit/mysql-value-codec.test.ts` checks for random values of every type that both
 * give the same JSON text.
 *
 * The rules (DESIGN.md "Change event", docs/mysql.md "Values"):
 * - integers: JSON numbers (ZEROFILL's leading zeros dropped); BIGINT (signed or unsigned)
 *   beyond ±(2^53−1) → decimal string;
 * - FLOAT: the shortest decimal that round-trips the stored float32 (1.1, not
 *   1.100000023841858); DOUBLE: JavaScript's shortest form; a float's -0 keeps its sign;
 * - DECIMAL: exact string with the scale's digits (`"12.30"`);
 * - DATE `YYYY-MM-DD`, DATETIME `YYYY-MM-DDTHH:MM:SS[.ffffff]`, TIMESTAMP the same in UTC with
 *   `Z`, TIME `[-]HH:MM:SS[.ffffff]` (hours may exceed 24); zero dates → null;
 * - YEAR: number (0 for the zero year);
 * - character columns: decoded with the column's charset (latin1 is Windows-1252, with the
 *   five bytes it leaves undefined kept as themselves); binary strings → base64;
 * - ENUM: label; SET: labels joined by `,`;
 * - BIT(n): unsigned number (most significant byte first); decimal string above 2^53−1;
 * - JSON: MySQL's as the document, with integers beyond ±(2^53−1) as decimal strings;
 *   MariaDB's (LONGTEXT) copied as its text when it is valid JSON, else a string;
 * - GEOMETRY: `{"srid": n, "wkb": "<base64>"}`; VECTOR: array of float32 numbers.
 */
import { isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import type { JsonValue } from '../../src/core/event.js';
import type { JsonBytes } from '../../src/core/json-bytes.js';
import { TextKind } from './column-types.js';
import { embeddableJsonBytes } from './json-text.js';

export const MAX_SAFE = 9007199254740991;

const ZERO = 48;

// ---------------------------------------------------------------------------------------
// Numbers.
// ---------------------------------------------------------------------------------------

/** An unsigned integer as JSON: a number while it is safe, else its decimal string. */
export function uintToJson(v: bigint): number | string {
  return v <= 9007199254740991n ? Number(v) : v.toString();
}

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
 * A FLOAT column's value from a number that holds its float32 exactly (the snapshot selects
 * FLOAT as `col+0E0`: the server prints a FLOAT with only 6 digits, a double with all).
 */
export function float32FromDouble(v: number): number {
  return float32ToNumber(Math.fround(v));
}

/** YEAR from its binlog byte (0 is the zero year, else 1900 + the byte). */
export function yearToJson(b: number): number {
  return b === 0 ? 0 : 1900 + b;
}

/** BIT(n) from its big-endian bytes `buf[s, e)`: a number up to 6 bytes, else through BigInt. */
export function bitToJson(buf: Buffer, s: number, e: number): number | string {
  const n = e - s;
  if (n <= 6) return n ? buf.readUIntBE(s, n) : 0;
  let v = 0n;
  for (let i = s; i < e; i++) v = (v << 8n) | BigInt(buf[i]!);
  return uintToJson(v);
}

const PLUS = 43;
const MINUS = 45;

/** A number as JSON.stringify writes it (null when not finite). */
function writeNumber(w: JsonBytes, v: number): void {
  w.ascii(Number.isFinite(v) ? String(v) : 'null');
}

/** A FLOAT or DOUBLE as JSON: as JSON.stringify writes it, but -0 keeps its sign, as the stream's. */
export function writeDouble(w: JsonBytes, v: number): void {
  if (Number.isFinite(v)) w.float(v);
  else w.ascii('null');
}

/**
 * An integer from its text `buf[s, e)` (TINYINT…INT, YEAR): its own JSON text unless it has
 * leading zeros (ZEROFILL, YEAR `0000`) or a `+`, which are parsed away.
 */
export function writeIntText(w: JsonBytes, buf: Buffer, s: number, e: number): void {
  const d = buf[s] === MINUS ? s + 1 : s;
  if (e - d > 1 ? buf[d]! > ZERO : e - d === 1) {
    w.raw(buf, s, e);
    return;
  }
  let v = 0;
  for (let i = buf[d] === PLUS ? d + 1 : d; i < e; i++) v = v * 10 + buf[i]! - ZERO;
  writeNumber(w, d > s ? -v : v);
}

/**
 * BIGINT (signed or unsigned) from its text: a number while it is a safe integer, else its
 * text as a string (`-` and digits, as the server sent them).
 */
export function writeBigintText(w: JsonBytes, buf: Buffer, s: number, e: number): void {
  const d = buf[s] === MINUS ? s + 1 : s;
  if (e - d < 15) {
    writeIntText(w, buf, s, e);
    return;
  }
  const v = parseInt(buf.toString('latin1', d, e), 10);
  if (Number.isSafeInteger(d > s ? -v : v)) writeNumber(w, d > s ? -v : v);
  else w.quoted(buf, s, e);
}

// ---------------------------------------------------------------------------------------
// Text.
// ---------------------------------------------------------------------------------------

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
 * True for column names that an object would not keep in insertion order or at all:
 * integer-like keys (`"7"`, enumerated first by JSON.stringify) and `__proto__` (sets the
 * prototype). Rows of tables with such column names are only built as objects, so the byte
 * writers never have to reproduce those quirks.
 */
export function objectOnlyName(name: string): boolean {
  return name === '__proto__' || (/^(?:0|[1-9]\d*)$/.test(name) && Number(name) < 4294967295);
}

/** Anything with TextDecoder's `decode`. */
export interface BytesDecoder {
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

/** The decoder {@link decodeText} needs for a text kind (null for the kinds Buffer decodes itself). */
export function textDecoderFor(tk: { kind: TextKind; label?: string }): BytesDecoder | null {
  let label: string;
  if (tk.kind === TextKind.Latin1) return mysqlLatin1;
  else if (tk.kind === TextKind.Utf16BE) label = 'utf-16be';
  else if (tk.kind === TextKind.Other) label = tk.label!;
  else return null;
  let d = otherDecoders.get(label);
  if (!d) otherDecoders.set(label, (d = new TextDecoder(label)));
  return d;
}

/**
 * Character data `buf[s, e)` in a column's charset as a string (base64 for binary strings,
 * and for bytes of an unknown charset that are not valid UTF-8). `dec` is
 * {@link textDecoderFor}'s decoder of `kind`.
 */
export function decodeText(buf: Buffer, s: number, e: number, kind: TextKind, dec: BytesDecoder | null): string {
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

// ---------------------------------------------------------------------------------------
// Spatial and vector values.
// ---------------------------------------------------------------------------------------

/**
 * GEOMETRY from its stored bytes `buf[s, e)` (a u32 LE SRID, then WKB): `{srid, wkb}`, the two
 * fields of Debezium's Geometry struct. Fewer than 4 bytes is no geometry: base64.
 */
export function geometryToJson(buf: Buffer, s: number, e: number): JsonValue {
  return e - s >= 4 ? { srid: buf.readUInt32LE(s), wkb: buf.toString('base64', s + 4, e) } : buf.toString('base64', s, e);
}

/** VECTOR from its stored bytes: float32 LE values, each in its shortest form. */
export function vectorToJson(buf: Buffer, s: number, e: number): number[] {
  const arr: number[] = new Array((e - s) >> 2);
  for (let q = 0; q < arr.length; q++) arr[q] = float32ToNumber(buf.readFloatLE(s + q * 4));
  return arr;
}

// ---------------------------------------------------------------------------------------
// JSON documents.
// ---------------------------------------------------------------------------------------

/** A JSON text column's value as an object (MariaDB JSON): the parsed document, or the text when invalid. */
export function parseJsonText(text: string): JsonValue {
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
 * {@link parseJsonText} has it.
 */
export function writeJsonText(w: JsonBytes, buf: Buffer, s: number, e: number): void {
  const r = embeddableJsonBytes(buf, s, e);
  if (r === 0) w.raw(buf, s, e);
  else if (r === 1) w.compactJson(buf, s, e);
  else w.string(buf, s, e);
}

/**
 * MySQL JSON from its text (the snapshot reads it as text; the binlog has it binary,
 * json-binary.ts): int64 values beyond ±(2^53−1) kept as decimal strings, as the binary
 * decoder has them. Throws a SyntaxError on text that is not JSON.
 */
export function parseJsonLossless(s: string): JsonValue {
  let i = 0;
  const NUM = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
  const ws = () => {
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else return;
    }
  };
  const str = (): string => {
    const start = i;
    i++;
    for (;;) {
      const c = s.charCodeAt(i);
      if (Number.isNaN(c)) throw new SyntaxError('unterminated string');
      if (c === 92) i += 2;
      else if (c === 34) break;
      else i++;
    }
    i++;
    return JSON.parse(s.slice(start, i)) as string;
  };
  const value = (): JsonValue => {
    ws();
    const c = s[i];
    if (c === '{') {
      i++;
      const o: { [k: string]: JsonValue } = {};
      ws();
      if (s[i] === '}') {
        i++;
        return o;
      }
      for (;;) {
        ws();
        if (s[i] !== '"') throw new SyntaxError(`expected a key at ${i}`);
        const k = str();
        ws();
        if (s[i++] !== ':') throw new SyntaxError(`expected : at ${i - 1}`);
        o[k] = value();
        ws();
        const d = s[i++];
        if (d === '}') return o;
        if (d !== ',') throw new SyntaxError(`expected , or } at ${i - 1}`);
      }
    }
    if (c === '[') {
      i++;
      const a: JsonValue[] = [];
      ws();
      if (s[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        const d = s[i++];
        if (d === ']') return a;
        if (d !== ',') throw new SyntaxError(`expected , or ] at ${i - 1}`);
      }
    }
    if (c === '"') return str();
    if (s.startsWith('true', i)) return (i += 4), true;
    if (s.startsWith('false', i)) return (i += 5), false;
    if (s.startsWith('null', i)) return (i += 4), null;
    NUM.lastIndex = i;
    const m = NUM.exec(s);
    if (!m) throw new SyntaxError(`unexpected ${c} at ${i}`);
    i = NUM.lastIndex;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return BigInt(m[0]).toString();
    return n;
  };
  const v = value();
  ws();
  if (i !== s.length) throw new SyntaxError(`unexpected text at ${i}`);
  return v;
}

// ---------------------------------------------------------------------------------------
// Temporal values from their text form (the binary forms: temporal.ts).
// ---------------------------------------------------------------------------------------

const ZERO_DATETIME = /^0000-00-00 00:00:00(\.0+)?$/;

/** DATE text: as it is, the zero date `0000-00-00` → null. */
export function dateFromText(s: string): string | null {
  return s === '0000-00-00' ? null : s;
}

/**
 * DATETIME (or, with `utc`, TIMESTAMP in a UTC session) text: the space becomes `T` (and `Z`
 * is added for TIMESTAMP); the zero date, with any zero fraction, → null.
 */
export function datetimeFromText(s: string, utc: boolean): string | null {
  return ZERO_DATETIME.test(s) ? null : utc ? s.replace(' ', 'T') + 'Z' : s.replace(' ', 'T');
}

const SP = 32;
const QUOTE = 34;
const NULL = Buffer.from('null');
const ZERO_DATE = Buffer.from('0000-00-00 00:00:00', 'latin1');

function isZeroDate(buf: Buffer, s: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (buf[s + i] !== ZERO_DATE[i]) return false;
  return true;
}

/** {@link dateFromText} of the bytes `buf[s, e)`, written as JSON into `w`. */
export function writeDateText(w: JsonBytes, buf: Buffer, s: number, e: number): void {
  if (e - s === 10 && isZeroDate(buf, s, 10)) w.raw(NULL, 0, 4);
  else w.string(buf, s, e);
}

/** {@link datetimeFromText} of the bytes `buf[s, e)`, written as JSON into `w`. */
export function writeDatetimeText(w: JsonBytes, buf: Buffer, s: number, e: number, utc: boolean): void {
  const n = e - s;
  if (n >= 19 && isZeroDate(buf, s, 19)) {
    let zero = n === 19;
    if (n > 20 && buf[s + 19] === 46) {
      zero = true;
      for (let i = s + 20; i < e; i++) if (buf[i] !== ZERO) zero = false;
    }
    if (zero) {
      w.raw(NULL, 0, 4);
      return;
    }
  }
  w.ensure(n + 3);
  const b = w.buf;
  let o = w.n;
  b[o++] = QUOTE;
  let first = true;
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    if (c === SP && first) {
      b[o++] = 84; // T
      first = false;
    } else b[o++] = c;
  }
  if (utc) b[o++] = 90; // Z
  b[o++] = QUOTE;
  w.n = o;
}
