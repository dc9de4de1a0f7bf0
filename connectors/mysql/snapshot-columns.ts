/**
 * What a MySQL/MariaDB snapshot reads of a table's columns: information_schema's view of each
 * column beyond the result metadata (FLOAT, GEOMETRY, VECTOR, charsets the server does not
 * convert, MariaDB JSON), and the SELECT expression each column is read with.
 */
import type mysql from 'mysql2';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { mysqlQuery } from './client.js';
import { ident, quoteString, splitName } from './snapshot-sql.js';

/** What information_schema says about a column, beyond the result metadata. */
export interface ColumnInfo {
  name: string;
  /** How it is selected and converted (see {@link selectFor}). */
  via: 'plain' | 'float' | 'bytes-text' | 'bytes-geometry' | 'bytes-vector';
  /** Collation id, for `bytes-text`. */
  collation: number | null;
  /** MySQL JSON, or MariaDB JSON (LONGTEXT with CHECK (json_valid(col))). */
  json: boolean;
}

/** Charsets whose text the server converts to utf8mb4 exactly as the binlog decoder does (values.ts `decodeText`). */
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
export function selectFor(col: ColumnInfo): string {
  const c = ident(col.name);
  return col.via === 'plain' ? c : col.via === 'float' ? `${c}+0E0 AS ${c}` : `CAST(${c} AS BINARY) AS ${c}`;
}

/** The columns of table `name` (db.table), in ordinal order (SNAPSHOT_TABLE_GONE when it has none). */
export async function columnInfo(c: mysql.Connection, name: string): Promise<ColumnInfo[]> {
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
