/**
 * The SQL text of MySQL/MariaDB snapshots: quoting names and strings, and running statements
 * on a snapshot connection (raw values, row objects, no result; a user filter inside a READ
 * ONLY transaction).
 */
import type mysql from 'mysql2';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { assertSafeFilter } from '../../src/snapshot/filter.js';

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

export function qname(name: string): string {
  const { db, table } = splitName(name);
  return `${ident(db)}.${ident(table)}`;
}

export function quoteString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\0/g, '\\0')}'`;
}

/** One column of a result set, from its column definition packet (mysql2's field). */
export interface RawField {
  name: string;
  columnType: number;
  flags: number;
  characterSet: number;
}

/** Rows as arrays of raw bytes (no conversion at all), with the result's fields. */
export function rawQuery(c: mysql.Connection, sql: string): Promise<{ rows: (Buffer | null)[][]; fields: RawField[] }> {
  return new Promise((resolve, reject) => {
    c.query({ sql, typeCast: false, rowsAsArray: true }, (err, rows, fields) =>
      err ? reject(err) : resolve({ rows: rows as unknown as (Buffer | null)[][], fields: (fields ?? []) as unknown as RawField[] }),
    );
  });
}

/** Rows as objects, values as mysql2 parses them with the connection's options. */
export function objectQuery(c: mysql.Connection, sql: string): Promise<{ rows: Record<string, unknown>[]; fields: RawField[] }> {
  return new Promise((resolve, reject) => {
    c.query({ sql }, (err, rows, fields) =>
      err ? reject(err) : resolve({ rows: rows as unknown as Record<string, unknown>[], fields: (fields ?? []) as unknown as RawField[] }),
    );
  });
}

export function exec(c: mysql.Connection, sql: string, params?: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => c.query(sql, params ?? [], (err) => (err ? reject(err) : resolve())));
}

/** The server's error number of `err` (mysql2's `errno`), or null. */
export const errno = (err: unknown): number | null => (err as { errno?: number }).errno ?? null;

/**
 * Run `fn` on `c` inside a READ ONLY transaction when a user filter is part of its SQL (and
 * plainly otherwise: unfiltered reads need no extra round trips). With multi-statements off
 * on every snapshot connection, a filter can neither start a second statement nor write.
 */
export async function filtered<T>(c: mysql.Connection, where: string | null, fn: () => Promise<T>): Promise<T> {
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
