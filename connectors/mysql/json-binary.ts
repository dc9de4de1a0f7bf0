/**
 * MySQL binary JSON (the JSON column's storage and binlog format) → JSON values.
 *
 * A value is a type byte followed by its data. Objects and arrays come in a small form
 * (u16 counts and offsets) and a large form (u32). Their header is: element count, total
 * byte size, then for objects one key entry (offset, u16 length) per member, then one value
 * entry (type byte + offset, or the value itself when it fits the offset field) per element.
 * Offsets are relative to the start of the object/array (just after its type byte).
 *
 * Scalars: int64/uint64 beyond ±(2^53−1) become decimal strings (DESIGN.md int64 rule).
 * Opaque values carry a MySQL field type: DECIMAL becomes its exact string, DATE/DATETIME/
 * TIMESTAMP/TIME become the strings MySQL's JSON printer shows (`"2024-01-15 10:30:00.000000"`),
 * anything else becomes `"base64:type<N>:<base64>"` as MySQL prints it.
 */
import type { JsonValue } from '../../src/core/event.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { decodeDecimal } from './decimal.js';
import { formatPackedDatetime, formatPackedTime } from './temporal.js';

const SMALL_OBJECT = 0x00;
const LARGE_OBJECT = 0x01;
const SMALL_ARRAY = 0x02;
const LARGE_ARRAY = 0x03;
const LITERAL = 0x04;
const INT16 = 0x05;
const UINT16 = 0x06;
const INT32 = 0x07;
const UINT32 = 0x08;
const INT64 = 0x09;
const UINT64 = 0x0a;
const DOUBLE = 0x0b;
const STRING = 0x0c;
const OPAQUE = 0x0f;

function bad(msg: string): never {
  throw new TributaryError(ErrorCodes.MYSQL_DECODE, `binary JSON: ${msg}`);
}

/** Decodes a complete binary JSON document in `buf[start, end)`. An empty value is JSON null. */
export function decodeJsonBinary(buf: Buffer, start = 0, end = buf.length): JsonValue {
  // MySQL writes a zero-length value for a JSON null produced by some code paths.
  if (end <= start) return null;
  return readValue(buf, buf[start]!, start + 1, end);
}

/** Reads the variable-length string length used by STRING and OPAQUE (7 bits per byte). */
function readVarLen(buf: Buffer, p: number, end: number): [number, number] {
  let len = 0;
  for (let i = 0; i < 5; i++) {
    if (p >= end) bad('truncated length');
    const b = buf[p++]!;
    len += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return [len, p];
  }
  return bad('length too long');
}

function int64ToJson(v: bigint): number | string {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v.toString();
}

function readValue(buf: Buffer, type: number, p: number, end: number): JsonValue {
  switch (type) {
    case SMALL_OBJECT:
      return readContainer(buf, p, end, false, true);
    case LARGE_OBJECT:
      return readContainer(buf, p, end, true, true);
    case SMALL_ARRAY:
      return readContainer(buf, p, end, false, false);
    case LARGE_ARRAY:
      return readContainer(buf, p, end, true, false);
    case LITERAL:
      return readLiteral(buf[p]!);
    case INT16:
      return buf.readInt16LE(p);
    case UINT16:
      return buf.readUInt16LE(p);
    case INT32:
      return buf.readInt32LE(p);
    case UINT32:
      return buf.readUInt32LE(p);
    case INT64:
      return int64ToJson(buf.readBigInt64LE(p));
    case UINT64:
      return int64ToJson(buf.readBigUInt64LE(p));
    case DOUBLE:
      return buf.readDoubleLE(p);
    case STRING: {
      const [len, q] = readVarLen(buf, p, end);
      if (q + len > end) bad('string overruns its document');
      return buf.toString('utf8', q, q + len);
    }
    case OPAQUE: {
      const fieldType = buf[p]!;
      const [len, q] = readVarLen(buf, p + 1, end);
      if (q + len > end) bad('opaque value overruns its document');
      return readOpaque(buf, fieldType, q, len);
    }
    default:
      return bad(`unknown value type 0x${type.toString(16)}`);
  }
}

function readLiteral(b: number): JsonValue {
  if (b === 0) return null;
  if (b === 1) return true;
  if (b === 2) return false;
  return bad(`unknown literal ${b}`);
}

function readOpaque(buf: Buffer, fieldType: number, p: number, len: number): JsonValue {
  switch (fieldType) {
    case 246: // NEWDECIMAL: precision, scale, then the binary decimal
      return decodeDecimal(buf, p + 2, buf[p]!, buf[p + 1]!);
    case 10: // DATE
      return formatPackedDatetime(buf.readBigInt64LE(p), true);
    case 7: // TIMESTAMP
    case 12: // DATETIME
      return formatPackedDatetime(buf.readBigInt64LE(p), false);
    case 11: // TIME
      return formatPackedTime(Number(buf.readBigInt64LE(p)), 6);
    default:
      return `base64:type${fieldType}:${buf.toString('base64', p, p + len)}`;
  }
}

function readContainer(buf: Buffer, base: number, end: number, large: boolean, isObject: boolean): JsonValue {
  const w = large ? 4 : 2;
  const count = large ? buf.readUInt32LE(base) : buf.readUInt16LE(base);
  const size = large ? buf.readUInt32LE(base + w) : buf.readUInt16LE(base + w);
  if (base + size > end) bad(`${isObject ? 'object' : 'array'} of ${size} bytes overruns its document`);
  const keyEntries = base + 2 * w;
  const valueEntries = keyEntries + (isObject ? count * (w + 2) : 0);
  const valueEntrySize = 1 + w;

  const readEntry = (i: number): JsonValue => {
    const e = valueEntries + i * valueEntrySize;
    const t = buf[e]!;
    // Small scalars are stored in the entry itself instead of at an offset.
    switch (t) {
      case LITERAL:
        return readLiteral(buf[e + 1]!);
      case INT16:
        return buf.readInt16LE(e + 1);
      case UINT16:
        return buf.readUInt16LE(e + 1);
      case INT32:
        if (large) return buf.readInt32LE(e + 1);
        break;
      case UINT32:
        if (large) return buf.readUInt32LE(e + 1);
        break;
    }
    const off = large ? buf.readUInt32LE(e + 1) : buf.readUInt16LE(e + 1);
    return readValue(buf, t, base + off, base + size);
  };

  if (!isObject) {
    const arr: JsonValue[] = new Array(count);
    for (let i = 0; i < count; i++) arr[i] = readEntry(i);
    return arr;
  }
  const obj: { [k: string]: JsonValue } = {};
  for (let i = 0; i < count; i++) {
    const k = keyEntries + i * (w + 2);
    const koff = large ? buf.readUInt32LE(k) : buf.readUInt16LE(k);
    const klen = buf.readUInt16LE(k + w);
    obj[buf.toString('utf8', base + koff, base + koff + klen)] = readEntry(i);
  }
  return obj;
}
