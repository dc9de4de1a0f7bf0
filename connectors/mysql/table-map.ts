/**
 * TABLE_MAP_EVENT: binds a numeric table id to a table and describes its columns for the
 * rows events that follow, including every kind of optional metadata (MySQL 8.0.1+
 * `binlog_row_metadata`, MariaDB 10.5+).
 *
 * Body layout after the post-header (table id u48 or u32, flags u16):
 * db name (u8 length, bytes, NUL), table name (same), column count (lenenc), one type byte
 * per column, metadata block (lenenc length, per-type bytes), null bitmap, then optional
 * metadata as TLV entries: type u8, length lenenc, value.
 */
import { ColumnType, isCharacterType, isEnumOrSet, isNumericType, readColumnMeta, stringMeta } from './column-types.js';
import { Reader } from './reader.js';

/** Optional metadata TLV types. */
export const OptMeta = {
  SIGNEDNESS: 1,
  DEFAULT_CHARSET: 2,
  COLUMN_CHARSET: 3,
  COLUMN_NAME: 4,
  SET_STR_VALUE: 5,
  ENUM_STR_VALUE: 6,
  GEOMETRY_TYPE: 7,
  SIMPLE_PRIMARY_KEY: 8,
  PRIMARY_KEY_WITH_PREFIX: 9,
  ENUM_AND_SET_DEFAULT_CHARSET: 10,
  ENUM_AND_SET_COLUMN_CHARSET: 11,
  COLUMN_VISIBILITY: 12,
  VECTOR_DIMENSIONALITY: 13,
} as const;

/** A parsed TABLE_MAP. Per-column arrays are indexed by column ordinal. */
export interface TableMap {
  tableId: number;
  db: string;
  table: string;
  columnCount: number;
  /** Wire type per column (ENUM/SET show up as STRING here). */
  types: Uint8Array;
  /** Real type: STRING columns resolved to ENUM/SET/STRING via metadata byte 0. */
  realTypes: Uint8Array;
  /** Packed metadata per column (see `readColumnMeta`). */
  metas: Uint32Array;
  nullable: boolean[];
  /** Signedness from optional metadata; null when not logged (then integers are signed). */
  unsigned: boolean[] | null;
  /** Collation id per character and ENUM/SET column; null entries where unknown. */
  collations: (number | null)[];
  /** Column names (optional metadata COLUMN_NAME, binlog_row_metadata=FULL), else null. */
  columnNames: string[] | null;
  /** ENUM labels per column (null for non-ENUM columns or when not logged). */
  enumValues: (string[] | null)[];
  /** SET labels per column. */
  setValues: (string[] | null)[];
  /** Geometry subtype per GEOMETRY column (0 = GEOMETRY, 1 = POINT, ...). */
  geometryTypes: (number | null)[];
  /** Primary key column ordinals, in key order; null when not logged. */
  primaryKey: number[] | null;
  /** Prefix length per primary key part (0 = whole column); null when not logged. */
  primaryKeyPrefixes: number[] | null;
  /** Column visibility (false = INVISIBLE); null when not logged. */
  visible: boolean[] | null;
  /** VECTOR dimensions per column. */
  vectorDimensions: (number | null)[];
  /** A copy of the body from the db name on: equal bytes mean an identical map. */
  signature: Buffer;
  /** Written by MariaDB, which counts YEAR among the SIGNEDNESS columns (see isNumericType). */
  mariadb: boolean;
}

/**
 * Reads the table id of a TABLE_MAP or rows event: 6 bytes, or 4 when the FDE declares a
 * post-header of 6 (MySQL 5.0 era).
 */
export function readTableId(r: Reader, postHeaderLen: number): number {
  return postHeaderLen === 6 ? r.u32() : r.uintLE(6);
}

/** Cheap peek used by the decoder's cache: table id and the offset where the body starts. */
export function peekTableMap(r: Reader, postHeaderLen: number): { tableId: number; bodyStart: number } {
  const tableId = readTableId(r, postHeaderLen);
  r.u16(); // flags
  return { tableId, bodyStart: r.pos };
}

/**
 * Parses a TABLE_MAP body from `r.pos` (just after the post-header) to `r.end`. `mariadb`:
 * the binlog comes from MariaDB (its FORMAT_DESCRIPTION's server version says so), whose
 * SIGNEDNESS metadata covers one more type than MySQL's.
 */
export function parseTableMapBody(r: Reader, tableId: number, mariadb = false): TableMap {
  const sigStart = r.pos;
  const db = r.str(r.u8());
  r.u8();
  const table = r.str(r.u8());
  r.u8();
  const n = r.lenenc();
  const types = new Uint8Array(r.bytes(n));
  const metaLen = r.lenenc();
  const metaEnd = r.pos + metaLen;
  const metas = new Uint32Array(n);
  const realTypes = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const t = types[i]!;
    metas[i] = readColumnMeta(r, t);
    realTypes[i] = t === ColumnType.STRING ? stringMeta(metas[i]!).realType : t;
  }
  r.pos = metaEnd;
  const nullBits = r.bytes((n + 7) >> 3);
  const nullable: boolean[] = new Array(n);
  for (let i = 0; i < n; i++) nullable[i] = (nullBits[i >> 3]! & (1 << (i & 7))) !== 0;

  const tm: TableMap = {
    tableId, db, table, columnCount: n, types, realTypes, metas, nullable,
    unsigned: null,
    collations: new Array(n).fill(null),
    columnNames: null,
    enumValues: new Array(n).fill(null),
    setValues: new Array(n).fill(null),
    geometryTypes: new Array(n).fill(null),
    primaryKey: null,
    primaryKeyPrefixes: null,
    visible: null,
    vectorDimensions: new Array(n).fill(null),
    signature: Buffer.from(r.buf.subarray(sigStart, r.end)),
    mariadb,
  };

  const cols = (pred: (rt: number) => boolean): number[] => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) if (pred(realTypes[i]!)) out.push(i);
    return out;
  };

  while (r.remaining > 0) {
    const type = r.u8();
    const len = r.lenenc();
    const end = r.pos + len;
    const v = new Reader(r.buf, r.pos, end);
    switch (type) {
      case OptMeta.SIGNEDNESS: {
        const numeric = cols((t) => isNumericType(t, mariadb));
        tm.unsigned = new Array(n).fill(false);
        numeric.forEach((col, k) => {
          // Bits are MSB-first over the numeric columns only.
          tm.unsigned![col] = (r.buf[v.pos + (k >> 3)]! & (0x80 >> (k & 7))) !== 0;
        });
        break;
      }
      case OptMeta.DEFAULT_CHARSET:
      case OptMeta.ENUM_AND_SET_DEFAULT_CHARSET: {
        const which = cols(type === OptMeta.DEFAULT_CHARSET ? isCharacterType : isEnumOrSet);
        const dflt = v.lenenc();
        for (const c of which) tm.collations[c] = dflt;
        // Exceptions: (index among these columns, collation) pairs.
        while (v.remaining > 0) {
          const idx = v.lenenc();
          const coll = v.lenenc();
          if (which[idx] !== undefined) tm.collations[which[idx]!] = coll;
        }
        break;
      }
      case OptMeta.COLUMN_CHARSET:
      case OptMeta.ENUM_AND_SET_COLUMN_CHARSET: {
        const which = cols(type === OptMeta.COLUMN_CHARSET ? isCharacterType : isEnumOrSet);
        for (const c of which) if (v.remaining > 0) tm.collations[c] = v.lenenc();
        break;
      }
      case OptMeta.COLUMN_NAME: {
        const names: string[] = [];
        while (v.remaining > 0) names.push(v.lenencStr());
        tm.columnNames = names;
        break;
      }
      case OptMeta.SET_STR_VALUE:
      case OptMeta.ENUM_STR_VALUE: {
        const which = cols((rt) => rt === (type === OptMeta.SET_STR_VALUE ? ColumnType.SET : ColumnType.ENUM));
        const target = type === OptMeta.SET_STR_VALUE ? tm.setValues : tm.enumValues;
        for (const c of which) {
          if (v.remaining === 0) break;
          const count = v.lenenc();
          const labels: string[] = new Array(count);
          for (let k = 0; k < count; k++) labels[k] = v.lenencStr();
          target[c] = labels;
        }
        break;
      }
      case OptMeta.GEOMETRY_TYPE: {
        for (const c of cols((rt) => rt === ColumnType.GEOMETRY)) if (v.remaining > 0) tm.geometryTypes[c] = v.lenenc();
        break;
      }
      case OptMeta.SIMPLE_PRIMARY_KEY: {
        const pk: number[] = [];
        while (v.remaining > 0) pk.push(v.lenenc());
        tm.primaryKey = pk;
        tm.primaryKeyPrefixes = pk.map(() => 0);
        break;
      }
      case OptMeta.PRIMARY_KEY_WITH_PREFIX: {
        const pk: number[] = [];
        const prefixes: number[] = [];
        while (v.remaining > 0) {
          pk.push(v.lenenc());
          prefixes.push(v.lenenc());
        }
        tm.primaryKey = pk;
        tm.primaryKeyPrefixes = prefixes;
        break;
      }
      case OptMeta.COLUMN_VISIBILITY: {
        const vis: boolean[] = new Array(n);
        for (let i = 0; i < n; i++) vis[i] = (r.buf[v.pos + (i >> 3)]! & (0x80 >> (i & 7))) !== 0;
        tm.visible = vis;
        break;
      }
      case OptMeta.VECTOR_DIMENSIONALITY: {
        for (const c of cols((rt) => rt === ColumnType.VECTOR)) if (v.remaining > 0) tm.vectorDimensions[c] = v.lenenc();
        break;
      }
      default:
        // Unknown metadata from a newer server: skip by length.
        break;
    }
    r.pos = end;
  }
  return tm;
}
