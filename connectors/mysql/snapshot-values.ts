/**
 * The snapshot's values on the object path: per result column, the converter that turns
 * mysql2's value (with the snapshot connection's options: int64 beyond 2^53 and DECIMAL as
 * strings, dates and JSON as text) into the value the binlog decoder gives for the same
 * column, by the rules of values.ts. snapshot-rows.ts writes the same values straight from
 * the protocol bytes.
 */
import type { JsonValue } from '../../src/core/event.js';
import { ColumnType as F, textKindFor } from './column-types.js';
import {
  bitToJson, dateFromText, datetimeFromText, decodeText, float32FromDouble, geometryToJson, parseJsonLossless, parseJsonText, textDecoderFor,
  vectorToJson,
} from './values.js';
import type { ColumnInfo } from './snapshot-columns.js';
import type { RawField } from './snapshot-sql.js';

export type Conv = (b: Buffer) => JsonValue;

/** Character data in the column's own charset, exactly as the binlog decoder does (values.ts `decodeText`). */
function textConv(collation: number): Conv {
  const tk = textKindFor(collation);
  const dec = textDecoderFor(tk);
  return (b) => decodeText(b, 0, b.length, tk.kind, dec);
}

/** A value mysql2 hands over as a string (dateStrings, jsonStrings) or, for some columns, as bytes. */
const text = (v: Buffer): string => (Buffer.isBuffer(v) ? v.toString('utf8') : (v as unknown as string));

/**
 * The converter of one result column, or null when mysql2's own value already is the
 * decoder's (integers within ±(2^53−1) or int64 strings beyond, DECIMAL strings, TIME, YEAR,
 * utf8mb4 text, DOUBLE).
 */
export function converterFor(f: RawField, info: ColumnInfo | undefined): Conv | null {
  switch (info?.via) {
    case 'float':
      return (v) => float32FromDouble(v as unknown as number);
    case 'bytes-text':
      return textConv(info.collation ?? 45);
    case 'bytes-geometry':
      return (b) => geometryToJson(b, 0, b.length);
    case 'bytes-vector':
      return (b) => vectorToJson(b, 0, b.length);
    default:
  }
  switch (f.columnType) {
    case F.DATE: case F.NEWDATE:
      return (v) => dateFromText(v as unknown as string);
    case F.DATETIME:
      return (v) => datetimeFromText(v as unknown as string, false);
    case F.TIMESTAMP:
      return (v) => datetimeFromText(v as unknown as string, true);
    case F.FLOAT:
      return (v) => float32FromDouble(v as unknown as number);
    case F.BIT:
      return (b) => bitToJson(b, 0, b.length);
    case F.JSON:
      // MySQL JSON (jsonStrings: the text): int64 beyond 2^53 stays a string, as the
      // binary JSON decoder has it.
      return (v) => {
        const s = text(v);
        try {
          return parseJsonLossless(s);
        } catch {
          return s;
        }
      };
    case F.GEOMETRY:
      return (b) => (Buffer.isBuffer(b) ? geometryToJson(b, 0, b.length) : (b as unknown as JsonValue));
    default:
      // MariaDB JSON (LONGTEXT): parsed like the decoder does for a schema-hinted JSON column.
      if (info?.json) return (v) => parseJsonText(text(v));
      // Binary strings (collation 63) arrive as bytes: base64.
      return f.characterSet === 63 ? (b) => (Buffer.isBuffer(b) ? b.toString('base64') : (b as unknown as JsonValue)) : null;
  }
}
