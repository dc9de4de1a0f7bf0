import type { JsonValue } from '../../src/core/event.js';
import type { JsonBytes } from '../../src/core/json-bytes.js';

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

/** `2024-01-15 10:30:00.123456` → `2024-01-15T10:30:00.123456` (no zone: no Z). */
const timestamp: ValueDecoder = (b, s, e) => {
  const t = b.toString('latin1', s, e);
  return t.length >= 19 && t.charCodeAt(10) === 32 ? `${t.slice(0, 10)}T${t.slice(11)}` : t;
};

/**
 * `2024-01-15 10:30:00.123456+00` → `2024-01-15T10:30:00.123456Z`. The session runs in UTC,
 * so the offset is always +00; anything else (BC dates, infinity) is kept as printed.
 */
const timestamptz: ValueDecoder = (b, s, e) => {
  const t = b.toString('latin1', s, e);
  if (t.length >= 22 && t.charCodeAt(10) === 32 && t.endsWith('+00')) return `${t.slice(0, 10)}T${t.slice(11, -3)}Z`;
  return t;
};

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
  [OID.timestamp, timestamp],
  [OID.timestamptz, timestamptz],
]);

/**
 * Parse an array literal (`{1,2,NULL}`, `{"a b","c\"d"}`, `{{1,2},{3,4}}`) into nested
 * arrays, decoding each element with `elem`.
 */
export function parseArrayLiteral(text: string, elem: ValueDecoder, delim = ','): JsonValue {
  let i = 0;
  // Arrays with explicit bounds print as `[1:2]={...}`.
  if (text[0] === '[') i = text.indexOf('=') + 1;
  const d = delim.charCodeAt(0);
  function parse(): JsonValue[] {
    const out: JsonValue[] = [];
    i++; // '{'
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 123 /* { */) out.push(parse());
      else if (c === 34 /* " */) {
        let v = '';
        i++;
        for (;;) {
          const ch = text[i++];
          if (ch === '\\') v += text[i++];
          else if (ch === '"' || ch === undefined) break;
          else v += ch;
        }
        const bytes = Buffer.from(v, 'utf8');
        out.push(elem(bytes, 0, bytes.length));
      } else {
        let j = i;
        while (j < text.length && text.charCodeAt(j) !== d && text[j] !== '}') j++;
        const raw = text.slice(i, j);
        i = j;
        if (raw === 'NULL') out.push(null);
        else {
          const bytes = Buffer.from(raw, 'utf8');
          out.push(elem(bytes, 0, bytes.length));
        }
      }
      const sep = text.charCodeAt(i++);
      if (sep !== d) break; // '}'
    }
    return out;
  }
  return parse();
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
  return Number.isFinite(n) ? JSON.stringify(n) : `"${t}"`;
};
const jBool: JsonEncoder = (b, s) => (b[s] === 116 ? 'true' : 'false');
/** json/jsonb: Postgres prints valid JSON; it is copied, not parsed and printed again. */
const jJson: JsonEncoder = (b, s, e) => b.toString('utf8', s, e);

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
  [OID.jsonb, jJson],
  [OID.bytea, viaDecoder(bytea)],
  [OID.timestamp, viaDecoder(timestamp)],
  [OID.timestamptz, viaDecoder(timestamptz)],
  [OID.date, jQuoted],
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
  if (info.category === 'A' && info.elem) return viaDecoder(decoderFor(oid, types));
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

/** `2024-01-15 10:30:00.123456[+00]` → `"2024-01-15T10:30:00.123456[Z]"`, as the decoders above. */
function bTime(zone: boolean): JsonByteEncoder {
  const slow = viaDecoder(zone ? timestamptz : timestamp);
  return (w, b, s, e) => {
    const ok = zone ? e - s >= 22 && b[s + 10] === 32 && b[e - 3] === 43 && b[e - 2] === 48 && b[e - 1] === 48 : e - s >= 19 && b[s + 10] === 32;
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
  [OID.json, bRaw],
  [OID.jsonb, bRaw],
  [OID.timestamp, bTime(false)],
  [OID.timestamptz, bTime(true)],
  [OID.date, bQuoted],
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
