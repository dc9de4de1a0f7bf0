/**
 * Snapshot support for MySQL/MariaDB (the DBLog watermark algorithm, docs/snapshots.md).
 *
 * - **Watermarks** go through a signal table (the binlog has no logical messages): an
 *   autocommit `INSERT INTO <signal_table> (id, mark)` is a transaction of its own in the
 *   binlog; the live source turns that row back into a `watermark` item and never forwards
 *   signal-table events to sinks. The table is created lazily (`CREATE DATABASE/TABLE IF NOT
 *   EXISTS`) and old rows are deleted now and then (the binlog keeps the inserts).
 * - **Chunks** are keyset pages on the primary key, else `source.key_columns`, else the first
 *   UNIQUE index whose columns are all NOT NULL. Boundaries (every `chunkRows`-th key) are
 *   numbered on the server with `ROW_NUMBER()`; they are fetched in an exact text form (hex
 *   for strings, the server's digits for numbers) and written back as literals that compare
 *   in the column's own collation, so a boundary never shifts.
 * - **Rows** are defined by mysql2's row parser with options that already give the decoder's
 *   form for most types (UTC session; int64 beyond 2^53 and DECIMAL as strings, dates and
 *   JSON as text), and by converters built once per table from the result's field metadata
 *   for the remaining columns (dates, FLOAT, BIT, JSON, binary, GEOMETRY, text in other
 *   charsets): exactly what the binlog decoder (row-decoder.ts, temporal.ts) produces for the
 *   same value, so a snapshot row equals the streamed insert of that row. Chunks are read by
 *   snapshot-rows.ts, which writes that same JSON straight from the protocol bytes; tables it
 *   declines (and `rowPath: 'objects'`) go through mysql2's row objects (`objectRows`).
 */
import { TextDecoder } from 'node:util';
import mysql from 'mysql2';
const { createConnection } = mysql;
import type { JsonValue, Row } from '../../src/core/event.js';
import { ErrorCodes, TributaryError, errorMessage } from '../../src/core/errors.js';
import type { PreflightProblem } from '../../src/core/source.js';
import { StringRows, keyString, type ChunkBounds, type ChunkKeyKind, type ChunkPlanner, type RowSink, type SnapshotEventBuilder, type SnapshotReader, type SnapshotSupport, type SnapshotTable } from '../../src/snapshot/types.js';
import { assertSafeFilter, filterRejected } from '../../src/snapshot/filter.js';
import { snapshotEventBuilder } from '../../src/snapshot/envelope.js';
import { tableMatcher } from '../../src/runtime/table-filter.js';
import { mysqlQuery } from './client.js';
import { TextKind, textKindFor } from './column-types.js';
import { float32ToNumber, writeJsonText } from './row-decoder.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import { RowWriter, fieldSig, readChunkRows } from './snapshot-rows.js';

export const DEFAULT_SIGNAL_TABLE = 'tributary.watermarks';

const SYSTEM_DBS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

/** `db.table` → its two parts (the database name is everything before the first dot). */
export function splitName(name: string): { db: string; table: string } {
  const i = name.indexOf('.');
  if (i <= 0 || i === name.length - 1) {
    throw new TributaryError(ErrorCodes.SNAPSHOT_TABLE_UNKNOWN, `"${name}" is not a db.table name`, { fix: 'name tables as db.table' });
  }
  return { db: name.slice(0, i), table: name.slice(i + 1) };
}

export function ident(s: string): string {
  return '`' + s.replace(/`/g, '``') + '`';
}

function qname(name: string): string {
  const { db, table } = splitName(name);
  return `${ident(db)}.${ident(table)}`;
}

function quoteString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\0/g, '\\0')}'`;
}

// ---------------------------------------------------------------------------------------
// Key columns: how a boundary is fetched, persisted and written back.
//
// keyTypes entries: `int`, `dec`, `float`, `temporal`, `ord` (ENUM/SET/BIT: compared by
// their numeric value, which is also their ORDER BY order), `bin` (binary strings, as hex),
// `str:<charset>:<collation>` (character strings, as hex, compared in that collation).
// ---------------------------------------------------------------------------------------

function keyTypeFor(dataType: string, charset: string | null, collation: string | null): string {
  switch (dataType) {
    case 'tinyint': case 'smallint': case 'mediumint': case 'int': case 'integer': case 'bigint': case 'year':
      return 'int';
    case 'decimal': case 'numeric':
      return 'dec';
    case 'float': case 'double': case 'real':
      return 'float';
    case 'date': case 'datetime': case 'timestamp': case 'time':
      return 'temporal';
    case 'enum': case 'set': case 'bit':
      return 'ord';
    default:
      if (!charset || charset === 'binary' || !collation) return 'bin';
      return `str:${charset}:${collation}`;
  }
}

/** The expression compared and ordered on. */
function keyExpr(col: string, kt: string): string {
  return kt === 'ord' ? `(${ident(col)}+0)` : ident(col);
}

/** The expression a boundary value is fetched with (exact text). */
function boundaryExpr(col: string, kt: string): string {
  if (kt === 'ord') return `${ident(col)}+0`;
  if (kt === 'float') return `${ident(col)}+0E0`;
  if (kt === 'bin' || kt.startsWith('str:')) return `HEX(${ident(col)})`;
  return ident(col);
}

const INT_RE = /^-?\d+$/;
const DEC_RE = /^-?\d+(\.\d+)?$/;
const FLOAT_RE = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;
const HEX_RE = /^[0-9a-f]*$/i;
const WORD_RE = /^\w+$/;

/** A boundary value back as an SQL literal that compares like the column. */
function keyLiteral(v: JsonValue, kt: string): string {
  const s = String(v);
  const bad = (): never => {
    throw new TributaryError(ErrorCodes.SNAPSHOT_BOUND, `snapshot boundary ${JSON.stringify(v)} does not fit key type ${kt}`, { fix: 'cancel the snapshot and start it again' });
  };
  switch (kt) {
    case 'int':
    case 'ord':
      return INT_RE.test(s) ? s : bad();
    case 'dec':
      return DEC_RE.test(s) ? s : bad();
    case 'float':
      return FLOAT_RE.test(s) ? (/e/i.test(s) ? s : `${s}E0`) : bad();
    case 'temporal':
      return quoteString(s);
    case 'bin':
      return HEX_RE.test(s) ? `X'${s}'` : bad();
    default: {
      const [, cs, coll] = kt.split(':');
      if (!HEX_RE.test(s) || !cs || !coll || !WORD_RE.test(cs) || !WORD_RE.test(coll)) bad();
      return `CONVERT(X'${s}' USING ${cs}) COLLATE ${coll}`;
    }
  }
}

/**
 * `(k1, k2, …) > (v1, v2, …)` (or `<=`), spelled out as `k1 > v1 OR (k1 = v1 AND …)` with a
 * leading `k1 >= v1`: MariaDB does not use an index range for row-constructor comparisons.
 */
function rowCompare(cols: string[], kts: string[], vals: JsonValue[], op: '>' | '<='): string {
  const e = cols.map((c, i) => keyExpr(c, kts[i]!));
  const l = vals.map((v, i) => keyLiteral(v, kts[i]!));
  if (e.length === 1) return `${e[0]} ${op} ${l[0]}`;
  const strict = op === '>' ? '>' : '<';
  let inner = `${e[e.length - 1]} ${op} ${l[l.length - 1]}`;
  for (let i = e.length - 2; i >= 0; i--) inner = `(${e[i]} ${strict} ${l[i]} OR (${e[i]} = ${l[i]} AND ${inner}))`;
  return `(${e[0]} ${op === '>' ? '>=' : '<='} ${l[0]} AND ${inner})`;
}

// ---------------------------------------------------------------------------------------
// Queries with raw values.
// ---------------------------------------------------------------------------------------

interface RawField {
  name: string;
  columnType: number;
  flags: number;
  characterSet: number;
}

function rawQuery(c: mysql.Connection, sql: string): Promise<{ rows: (Buffer | null)[][]; fields: RawField[] }> {
  return new Promise((resolve, reject) => {
    c.query({ sql, typeCast: false, rowsAsArray: true }, (err, rows, fields) =>
      err ? reject(err) : resolve({ rows: rows as unknown as (Buffer | null)[][], fields: (fields ?? []) as unknown as RawField[] }),
    );
  });
}

/** Rows as objects, values as mysql2 parses them with the connection's options. */
function objectQuery(c: mysql.Connection, sql: string): Promise<{ rows: Record<string, unknown>[]; fields: RawField[] }> {
  return new Promise((resolve, reject) => {
    c.query({ sql }, (err, rows, fields) =>
      err ? reject(err) : resolve({ rows: rows as unknown as Record<string, unknown>[], fields: (fields ?? []) as unknown as RawField[] }),
    );
  });
}

function exec(c: mysql.Connection, sql: string, params?: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => c.query(sql, params ?? [], (err) => (err ? reject(err) : resolve())));
}

const errno = (err: unknown): number | null => (err as { errno?: number }).errno ?? null;

/**
 * Run `fn` on `c` inside a READ ONLY transaction when a user filter is part of its SQL (and
 * plainly otherwise: unfiltered reads need no extra round trips). With multi-statements off
 * on every snapshot connection, a filter can neither start a second statement nor write.
 */
async function filtered<T>(c: mysql.Connection, where: string | null, fn: () => Promise<T>): Promise<T> {
  if (where === null) return fn();
  assertSafeFilter(where, 'mysql');
  await exec(c, 'START TRANSACTION READ ONLY');
  try {
    const r = await fn();
    await exec(c, 'COMMIT');
    return r;
  } catch (err) {
    await exec(c, 'ROLLBACK').catch(() => undefined);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// Value conversion: the binlog decoder's representation, from the text protocol.
// ---------------------------------------------------------------------------------------

/** mysql2 / protocol column types. */
const enum F {
  DECIMAL = 0, TINY = 1, SHORT = 2, LONG = 3, FLOAT = 4, DOUBLE = 5, NULL = 6, TIMESTAMP = 7, LONGLONG = 8, INT24 = 9,
  DATE = 10, TIME = 11, DATETIME = 12, YEAR = 13, NEWDATE = 14, VARCHAR = 15, BIT = 16, VECTOR = 242, JSON = 245,
  NEWDECIMAL = 246, ENUM = 247, SET = 248, TINY_BLOB = 249, MEDIUM_BLOB = 250, LONG_BLOB = 251, BLOB = 252,
  VAR_STRING = 253, STRING = 254, GEOMETRY = 255,
}

type Conv = (b: Buffer) => JsonValue;

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

/** What information_schema says about a column, beyond the result metadata. */
interface ColumnInfo {
  name: string;
  /** How it is selected and converted (see {@link selectFor}). */
  via: 'plain' | 'float' | 'bytes-text' | 'bytes-geometry' | 'bytes-vector';
  /** Collation id, for `bytes-text`. */
  collation: number | null;
  /** MySQL JSON, or MariaDB JSON (LONGTEXT with CHECK (json_valid(col))). */
  json: boolean;
}

/** Charsets whose text the server converts to utf8mb4 exactly as row-decoder.ts decodes it. */
const SERVER_DECODED = new Set(['utf8', 'utf8mb3', 'utf8mb4', 'ascii', 'latin1']);
const GEOMETRY_TYPES = new Set(['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection', 'geomcollection']);

/**
 * The select expression of a column:
 * - FLOAT as `col+0E0`: the exact float32 widened to a double (the server prints a FLOAT
 *   with 6 digits), narrowed back to the decoder's shortest round-trip form;
 * - GEOMETRY and VECTOR, and text in charsets other than utf8/latin1/ascii, as
 *   `CAST(col AS BINARY)`: their stored bytes, decoded here like the binlog's;
 * - everything else as is (text arrives as utf8mb4; binary strings as bytes).
 */
function selectFor(col: ColumnInfo): string {
  const c = ident(col.name);
  return col.via === 'plain' ? c : col.via === 'float' ? `${c}+0E0 AS ${c}` : `CAST(${c} AS BINARY) AS ${c}`;
}

/**
 * The converter of one result column, or null when mysql2's own value already is the
 * decoder's (integers within ±(2^53−1) or int64 strings beyond, DECIMAL strings, TIME, YEAR,
 * utf8mb4 text, DOUBLE).
 */
function converterFor(f: RawField, info: ColumnInfo | undefined): Conv | null {
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

/** A table's SELECT list and converters, built once per reader and table. */
interface TableReadPlan {
  columns: ColumnInfo[];
  byName: Map<string, ColumnInfo>;
  select: string;
  /** False once a result had a column the byte path cannot write (see snapshot-rows.ts). */
  fast?: boolean;
  /** The byte path's writer of the last result. */
  writer?: RowWriter | null;
  /** Set on the first result: a signature of the fields, and the columns that need converting. */
  sig?: string;
  convNames?: string[];
  convs?: Conv[];
}

async function columnInfo(c: mysql.Connection, name: string): Promise<ColumnInfo[]> {
  const { db, table } = splitName(name);
  const cols = await mysqlQuery<{ n: string; dt: string; cs: string | null; coll: string | number | null }>(
    c,
    `SELECT c.COLUMN_NAME AS n, c.DATA_TYPE AS dt, c.CHARACTER_SET_NAME AS cs, co.ID AS coll
       FROM information_schema.COLUMNS c LEFT JOIN information_schema.COLLATIONS co ON co.COLLATION_NAME = c.COLLATION_NAME
      WHERE c.TABLE_SCHEMA = ${quoteString(db)} AND c.TABLE_NAME = ${quoteString(table)} ORDER BY c.ORDINAL_POSITION`,
  );
  if (!cols.length) {
    throw new TributaryError(ErrorCodes.SNAPSHOT_TABLE_GONE, `table ${name} does not exist (any more)`, { fix: 'cancel the snapshot, or recreate the table', retryable: true });
  }
  // The schema history's JSON detection: MariaDB JSON is LONGTEXT with CHECK (json_valid(`col`)).
  const json = new Set<string>();
  try {
    const checks = await mysqlQuery<{ clause: string }>(
      c,
      `SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ${quoteString(db)} AND TABLE_NAME = ${quoteString(table)}`,
    );
    for (const ck of checks) {
      const m = /^\s*json_valid\(\s*`((?:[^`]|``)+)`\s*\)\s*$/i.exec(String(ck.clause));
      if (m) json.add(m[1]!.replace(/``/g, '`'));
    }
  } catch {
    /* MySQL 5.7 has no CHECK_CONSTRAINTS */
  }
  return cols.map((r) => {
    const dt = String(r.dt).toLowerCase();
    const cs = r.cs ? String(r.cs).toLowerCase() : null;
    const isJson = dt === 'json' || json.has(r.n);
    let via: ColumnInfo['via'] = 'plain';
    if (dt === 'float') via = 'float';
    else if (GEOMETRY_TYPES.has(dt)) via = 'bytes-geometry';
    else if (dt === 'vector') via = 'bytes-vector';
    else if (cs && cs !== 'binary' && !SERVER_DECODED.has(cs) && !isJson) via = 'bytes-text';
    return { name: r.n, via, collation: r.coll === null || r.coll === undefined ? null : Number(r.coll), json: isJson };
  });
}

function readPlan(columns: ColumnInfo[]): TableReadPlan {
  // An explicit list: invisible columns are in the binlog too.
  return { columns, byName: new Map(columns.map((col) => [col.name, col])), select: columns.map(selectFor).join(', ') };
}

/**
 * A MariaDB JSON value on the object path: its text as the envelope holds it (what the byte
 * paths write: row-decoder.ts `writeJsonText`), never a parsed value, whose numbers a double
 * would round. Only {@link rowJson} reads it.
 */
class JsonText {
  constructor(readonly text: string) {}
}

function jsonText(v: Buffer): JsonValue {
  const b = Buffer.isBuffer(v) ? v : Buffer.from(v as unknown as string, 'utf8');
  const w = new JsonBytes(b.length + 2);
  writeJsonText(w, b, 0, b.length);
  return new JsonText(w.toString()) as unknown as JsonValue;
}

/** Set by {@link rowJson}: false when its text is not JSON.stringify's (a JsonText or a -0 in it). */
let rowJsonPlain = true;

/** A row object as JSON: JSON.stringify's, but with {@link JsonText} values copied and a float's -0 signed. */
function rowJson(row: Row): string {
  let s = '';
  rowJsonPlain = true;
  for (const k of Object.keys(row)) {
    const v = row[k] as unknown;
    let t: string;
    if (v instanceof JsonText) t = v.text;
    else if (Object.is(v, -0)) t = '-0';
    else {
      s += `${s ? ',' : '{'}${JSON.stringify(k)}:${JSON.stringify(v)}`;
      continue;
    }
    rowJsonPlain = false;
    s += `${s ? ',' : '{'}${JSON.stringify(k)}:${t}`;
  }
  return s ? `${s}}` : '{}';
}

/**
 * A chunk through mysql2's row objects: the result's converters applied in place, then each
 * row stringified. The reference form, and the path of tables the byte path declines.
 */
async function objectRows(c: mysql.Connection, sql: string, table: SnapshotTable, plan: TableReadPlan, out: RowSink): Promise<void> {
  const r = await objectQuery(c, sql);
  const fields = r.fields;
  const sigNow = fields.map((f) => `${f.name}:${f.columnType}:${f.characterSet}`).join('\u0000');
  if (plan.sig !== sigNow) {
    plan.convNames = [];
    plan.convs = [];
    for (const f of fields) {
      const info = plan.byName.get(f.name);
      // MariaDB JSON, but for a key column (its key string must be what keyString makes of
      // a streamed, parsed row): kept as text.
      const conv = info?.json && f.columnType !== F.JSON && !table.key.includes(f.name) ? jsonText : converterFor(f, info);
      if (conv) {
        plan.convNames.push(f.name);
        plan.convs.push(conv);
      }
    }
    plan.sig = sigNow;
  }
  const convNames = plan.convNames!;
  const convs = plan.convs!;
  const rows = r.rows as unknown as Row[];
  const m = convs.length;
  if (m) {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      for (let j = 0; j < m; j++) {
        const k = convNames[j]!;
        const v = row[k];
        if (v !== null && v !== undefined) row[k] = convs[j]!(v as unknown as Buffer);
      }
    }
  }
  for (let i = 0; i < rows.length; i++) {
    const json = rowJson(rows[i]!);
    // A key-less row is its own key: what keyString makes of the same row streamed (parsed).
    out.strings(json, table.key.length ? keyString(table, rows[i]!)! : rowJsonPlain ? json : JSON.stringify(JSON.parse(json)));
  }
}

// ---------------------------------------------------------------------------------------
// Signal table.
// ---------------------------------------------------------------------------------------

export interface SignalTable {
  db: string;
  table: string;
}

export function parseSignalTable(s: string | undefined): SignalTable {
  const { db, table } = splitName(s ?? DEFAULT_SIGNAL_TABLE);
  return { db, table };
}

/** Preflight: whether the user can create and write the signal table (warnings). */
export async function checkSignalTable(c: mysql.Connection, sig: SignalTable): Promise<PreflightProblem[]> {
  let grants = '';
  try {
    const g = await mysqlQuery<Record<string, string>>(c, 'SHOW GRANTS');
    grants = g.map((r) => String(Object.values(r)[0])).join('\n');
  } catch {
    return [];
  }
  const lines = grants.split('\n').filter((l) => {
    const m = / ON (\S+) TO /i.exec(l);
    if (!m) return false;
    const on = m[1]!.replace(/`/g, '');
    return on === '*.*' || on === `${sig.db}.*` || on === `${sig.db}.${sig.table}`;
  });
  const text = lines.join('\n').toUpperCase();
  const all = /ALL PRIVILEGES/.test(text);
  const missing = ['CREATE', 'INSERT', 'DELETE'].filter((p) => !all && !new RegExp(`\\b${p}\\b`).test(text));
  if (!missing.length) return [];
  const [{ u } = { u: 'current_user' }] = await mysqlQuery<{ u: string }>(c, 'SELECT CURRENT_USER() AS u').catch(() => [{ u: 'current_user' }]);
  const who = String(u).replace(/^(.*)@(.*)$/, "'$1'@'$2'");
  return [
    {
      code: ErrorCodes.MYSQL_SIGNAL_TABLE,
      severity: 'warning',
      message: `user ${who} lacks ${missing.join(', ')} on ${sig.db}.*: snapshots write their watermarks into the signal table ${sig.db}.${sig.table}`,
      fix: `GRANT CREATE, INSERT, DELETE ON ${ident(sig.db)}.* TO ${who}; (or create the table yourself and grant INSERT, DELETE on it; source.signal_table names it)`,
    },
  ];
}

/** Maps privilege errors to a coded, non-retryable error. */
function signalError(err: unknown, sig: SignalTable): unknown {
  const n = errno(err);
  if (n === 1142 || n === 1044 || n === 1227 || n === 1045) {
    return new TributaryError(ErrorCodes.SNAPSHOT_PRIVILEGE, `cannot write snapshot watermarks into ${sig.db}.${sig.table}: ${errorMessage(err)}`, {
      fix: `GRANT CREATE, INSERT, DELETE ON ${ident(sig.db)}.* TO the source user (or point source.signal_table at a table it may write)`,
      cause: err,
    });
  }
  return err;
}

/** Maps "SELECT command denied" to a coded error naming the grant (retried with backoff by the coordinator). */
function readError(err: unknown, table: string): unknown {
  const n = errno(err);
  if (n !== 1142 && n !== 1143) return err;
  const { db, table: t } = splitName(table);
  return new TributaryError(ErrorCodes.SNAPSHOT_PRIVILEGE, `cannot read ${table} for the snapshot: ${errorMessage(err)}`, {
    fix: `GRANT SELECT ON ${ident(db)}.${ident(t)} TO the source user`,
    cause: err,
  });
}

// ---------------------------------------------------------------------------------------
// The support.
// ---------------------------------------------------------------------------------------

export interface MysqlSnapshotOptions {
  url: string;
  include: readonly string[];
  exclude: readonly string[] | undefined;
  keyColumns: Record<string, string[]> | undefined;
  signal: SignalTable;
  /** Told the key of every table without a primary key, so streamed events carry the same key. */
  onKey?: (table: string, key: string[]) => void;
  /**
   * How chunk rows are read: `bytes` (the default) writes JSON text from the protocol bytes
   * (snapshot-rows.ts), `objects` goes through mysql2's row objects. Tests compare the two.
   */
  rowPath?: 'bytes' | 'objects';
}

/** Rows of `information_schema.STATISTICS` grouped into indexes. */
interface IndexInfo {
  name: string;
  unique: boolean;
  cols: string[];
  nullable: boolean;
  functional: boolean;
}

export class MysqlSnapshotSupport implements SnapshotSupport {
  private readonly matches: (t: string) => boolean;
  private ensured?: Promise<void>;
  private lastCleanup = Date.now();

  constructor(private readonly o: MysqlSnapshotOptions) {
    this.matches = tableMatcher(o.include, o.exclude);
  }

  private async conn(): Promise<mysql.Connection> {
    let c: mysql.Connection;
    try {
      c = await new Promise<mysql.Connection>((resolve, reject) => {
        // mysql2 parses rows with generated code; these options make its values the decoder's
        // wherever they can be (int64 beyond 2^53 and DECIMAL as strings, dates as text, JSON
        // as text), and the few remaining columns are converted per table (converterFor).
        const conn = createConnection({
          uri: this.o.url, connectTimeout: 10_000, supportBigNumbers: true, bigNumberStrings: false, dateStrings: true,
          jsonStrings: true, decimalNumbers: false, charset: 'UTF8MB4_GENERAL_CI', multipleStatements: false,
        } as mysql.ConnectionOptions);
        conn.once('error', reject);
        conn.connect((err) => {
          if (err) {
            conn.destroy();
            reject(err);
            return;
          }
          conn.removeListener('error', reject);
          conn.on('error', () => undefined); // reported by the next query
          resolve(conn);
        });
      });
    } catch (err) {
      throw new TributaryError(ErrorCodes.MYSQL_CONNECT, `snapshot: cannot connect to MySQL/MariaDB: ${errorMessage(err)}`, {
        fix: 'check source.url and that the server accepts connections',
        cause: err,
        retryable: errno(err) !== 1045,
      });
    }
    // UTC, so TIMESTAMP text is UTC like the binlog's epoch seconds.
    await exec(c, "SET SESSION time_zone = '+00:00'");
    return c;
  }

  private isSignal(db: string, table: string): boolean {
    return db === this.o.signal.db && table === this.o.signal.table;
  }

  /** Captured base tables (db.table) with their TABLE_ROWS estimate. */
  private async captured(c: mysql.Connection): Promise<{ name: string; db: string; table: string; estimate: number }[]> {
    const rows = await mysqlQuery<{ db: string; t: string; n: string | number | null }>(
      c,
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, TABLE_ROWS AS n FROM information_schema.TABLES
        WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (${SYSTEM_DBS.map(quoteString).join(', ')})
        ORDER BY TABLE_SCHEMA, TABLE_NAME`,
    );
    return rows
      .filter((r) => !this.isSignal(r.db, r.t) && this.matches(`${r.db}.${r.t}`))
      .map((r) => ({ name: `${r.db}.${r.t}`, db: r.db, table: r.t, estimate: Number(r.n ?? 0) || 0 }));
  }

  private async indexes(c: mysql.Connection, dbs: string[]): Promise<Map<string, IndexInfo[]>> {
    const out = new Map<string, IndexInfo[]>();
    if (!dbs.length) return out;
    const rows = await mysqlQuery<{ db: string; t: string; i: string; nu: string | number; c: string | null; nl: string | null }>(
      c,
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, INDEX_NAME AS i, NON_UNIQUE AS nu, COLUMN_NAME AS c, NULLABLE AS nl
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN (${dbs.map(quoteString).join(', ')})
        ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    );
    for (const r of rows) {
      const k = `${r.db}.${r.t}`;
      let list = out.get(k);
      if (!list) out.set(k, (list = []));
      let ix = list.find((x) => x.name === r.i);
      if (!ix) list.push((ix = { name: r.i, unique: Number(r.nu) === 0, cols: [], nullable: false, functional: false }));
      if (r.c === null) ix.functional = true;
      else ix.cols.push(r.c);
      if (String(r.nl ?? '').toUpperCase() === 'YES') ix.nullable = true;
    }
    return out;
  }

  async tables(only?: string[]): Promise<SnapshotTable[]> {
    const c = await this.conn();
    try {
      let all = await this.captured(c);
      if (only) {
        const want = new Set<string>();
        for (const t of only) {
          const hits = t.includes('.') ? all.filter((x) => x.name === t) : all.filter((x) => x.table === t);
          if (hits.length !== 1) {
            throw new TributaryError(
              ErrorCodes.SNAPSHOT_TABLE_UNKNOWN,
              hits.length ? `table name ${t} is ambiguous: ${hits.map((h) => h.name).join(', ')}` : `table ${t} is not captured by this pipeline`,
              { fix: 'name a base table that source.tables includes, as db.table' },
            );
          }
          want.add(hits[0]!.name);
        }
        all = all.filter((x) => want.has(x.name));
      }
      const dbs = [...new Set(all.map((t) => t.db))];
      const idx = await this.indexes(c, dbs);
      const colRows = dbs.length
        ? await mysqlQuery<{ db: string; t: string; n: string; dt: string; cs: string | null; coll: string | null; nl: string }>(
            c,
            `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, COLUMN_NAME AS n, DATA_TYPE AS dt, CHARACTER_SET_NAME AS cs, COLLATION_NAME AS coll, IS_NULLABLE AS nl
               FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (${dbs.map(quoteString).join(', ')})`,
          )
        : [];
      const cols = new Map<string, Map<string, { dt: string; cs: string | null; coll: string | null; nullable: boolean }>>();
      for (const r of colRows) {
        const k = `${r.db}.${r.t}`;
        let m = cols.get(k);
        if (!m) cols.set(k, (m = new Map()));
        m.set(r.n, { dt: String(r.dt).toLowerCase(), cs: r.cs, coll: r.coll, nullable: String(r.nl).toUpperCase() === 'YES' });
      }
      const out: SnapshotTable[] = [];
      for (const t of all) {
        const ixs = idx.get(t.name) ?? [];
        const tcols = cols.get(t.name) ?? new Map();
        const pk = ixs.find((x) => x.name === 'PRIMARY');
        const configured = this.o.keyColumns?.[t.name];
        let key: string[];
        let keyKind: ChunkKeyKind;
        if (pk && !pk.functional) {
          key = pk.cols;
          keyKind = 'pk';
        } else if (configured?.length) {
          const missing = configured.filter((k) => !tcols.has(k));
          if (missing.length) {
            throw new TributaryError(ErrorCodes.SNAPSHOT_KEY_COLUMNS, `key_columns for ${t.name} name missing columns: ${missing.join(', ')}`, { fix: `use existing columns of ${t.name}` });
          }
          const nullable = configured.filter((k) => tcols.get(k)!.nullable);
          if (nullable.length) {
            throw new TributaryError(
              ErrorCodes.SNAPSHOT_KEY_COLUMNS,
              `key_columns for ${t.name} include nullable column(s) ${nullable.join(', ')}: rows where they are NULL cannot be paged by key`,
              { fix: `name NOT NULL columns that identify a row of ${t.name}, or make ${nullable.join(', ')} NOT NULL` },
            );
          }
          key = configured;
          keyKind = 'configured';
        } else {
          // The first UNIQUE index whose columns are all NOT NULL (fewest columns, then by name).
          const u = ixs
            .filter((x) => x.unique && !x.nullable && !x.functional && x.cols.length)
            .sort((a, b) => a.cols.length - b.cols.length || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0];
          if (!u) {
            throw new TributaryError(
              ErrorCodes.SNAPSHOT_NO_KEY,
              `table ${t.name} has no primary key or unique key whose columns are all NOT NULL, so it cannot be read in key chunks`,
              { fix: `set source.key_columns: { "${t.name}": [col, ...] } to NOT NULL columns that identify a row (or add a primary key)` },
            );
          }
          key = u.cols;
          keyKind = 'unique';
        }
        if (keyKind !== 'pk') this.o.onKey?.(t.name, key);
        const keyTypes = key.map((k) => {
          const ci = tcols.get(k);
          return ci ? keyTypeFor(ci.dt, ci.cs, ci.coll) : 'bin';
        });
        out.push({ name: t.name, key, keyKind, keyTypes, estimate: t.estimate });
      }
      return out;
    } finally {
      c.destroy();
    }
  }

  /**
   * The key of every captured table without a primary key (configured key_columns, else the
   * first NOT NULL unique key), for streamed events: they then carry the key snapshot rows carry.
   */
  async fallbackKeys(): Promise<Map<string, string[]>> {
    const c = await this.conn();
    try {
      const all = await this.captured(c);
      const idx = await this.indexes(c, [...new Set(all.map((t) => t.db))]);
      const out = new Map<string, string[]>();
      for (const t of all) {
        const ixs = idx.get(t.name) ?? [];
        if (ixs.some((x) => x.name === 'PRIMARY')) continue;
        const configured = this.o.keyColumns?.[t.name];
        if (configured?.length) {
          out.set(t.name, configured);
          continue;
        }
        const u = ixs
          .filter((x) => x.unique && !x.nullable && !x.functional && x.cols.length)
          .sort((a, b) => a.cols.length - b.cols.length || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0];
        if (u) out.set(t.name, u.cols);
      }
      return out;
    } finally {
      c.destroy();
    }
  }

  async plan(table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]> {
    const c = await this.conn();
    try {
      return await filtered(c, where, () => this.planOn(c, table, chunkRows, where));
    } finally {
      c.destroy();
    }
  }

  async checkFilter(table: SnapshotTable, where: string): Promise<void> {
    assertSafeFilter(where, 'mysql');
    const c = await this.conn();
    try {
      await exec(c, 'START TRANSACTION READ ONLY');
      // Planned, not run: a syntax error, an unknown column or a bad function fails here.
      await rawQuery(c, `EXPLAIN SELECT 1 FROM ${qname(table.name)} WHERE (${where})`);
    } catch (err) {
      // A server error (it has a SQLSTATE and leaves the connection usable) is the filter's fault.
      const e = err as { sqlState?: string; fatal?: boolean };
      if (e.sqlState && !e.fatal) throw filterRejected(table.name, err);
      throw err;
    } finally {
      await exec(c, 'ROLLBACK').catch(() => undefined);
      c.destroy();
    }
  }

  private async planOn(c: mysql.Connection, table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]> {
    const kts = table.keyTypes ?? table.key.map(() => 'bin');
    const order = table.key.map((k) => ident(k)).join(', ');
    const bexprs = table.key.map((k, i) => `${boundaryExpr(k, kts[i]!)} AS ${ident(`b${i}`)}`).join(', ');
    const bcols = table.key.map((_, i) => ident(`b${i}`)).join(', ');
    const w = where ? ` WHERE (${where})` : '';
    const text = (r: (Buffer | null)[]) => r.map((b) => (b === null ? null : b.toString('latin1')));
    let bounds: (string | null)[][];
    try {
      // Every chunkRows-th key, numbered on the server: only the boundaries travel.
      const r = await rawQuery(
        c,
        `SELECT ${bcols} FROM (SELECT ${bexprs}, ROW_NUMBER() OVER (ORDER BY ${order}) AS rn__ FROM ${qname(table.name)}${w}) s WHERE rn__ % ${Math.floor(chunkRows)} = 0 ORDER BY rn__`,
      );
      bounds = r.rows.map(text);
    } catch (err) {
      if (errno(err) !== 1064) throw err;
      // No window functions (MySQL 5.7): walk the index, one boundary per query.
      bounds = [];
      let prev: (string | null)[] | null = null;
      for (;;) {
        const conds = [prev ? rowCompare(table.key, kts, prev, '>') : '', where ? `(${where})` : ''].filter(Boolean);
        const r = await rawQuery(
          c,
          `SELECT ${bexprs} FROM ${qname(table.name)}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''} ORDER BY ${order} LIMIT 1 OFFSET ${Math.floor(chunkRows) - 1}`,
        );
        if (!r.rows.length) break;
        prev = text(r.rows[0]!);
        bounds.push(prev);
      }
    }
    if (bounds.some((b) => b.some((v) => v === null))) {
      throw new TributaryError(ErrorCodes.SNAPSHOT_NO_KEY, `key of ${table.name} (${table.key.join(', ')}) holds NULLs: it cannot be paged`, {
        fix: `set source.key_columns for ${table.name} to NOT NULL columns`,
      });
    }
    if (bounds.length) {
      // When the row count is a multiple of chunkRows the open-ended last chunk would be
      // empty; fold it into the one before, so the final chunk (which carries the
      // snapshot's "last" row) has rows.
      const last = bounds[bounds.length - 1]! as string[];
      const more = await rawQuery(c, `SELECT 1 FROM ${qname(table.name)} WHERE ${rowCompare(table.key, kts, last, '>')}${where ? ` AND (${where})` : ''} LIMIT 1`);
      if (!more.rows.length) bounds.pop();
    }
    const chunks: ChunkBounds[] = [];
    let lo: JsonValue[] | null = null;
    for (const b of bounds) {
      chunks.push({ lo, hi: b });
      lo = b;
    }
    chunks.push({ lo, hi: null });
    return chunks;
  }

  async planner(): Promise<ChunkPlanner> {
    const c = await this.conn();
    let closed = false;
    return {
      async next(table, lo, chunkRows, where) {
        const kts = table.keyTypes ?? table.key.map(() => 'bin');
        const order = table.key.map((k) => ident(k)).join(', ');
        const bexprs = table.key.map((k, i) => `${boundaryExpr(k, kts[i]!)} AS ${ident(`b${i}`)}`).join(', ');
        const conds = [lo ? rowCompare(table.key, kts, lo, '>') : '', where ? `(${where})` : ''].filter(Boolean);
        // An index probe: the chunkRows-th key after lo, and whether any row follows it (a
        // chunk ending at the very last row takes the open end instead, so no empty chunk
        // trails behind it). Boundaries come in the exact text form keyLiteral writes back.
        const r = await filtered(c, where, () =>
          rawQuery(c, `SELECT ${bexprs} FROM ${qname(table.name)}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''} ORDER BY ${order} LIMIT 2 OFFSET ${Math.floor(chunkRows) - 1}`),
        );
        if (r.rows.length < 2) return null;
        const hi = r.rows[0]!.map((b) => (b === null ? null : b.toString('latin1')));
        if (hi.some((v) => v === null)) {
          throw new TributaryError(ErrorCodes.SNAPSHOT_NO_KEY, `key of ${table.name} (${table.key.join(', ')}) holds NULLs: it cannot be paged`, {
            fix: `set source.key_columns for ${table.name} to NOT NULL columns`,
          });
        }
        return hi;
      },
      async close() {
        if (closed) return;
        closed = true;
        await new Promise<void>((r) => c.end(() => r())).catch(() => c.destroy());
      },
    };
  }

  /** Creates the signal table once per process (when it is missing). */
  private ensureSignal(c: mysql.Connection): Promise<void> {
    return (this.ensured ??= (async () => {
      const { db, table } = this.o.signal;
      const have = await mysqlQuery(c, `SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(db)} AND TABLE_NAME = ${quoteString(table)}`);
      if (have.length) return;
      await exec(c, `CREATE DATABASE IF NOT EXISTS ${ident(db)}`);
      await exec(
        c,
        `CREATE TABLE IF NOT EXISTS ${ident(db)}.${ident(table)} (id VARCHAR(190) NOT NULL, mark VARCHAR(8) NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (id, mark)) ENGINE=InnoDB DEFAULT CHARSET=ascii`,
      );
    })().catch((err) => {
      this.ensured = undefined;
      throw signalError(err, this.o.signal);
    }));
  }

  async reader(): Promise<SnapshotReader> {
    const c = await this.conn();
    const plans = new Map<string, TableReadPlan>();
    const sig = `${ident(this.o.signal.db)}.${ident(this.o.signal.table)}`;
    let closed = false;
    const self = this;
    const select = async (table: SnapshotTable, conds: string[], retry: boolean, out: RowSink): Promise<void> => {
      let plan = plans.get(table.name);
      if (!plan) {
        const cols = await columnInfo(c, table.name);
        // information_schema lists no column of a table the user may not read.
        if (!cols.length) throw readError(Object.assign(new Error(`no column of ${table.name} is visible to the user (missing SELECT, or the table was dropped)`), { errno: 1142 }), table.name);
        plans.set(table.name, (plan = readPlan(cols)));
      }
      const order = table.key.map((k) => ident(k)).join(', ');
      const sql = `SELECT ${plan.select} FROM ${qname(table.name)}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''}${order ? ` ORDER BY ${order}` : ''}`;
      try {
        if (plan.fast !== false && self.o.rowPath !== 'objects') {
          const p = plan;
          const written = await readChunkRows(
            c,
            sql,
            (fields) => {
              const sig = fieldSig(fields);
              if (p.writer?.sig !== sig) p.writer = RowWriter.for(fields, p.byName, table.key, converterFor);
              return p.writer;
            },
            out,
          );
          if (written) return;
          // A column the byte path has no writer for: this table reads as objects from now on.
          plan.fast = false;
        }
        return await objectRows(c, sql, table, plan, out);
      } catch (err) {
        // 1054: unknown column (before any row): the table changed since the plan was made.
        if (retry && errno(err) === 1054) {
          plans.delete(table.name);
          return select(table, conds, false, out);
        }
        throw readError(err, table.name);
      }
    };
    const readInto = (table: SnapshotTable, chunk: ChunkBounds, where: string | null, out: RowSink): Promise<void> => {
      const kts = table.keyTypes ?? table.key.map(() => 'bin');
      const conds: string[] = [];
      if (chunk.lo) conds.push(rowCompare(table.key, kts, chunk.lo, '>'));
      if (chunk.hi) conds.push(rowCompare(table.key, kts, chunk.hi, '<='));
      if (where) conds.push(`(${where})`);
      return filtered(c, where, () => select(table, conds, true, out));
    };
    return {
      async watermark(id, mark) {
        await self.ensureSignal(c);
        try {
          await exec(c, `INSERT INTO ${sig} (id, mark) VALUES (?, ?)`, [id, mark]);
        } catch (err) {
          const n = errno(err);
          if (n !== 1146 && n !== 1049) throw signalError(err, self.o.signal);
          // Dropped under us: create it again, once.
          self.ensured = undefined;
          await self.ensureSignal(c);
          await exec(c, `INSERT INTO ${sig} (id, mark) VALUES (?, ?)`, [id, mark]).catch((e: unknown) => {
            throw signalError(e, self.o.signal);
          });
        }
        if (mark === 'high' && Date.now() - self.lastCleanup > 60_000) {
          // The binlog keeps the inserts; the rows themselves are only needed until written.
          self.lastCleanup = Date.now();
          await exec(c, `DELETE FROM ${sig} WHERE created_at < CURRENT_TIMESTAMP(6) - INTERVAL 10 MINUTE LIMIT 10000`).catch(() => undefined);
        }
      },
      async read(table, chunk, where) {
        const out = new StringRows();
        await readInto(table, chunk, where, out);
        return out.out;
      },
      readInto,
      async close() {
        if (closed) return;
        closed = true;
        await new Promise<void>((r) => c.end(() => r())).catch(() => c.destroy());
      },
    };
  }
}

/** The envelopes of MySQL/MariaDB snapshot rows, with the `source` block streamed events have. */
export function mysqlSnapshotEvent(pipeline: string, serverId: () => number): SnapshotEventBuilder {
  return snapshotEventBuilder((table, snapshot, at, now) => {
    const { db, table: name } = splitName(table.name);
    return {
      connector: 'mysql', name: pipeline, db, table: name, ts_ms: now, snapshot,
      file: at.file ?? '', pos: at.pos ?? 0, gtid: null, server_id: serverId(), row: 0,
    };
  });
}
