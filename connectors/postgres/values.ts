import type { JsonValue } from '../../src/core/event.js';
import { hasLineBreak, oneLineJson, type JsonBytes } from '../../src/core/json-bytes.js';

/**
 * Text-format value decoders: one per Postgres type, turning the bytes pgoutput sends into
 * the lossless JSON form of DESIGN.md. They read straight from the message buffer, without
 * the `pg-types` parsers (which turn numeric into floats and allocate Date objects).
 *
 * The replication session runs with `DateStyle=ISO`, `IntervalStyle=iso_8601`,
 * `TimeZone=UTC` and `extra_float_digits=3`, so the text forms are fixed and exact.
 */
export type ValueDecoder = (buf: Buffer, start: number, end: number) => JsonValue;

/** What the decoders need to know about a type, from pg_type. */
export interface PgTypeInfo {
  oid: number;
  name: string;
  /** typtype: b base, e enum, d domain, c composite, r range, m multirange. */
  type: string;
  /** typcategory: A array, N numeric, … */
  category: string;
  /** Element type of an array, 0 otherwise. */
  elem: number;
  /** Base type of a domain, 0 otherwise. */
  base: number;
  /** Array element delimiter (`,` for everything but box). */
  delim: string;
}

export const OID = {
  bool: 16, bytea: 17, char: 18, name: 19, int8: 20, int2: 21, int4: 23, text: 25, oid: 26, xid: 28,
  json: 114, xml: 142, float4: 700, float8: 701, money: 790, macaddr: 829, inet: 869, cidr: 650,
  bpchar: 1042, varchar: 1043, date: 1082, time: 1083, timestamp: 1114, timestamptz: 1184,
  interval: 1186, timetz: 1266, bit: 1560, varbit: 1562, numeric: 1700, uuid: 2950, jsonb: 3802,
} as const;

const str: ValueDecoder = (b, s, e) => b.toString('utf8', s, e);

/** Parse a decimal integer from ASCII bytes without allocating a string. */
const int: ValueDecoder = (b, s, e) => {
  let i = s;
  let neg = false;
  if (b[i] === 45) {
    neg = true;
    i++;
  }
  let n = 0;
  for (; i < e; i++) n = n * 10 + (b[i]! - 48);
  return neg ? -n : n;
};

/** int8: a number while it is exact, a decimal string beyond ±(2^53−1). */
const int8: ValueDecoder = (b, s, e) => {
  // 15 digits (plus sign) always fit in 2^53; longer ones are checked.
  if (e - s <= 15) return int(b, s, e);
  const t = b.toString('latin1', s, e);
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : t;
};

const float: ValueDecoder = (b, s, e) => {
  const t = b.toString('latin1', s, e);
  const n = Number(t);
  // NaN and ±Infinity have no JSON number: keep Postgres' spelling.
  return Number.isFinite(n) ? n : t;
};

const bool: ValueDecoder = (b, s) => b[s] === 116; // 't'

const json: ValueDecoder = (b, s, e) => JSON.parse(b.toString('utf8', s, e)) as JsonValue;

/** bytea in hex output (`\x0a0b`) → base64. */
const bytea: ValueDecoder = (b, s, e) => {
  if (b[s] === 92 && b[s + 1] === 120) return Buffer.from(b.toString('latin1', s + 2, e), 'hex').toString('base64');
  // Escape format (bytea_output=escape) is not expected; decode it properly anyway.
  return Buffer.from(unescapeBytea(b.toString('latin1', s, e)), 'latin1').toString('base64');
};

function unescapeBytea(t: string): string {
  return t.replace(/\\(\\|[0-7]{3})/g, (_m, g: string) => (g === '\\' ? '\\' : String.fromCharCode(parseInt(g, 8))));
}

/**
 * A year as ISO 8601 writes it and JavaScript's Date prints it: four digits from 0 to 9999,
 * else a sign and at least six digits (`+012345`, `-004712`; Postgres dates reach year
 * 5874897, which takes seven).
 */
function isoYear(y: number): string {
  if (y >= 0 && y <= 9999) return String(y).padStart(4, '0');
  return (y < 0 ? '-' : '+') + String(Math.abs(y)).padStart(6, '0');
}

/**
 * Postgres' ISO text of a date or timestamp (`Y-MM-DD[ HH:MM:SS[.f][+00]][ BC]`, the year
 * of four or more digits) in the documented shape: the date's year as {@link isoYear}, a
 * BC year in astronomical numbering (1 BC is year 0, 4713 BC is -4712, as JavaScript
 * counts), `T` between date and time, and with `zone` the `+00` offset (the session runs in
 * UTC) as `Z`. `infinity` and `-infinity` stay as they are.
 */
function isoDateTime(t: string, zone: boolean): string {
  const bc = t.endsWith(' BC');
  if (bc) t = t.slice(0, -3);
  const dash = t.indexOf('-', 1);
  if (dash < 4) return t; // infinity, -infinity
  let year = Number(t.slice(0, dash));
  if (bc) year = 1 - year;
  let rest = t.slice(dash);
  if (rest.length > 6) {
    // A time follows the date (`-MM-DD HH:…`).
    if (zone) {
      if (!rest.endsWith('+00')) return t; // not a UTC session: keep the text
      rest = rest.slice(0, -3) + 'Z';
    }
    rest = rest.slice(0, 6) + 'T' + rest.slice(7);
  }
  return isoYear(year) + rest;
}

/** `2024-01-15` → as is; `12345-06-07` → `+012345-06-07`; `4713-01-01 BC` → `-004712-01-01`. */
const date: ValueDecoder = (b, s, e) => (e - s === 10 ? b.toString('latin1', s, e) : isoDateTime(b.toString('latin1', s, e), false));

/** `2024-01-15 10:30:00.123456` → `2024-01-15T10:30:00.123456` (no zone: no Z); see {@link isoDateTime}. */
const timestamp: ValueDecoder = (b, s, e) => isoDateTime(b.toString('latin1', s, e), false);

/** `2024-01-15 10:30:00.123456+00` → `2024-01-15T10:30:00.123456Z`; see {@link isoDateTime}. */
const timestamptz: ValueDecoder = (b, s, e) => isoDateTime(b.toString('latin1', s, e), true);

const builtin = new Map<number, ValueDecoder>([
  [OID.bool, bool],
  [OID.int2, int],
  [OID.int4, int],
  [OID.oid, int],
  [OID.xid, int],
  [OID.int8, int8],
  [OID.float4, float],
  [OID.float8, float],
  [OID.numeric, str],
  [OID.json, json],
  [OID.jsonb, json],
  [OID.bytea, bytea],
  [OID.date, date],
  [OID.timestamp, timestamp],
  [OID.timestamptz, timestamptz],
]);

/**
 * Walks an array literal (`{1,2,NULL}`, `{"a b","c\"d"}`, `{{1,2},{3,4}}`), calling
 * `open`/`close` around each (sub)array and `item` with each element's text (quotes and
 * backslashes undone; null for NULL). Explicit bounds (`[0:1]={7,8}`) are dropped: a JSON
 * array starts at 0 whatever the Postgres lower bound.
 */
function walkArrayLiteral(text: string, delim: string, open: () => void, close: () => void, item: (raw: string | null) => void): void {
  let i = 0;
  if (text[0] === '[') i = text.indexOf('=') + 1;
  const d = delim.charCodeAt(0);
  function walk(): void {
    open();
    i++; // '{'
    if (text[i] === '}') {
      i++;
      close();
      return;
    }
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 123 /* { */) walk();
      else if (c === 34 /* " */) {
        let v = '';
        i++;
        for (;;) {
          const ch = text[i++];
          if (ch === '\\') v += text[i++];
          else if (ch === '"' || ch === undefined) break;
          else v += ch;
        }
        item(v);
      } else {
        let j = i;
        while (j < text.length && text.charCodeAt(j) !== d && text[j] !== '}') j++;
        const raw = text.slice(i, j);
        i = j;
        item(raw === 'NULL' ? null : raw);
      }
      const sep = text.charCodeAt(i++);
      if (sep !== d) break; // '}'
    }
    close();
  }
  walk();
}

/**
 * Parse an array literal into nested arrays, decoding each element with `elem` (see
 * {@link walkArrayLiteral}).
 */
export function parseArrayLiteral(text: string, elem: ValueDecoder, delim = ','): JsonValue {
  const stack: JsonValue[][] = [];
  let top: JsonValue[] = [];
  let result: JsonValue[] = top;
  walkArrayLiteral(
    text,
    delim,
    () => {
      const a: JsonValue[] = [];
      if (stack.length) top.push(a);
      else result = a;
      stack.push(a);
      top = a;
    },
    () => {
      stack.pop();
      top = stack[stack.length - 1]!;
    },
    (raw) => {
      if (raw === null) top.push(null);
      else {
        const bytes = Buffer.from(raw, 'utf8');
        top.push(elem(bytes, 0, bytes.length));
      }
    },
  );
  return result;
}

/**
 * An array literal as JSON text, each element written by its type's JSON encoder: the
 * elements are never parsed into values, so `jsonb[]` and `json[]` elements keep their
 * numbers exact, as a plain jsonb column does.
 */
export function arrayLiteralJson(text: string, elem: JsonEncoder, delim = ','): string {
  let out = '';
  let first = true;
  walkArrayLiteral(
    text,
    delim,
    () => {
      out += first ? '[' : ',[';
      first = true;
    },
    () => {
      out += ']';
      first = false;
    },
    (raw) => {
      if (!first) out += ',';
      first = false;
      if (raw === null) out += 'null';
      else {
        const bytes = Buffer.from(raw, 'utf8');
        out += elem(bytes, 0, bytes.length);
      }
    },
  );
  return out;
}

/**
 * The decoder for a column type. Built once per Relation message, per column, and reused for
 * every row. Unknown and user types decode to text unless they are arrays, enums (their
 * label is the text) or domains (decoded as their base type).
 */
export function decoderFor(oid: number, types: ReadonlyMap<number, PgTypeInfo>, depth = 0): ValueDecoder {
  const b = builtin.get(oid);
  if (b) return b;
  const info = types.get(oid);
  if (!info || depth > 8) return str;
  if (info.type === 'd' && info.base) return decoderFor(info.base, types, depth + 1);
  if (info.category === 'A' && info.elem) {
    const elem = decoderFor(info.elem, types, depth + 1);
    const delim = types.get(info.elem)?.delim ?? ',';
    return (buf, s, e) => parseArrayLiteral(buf.toString('utf8', s, e), elem, delim);
  }
  return str;
}

/**
 * JSON-text encoders: the same mapping as the decoders above, but writing the value's JSON
 * text straight from the wire bytes, for envelopes serialized without building objects.
 * `JSON.parse` of what they return equals what the matching decoder returns.
 */
export type JsonEncoder = (buf: Buffer, start: number, end: number) => string;

const jStr: JsonEncoder = (b, s, e) => JSON.stringify(b.toString('utf8', s, e));
/** Text that needs no escaping (digits, dates, base64): quote it as is. */
const jQuoted: JsonEncoder = (b, s, e) => `"${b.toString('latin1', s, e)}"`;
const jInt: JsonEncoder = (b, s, e) => b.toString('latin1', s, e);
const jInt8: JsonEncoder = (b, s, e) => {
  const t = b.toString('latin1', s, e);
  return e - s <= 15 || Number.isSafeInteger(Number(t)) ? t : `"${t}"`;
};
const jFloat: JsonEncoder = (b, s, e) => {
  const t = b.toString('latin1', s, e);
  const n = Number(t);
  // A zero is printed `0` or `-0`: the text keeps the sign JSON.stringify would drop.
  return n === 0 ? t : Number.isFinite(n) ? JSON.stringify(n) : `"${t}"`;
};
const jBool: JsonEncoder = (b, s) => (b[s] === 116 ? 'true' : 'false');
/**
 * jsonb: Postgres prints it normalized, valid and on one line (a newline inside a string is
 * escaped), so it is copied, not parsed and printed again: numbers keep every digit.
 */
const jJsonb: JsonEncoder = (b, s, e) => b.toString('utf8', s, e);
/** json: the text as written, which may span lines: copied, and compacted when it does. */
const jJson: JsonEncoder = (b, s, e) => (hasLineBreak(b, s, e) ? oneLineJson(b.toString('utf8', s, e)) : b.toString('utf8', s, e));

function viaDecoder(d: ValueDecoder): JsonEncoder {
  return (b, s, e) => JSON.stringify(d(b, s, e));
}

const builtinJson = new Map<number, JsonEncoder>([
  [OID.bool, jBool],
  [OID.int2, jInt],
  [OID.int4, jInt],
  [OID.oid, jInt],
  [OID.xid, jInt],
  [OID.int8, jInt8],
  [OID.float4, jFloat],
  [OID.float8, jFloat],
  [OID.numeric, jQuoted],
  [OID.json, jJson],
  [OID.jsonb, jJsonb],
  [OID.bytea, viaDecoder(bytea)],
  [OID.timestamp, viaDecoder(timestamp)],
  [OID.timestamptz, viaDecoder(timestamptz)],
  [OID.date, viaDecoder(date)],
  [OID.uuid, jQuoted],
]);

/** The JSON-text encoder for a column type (see `decoderFor`). */
export function jsonEncoderFor(oid: number, types: ReadonlyMap<number, PgTypeInfo>, depth = 0): JsonEncoder {
  const b = builtinJson.get(oid);
  if (b) return b;
  if (builtin.has(oid)) return viaDecoder(builtin.get(oid)!);
  const info = types.get(oid);
  if (!info || depth > 8) return jStr;
  if (info.type === 'd' && info.base) return jsonEncoderFor(info.base, types, depth + 1);
  if (info.category === 'A' && info.elem) {
    const elem = jsonEncoderFor(info.elem, types, depth + 1);
    const delim = types.get(info.elem)?.delim ?? ',';
    return (b, s, e) => arrayLiteralJson(b.toString('utf8', s, e), elem, delim);
  }
  return jStr;
}

/**
 * Byte encoders: the same JSON texts as the {@link JsonEncoder}s, written into a
 * {@link JsonBytes} scratch buffer instead of returned as strings (see json-bytes.ts).
 * Types without a byte encoder of their own write their JsonEncoder's string.
 */
export type JsonByteEncoder = (w: JsonBytes, buf: Buffer, start: number, end: number) => void;

const bRaw: JsonByteEncoder = (w, b, s, e) => w.raw(b, s, e);
const bQuoted: JsonByteEncoder = (w, b, s, e) => w.quoted(b, s, e);
const bStr: JsonByteEncoder = (w, b, s, e) => w.string(b, s, e);
const bInt8: JsonByteEncoder = (w, b, s, e) => (e - s <= 15 ? w.raw(b, s, e) : w.ascii(jInt8(b, s, e)));
const bBool: JsonByteEncoder = (w, b, s) => w.ascii(b[s] === 116 ? 'true' : 'false');
const bJson: JsonByteEncoder = (w, b, s, e) => w.json(b, s, e);
/** A four-digit AD year (`YYYY-MM-DD`, the usual) is quoted as it is; other dates are rewritten. */
const slowDate = viaDecoder(date);
const bDate: JsonByteEncoder = (w, b, s, e) => (e - s === 10 ? w.quoted(b, s, e) : w.text(slowDate(b, s, e)));

/**
 * `2024-01-15 10:30:00.123456[+00]` → `"2024-01-15T10:30:00.123456[Z]"`, rewritten in place
 * for a four-digit AD year (the usual); other years, BC and infinity take the decoder's path.
 */
function bTime(zone: boolean): JsonByteEncoder {
  const slow = viaDecoder(zone ? timestamptz : timestamp);
  return (w, b, s, e) => {
    // A four-digit year has its date's last dash at 7 and the space at 10; BC ends in `C`.
    const ok = b[s + 7] === 45 && b[s + 10] === 32 && (zone ? e - s >= 22 && b[e - 3] === 43 && b[e - 2] === 48 && b[e - 1] === 48 : e - s >= 19 && b[e - 1] !== 67);
    if (!ok) {
      w.text(slow(b, s, e));
      return;
    }
    const tail = zone ? e - 3 : e;
    w.ensure(tail - s + 3);
    const o = w.buf;
    let n = w.n;
    o[n++] = 34;
    for (let i = s; i < tail; i++) o[n++] = b[i]!;
    o[w.n + 11] = 84; // the space between date and time becomes T
    if (zone) o[n++] = 90; // Z
    o[n++] = 34;
    w.n = n;
  };
}

const builtinBytes = new Map<number, JsonByteEncoder>([
  [OID.bool, bBool],
  [OID.int2, bRaw],
  [OID.int4, bRaw],
  [OID.oid, bRaw],
  [OID.xid, bRaw],
  [OID.int8, bInt8],
  [OID.numeric, bQuoted],
  [OID.json, bJson],
  [OID.jsonb, bRaw],
  [OID.timestamp, bTime(false)],
  [OID.timestamptz, bTime(true)],
  [OID.date, bDate],
  [OID.uuid, bQuoted],
  [OID.text, bStr],
  [OID.varchar, bStr],
  [OID.bpchar, bStr],
  [OID.name, bStr],
]);

/** The byte encoder for a column type: the same JSON text as `jsonEncoderFor` gives. */
export function jsonByteEncoderFor(oid: number, types: ReadonlyMap<number, PgTypeInfo>): JsonByteEncoder {
  const b = builtinBytes.get(oid);
  if (b) return b;
  const info = types.get(oid);
  if (info?.type === 'd' && info.base && builtinBytes.has(info.base)) return builtinBytes.get(info.base)!;
  const enc = jsonEncoderFor(oid, types);
  // Strings (text-like unknown types, enums): escaped from the bytes, as jStr would.
  if (enc === jStr) return bStr;
  return (w, buf, s, e) => w.text(enc(buf, s, e));
}
