/**
 * The snapshot's values from the text protocol: per result column, the converter that turns
 * mysql2's value (with the snapshot connection's options) into the value the binlog decoder
 * gives for the same column (row-decoder.ts, temporal.ts), and the row objects' JSON text.
 * snapshot-rows.ts writes the same values straight from the protocol bytes.
 */
import { TextDecoder } from 'node:util';
import type { JsonValue } from '../../src/core/event.js';
import { TextKind, textKindFor } from './column-types.js';
import { float32ToNumber } from './row-decoder.js';
import type { ColumnInfo } from './snapshot-columns.js';
import type { RawField } from './snapshot-sql.js';

/** mysql2 / protocol column types. */
export const enum F {
  DECIMAL = 0, TINY = 1, SHORT = 2, LONG = 3, FLOAT = 4, DOUBLE = 5, NULL = 6, TIMESTAMP = 7, LONGLONG = 8, INT24 = 9,
  DATE = 10, TIME = 11, DATETIME = 12, YEAR = 13, NEWDATE = 14, VARCHAR = 15, BIT = 16, VECTOR = 242, JSON = 245,
  NEWDECIMAL = 246, ENUM = 247, SET = 248, TINY_BLOB = 249, MEDIUM_BLOB = 250, LONG_BLOB = 251, BLOB = 252,
  VAR_STRING = 253, STRING = 254, GEOMETRY = 255,
}

export type Conv = (b: Buffer) => JsonValue;

let latin1: TextDecoder | null = null;
const decoders = new Map<string, TextDecoder>();
function textDecoder(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) decoders.set(label, (d = new TextDecoder(label)));
  return d;
}

/** Character data in the column's own charset, exactly as row-decoder.ts decodes it. */
function textConv(collation: number): Conv {
  const tk = textKindFor(collation);
  switch (tk.kind) {
    case TextKind.Utf8:
    case TextKind.Unknown:
      return (b) => b.toString('utf8');
    case TextKind.Binary:
      return (b) => b.toString('base64');
    case TextKind.Utf16LE:
      return (b) => b.toString('utf16le');
    case TextKind.Utf32BE:
      return (b) => {
        let out = '';
        for (let p = 0; p + 4 <= b.length; p += 4) out += String.fromCodePoint(b.readUInt32BE(p));
        return out;
      };
    case TextKind.Latin1: {
      // MySQL's latin1 is really Windows-1252.
      const d = (latin1 ??= new TextDecoder('windows-1252'));
      return (b) => d.decode(b);
    }
    case TextKind.Utf16BE: {
      const d = textDecoder('utf-16be');
      return (b) => d.decode(b);
    }
    default: {
      const d = textDecoder(tk.label!);
      return (b) => d.decode(b);
    }
  }
}

const MAX_SAFE = 9007199254740991;

function bigToJson(v: bigint): number | string {
  return v <= BigInt(MAX_SAFE) ? Number(v) : v.toString();
}

const ZERO_DATETIME = /^0000-00-00 00:00:00(\.0+)?$/;

/**
 * JSON text with int64 values beyond ±(2^53−1) kept as decimal strings, as the binary JSON
 * decoder does (MySQL's JSON type; MariaDB JSON is text on both sides and uses JSON.parse).
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

/**
 * The converter of one result column, or null when mysql2's own value already is the
 * decoder's (integers within ±(2^53−1) or int64 strings beyond, DECIMAL strings, TIME, YEAR,
 * utf8mb4 text, DOUBLE).
 */
export function converterFor(f: RawField, info: ColumnInfo | undefined): Conv | null {
  switch (info?.via) {
    case 'float':
      return (v) => float32ToNumber(Math.fround(v as unknown as number));
    case 'bytes-text':
      return textConv(info.collation ?? 45);
    case 'bytes-geometry':
      return (b) => (b.length >= 4 ? { srid: b.readUInt32LE(0), wkb: b.toString('base64', 4) } : b.toString('base64'));
    case 'bytes-vector':
      return (b) => {
        const arr: number[] = new Array(b.length >> 2);
        for (let q = 0; q < arr.length; q++) arr[q] = float32ToNumber(b.readFloatLE(q * 4));
        return arr;
      };
    default:
  }
  switch (f.columnType) {
    case F.DATE: case F.NEWDATE:
      return (v) => ((v as unknown as string) === '0000-00-00' ? null : (v as unknown as string));
    case F.DATETIME:
      return (v) => {
        const s = v as unknown as string;
        return ZERO_DATETIME.test(s) ? null : s.replace(' ', 'T');
      };
    case F.TIMESTAMP:
      return (v) => {
        const s = v as unknown as string;
        return ZERO_DATETIME.test(s) ? null : s.replace(' ', 'T') + 'Z';
      };
    case F.FLOAT:
      return (v) => float32ToNumber(Math.fround(v as unknown as number));
    case F.BIT:
      return (b) => {
        if (b.length <= 6) return b.length ? b.readUIntBE(0, b.length) : 0;
        let v = 0n;
        for (let q = 0; q < b.length; q++) v = (v << 8n) | BigInt(b[q]!);
        return bigToJson(v);
      };
    case F.JSON:
      // MySQL JSON (jsonStrings: the text): int64 beyond 2^53 stays a string, as the
      // binary JSON decoder has it.
      return (v) => {
        const s = Buffer.isBuffer(v) ? v.toString('utf8') : (v as unknown as string);
        try {
          return parseJsonLossless(s);
        } catch {
          return s;
        }
      };
    case F.GEOMETRY:
      return (b) => (Buffer.isBuffer(b) && b.length >= 4 ? { srid: b.readUInt32LE(0), wkb: b.toString('base64', 4) } : (b as unknown as JsonValue));
    default:
      if (info?.json) {
        // MariaDB JSON (LONGTEXT): parsed like the decoder does for a schema-hinted JSON column.
        return (v) => {
          const s = Buffer.isBuffer(v) ? v.toString('utf8') : (v as unknown as string);
          try {
            return JSON.parse(s) as JsonValue;
          } catch {
            return s;
          }
        };
      }
      // Binary strings (collation 63) arrive as bytes: base64.
      return f.characterSet === 63 ? (b) => (Buffer.isBuffer(b) ? b.toString('base64') : (b as unknown as JsonValue)) : null;
  }
}
