/**
 * MySQL column type codes as they appear in TABLE_MAP, how many metadata bytes each one
 * carries, and how a collation id maps to a text decoding.
 */
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { Reader } from './reader.js';

export const ColumnType = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  TYPED_ARRAY: 20,
  VECTOR: 242,
  INVALID: 243,
  BOOL: 244,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

const T = ColumnType;

/**
 * Reads one column's TABLE_MAP metadata and returns it packed into one number (at most two
 * bytes are meaningful). The packing per type:
 * - FLOAT/DOUBLE/BLOB family/JSON/GEOMETRY/VECTOR/TIMESTAMP2/DATETIME2/TIME2: the single byte
 *   (pack length, length-prefix bytes, or fsp);
 * - VARCHAR/VAR_STRING: u16 LE max length in bytes;
 * - NEWDECIMAL: precision << 8 | scale;
 * - STRING/ENUM/SET: byte0 << 8 | byte1 (byte0 holds the real type; see {@link stringMeta});
 * - BIT: bytes << 8 | bits (byte0 = bits % 8, byte1 = whole bytes).
 */
export function readColumnMeta(r: Reader, type: number): number {
  switch (type) {
    case T.FLOAT:
    case T.DOUBLE:
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB:
    case T.JSON:
    case T.GEOMETRY:
    case T.VECTOR:
    case T.TIMESTAMP2:
    case T.DATETIME2:
    case T.TIME2:
      return r.u8();
    case T.VARCHAR:
    case T.VAR_STRING:
      return r.u16();
    case T.NEWDECIMAL: {
      const precision = r.u8();
      return (precision << 8) | r.u8();
    }
    case T.STRING:
    case T.ENUM:
    case T.SET: {
      const b0 = r.u8();
      return (b0 << 8) | r.u8();
    }
    case T.BIT: {
      const bits = r.u8();
      return (r.u8() << 8) | bits;
    }
    case T.DECIMAL:
    case T.TINY:
    case T.SHORT:
    case T.LONG:
    case T.NULL:
    case T.TIMESTAMP:
    case T.LONGLONG:
    case T.INT24:
    case T.DATE:
    case T.TIME:
    case T.DATETIME:
    case T.YEAR:
    case T.NEWDATE:
    case T.BOOL:
      return 0;
    default:
      throw new TributaryError(ErrorCodes.MYSQL_DECODE, `TABLE_MAP has unsupported column type ${type}`);
  }
}

/**
 * The real type and max byte length of a STRING column. ENUM and SET are logged as STRING
 * with the real type in metadata byte 0. For CHAR, MySQL scrambles the top bits of the max
 * length into byte 0 so that lengths above 255 fit: `(((m >> 4) & 0x300) ^ 0x300) + (m & 0xff)`.
 */
export function stringMeta(meta: number): { realType: number; maxLen: number } {
  const b0 = meta >> 8;
  const b1 = meta & 0xff;
  if ((b0 & 0x30) !== 0x30) {
    // The scrambled form: the real type with two bits of the length folded in.
    return { realType: b0 | 0x30, maxLen: b1 | (((b0 & 0x30) ^ 0x30) << 4) };
  }
  return { realType: b0, maxLen: b1 };
}

/**
 * True for types whose signedness bit is logged in TABLE_MAP SIGNEDNESS metadata. MariaDB
 * (10.5+, which decides per field) also gives YEAR a bit, as an unsigned number; MySQL does
 * not. Seen in a MariaDB 10.11 TABLE_MAP of `(id int, y year, a tinyint, b bit(3), c tinyint
 * unsigned, d tinyint, g point, e float unsigned)`: bits 0101 01 over id, y, a, c, d, e.
 * Leaving YEAR out there shifted every later column's bit, and signed values after a YEAR
 * column came out unsigned (-128 as 128).
 */
export function isNumericType(type: number, mariadb = false): boolean {
  return (
    type === T.TINY || type === T.SHORT || type === T.INT24 || type === T.LONG || type === T.LONGLONG ||
    type === T.FLOAT || type === T.DOUBLE || type === T.NEWDECIMAL || type === T.DECIMAL || (mariadb && type === T.YEAR)
  );
}

/**
 * Columns that DEFAULT_CHARSET / COLUMN_CHARSET metadata covers (real type): text and blob
 * types, and GEOMETRY, which the server stores as a blob and lists with collation 63 (both
 * MySQL and MariaDB: seen in a MariaDB 10.11 TABLE_MAP, where leaving it out gave every
 * later text column its left neighbour's charset).
 */
export function isCharacterType(realType: number): boolean {
  return (
    realType === T.STRING || realType === T.VAR_STRING || realType === T.VARCHAR || realType === T.BLOB ||
    realType === T.TINY_BLOB || realType === T.MEDIUM_BLOB || realType === T.LONG_BLOB || realType === T.GEOMETRY ||
    // MySQL 9 counts VECTOR (a binary string, collation 63) among the character columns.
    realType === T.VECTOR
  );
}

export function isEnumOrSet(realType: number): boolean {
  return realType === T.ENUM || realType === T.SET;
}

/** How the bytes of a character column become a JSON value. */
export const enum TextKind {
  /** Not known (no charset metadata): UTF-8 when the bytes are valid UTF-8, else base64. */
  Unknown = 0,
  Utf8 = 1,
  /** MySQL latin1 is Windows-1252. */
  Latin1 = 2,
  /** Collation 63: binary data, emitted as base64. */
  Binary = 3,
  Utf16BE = 4,
  Utf16LE = 5,
  Utf32BE = 6,
  /** Any other single-byte charset we have a WHATWG decoder for. */
  Other = 7,
}

/** Collations whose charset is latin1 (MySQL 8 / MariaDB 10.x ids). */
const LATIN1 = new Set([5, 8, 15, 31, 47, 48, 49, 94]);
const UCS2 = new Set([35, 90, 149, 159, ...range(128, 147)]);
const UTF16 = new Set([54, 55, ...range(101, 124), 121, 122]);
const UTF16LE = new Set([56, 62]);
const UTF32 = new Set([60, 61, ...range(160, 183)]);
/** Collation id → WHATWG encoding label for the other common 8-bit charsets. */
const OTHER: Record<number, string> = {
  1: 'big5', 84: 'big5', 13: 'shift_jis', 88: 'shift_jis', 95: 'shift_jis', 96: 'shift_jis', 97: 'euc-jp', 98: 'euc-jp',
  19: 'euc-kr', 85: 'euc-kr', 24: 'gb2312', 86: 'gb2312', 28: 'gbk', 87: 'gbk', 248: 'gb18030', 249: 'gb18030', 250: 'gb18030',
  7: 'koi8-r', 74: 'koi8-r', 22: 'koi8-u', 75: 'koi8-u', 6: 'iso-8859-8', 16: 'iso-8859-8', 25: 'iso-8859-7', 70: 'iso-8859-7',
  9: 'iso-8859-2', 21: 'iso-8859-2', 27: 'iso-8859-2', 77: 'iso-8859-2', 30: 'iso-8859-9', 78: 'iso-8859-9',
  26: 'windows-1250', 34: 'windows-1250', 44: 'windows-1250', 66: 'windows-1250', 99: 'windows-1250',
  14: 'windows-1251', 23: 'windows-1251', 50: 'windows-1251', 51: 'windows-1251', 52: 'windows-1251',
  57: 'windows-1256', 67: 'windows-1256', 29: 'windows-1257', 58: 'windows-1257', 59: 'windows-1257',
  18: 'tis-620', 89: 'tis-620', 36: 'ibm866', 68: 'ibm866',
};

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(i);
  return out;
}

/** Maps a collation id (or null when unknown) to its {@link TextKind} and, for Other, a label. */
export function textKindFor(collation: number | null): { kind: TextKind; label?: string } {
  if (collation === null) return { kind: TextKind.Unknown };
  if (collation === 63) return { kind: TextKind.Binary };
  if (LATIN1.has(collation)) return { kind: TextKind.Latin1 };
  if (UCS2.has(collation) || UTF16.has(collation)) return { kind: TextKind.Utf16BE };
  if (UTF16LE.has(collation)) return { kind: TextKind.Utf16LE };
  if (UTF32.has(collation)) return { kind: TextKind.Utf32BE };
  const label = OTHER[collation];
  if (label) return { kind: TextKind.Other, label };
  // utf8mb3, utf8mb4, ascii and anything unknown: UTF-8 (ascii is a subset).
  return { kind: TextKind.Utf8 };
}
