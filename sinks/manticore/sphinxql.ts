/**
 * SphinxQL plumbing: one mysql2 connection (the MySQL wire protocol, text queries only:
 * searchd has no prepared statements), literal escaping, and value conversion by the
 * attribute type `DESCRIBE` reports.
 */
import mysql from 'mysql2/promise';
import { ErrorCodes, TributaryError, type JsonValue } from '../../src/sdk/index.js';
// searchd unescapes backslash sequences inside a string literal, so both are escaped.
import { quoteBackslashLiteral as str } from '../../src/sdk/warehouse/index.js';

/** An identifier. SphinxQL has no quoting for index and column names: accept only safe ones. */
export function name(n: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) throw new TributaryError(ErrorCodes.SINK_CONFIG, `${what} ${JSON.stringify(n)} is not a valid Sphinx/Manticore identifier (letters, digits, _)`, { fix: `make the sink's ${what} (or the template that renders it) a name of letters, digits and _` });
  return n;
}

/** Column type as `DESCRIBE` prints it (Sphinx 2.2 and Manticore spell them the same way). */
export type AttrType = 'field' | 'uint' | 'bigint' | 'float' | 'bool' | 'timestamp' | 'string' | 'json' | 'mva' | 'mva64' | 'text' | 'other';

export function attrType(t: string): AttrType {
  const s = t.toLowerCase();
  if (s === 'field' || s === 'text') return 'field';
  if (s === 'uint' || s === 'integer') return 'uint';
  if (s === 'bigint') return 'bigint';
  if (s === 'float') return 'float';
  if (s === 'bool') return 'bool';
  if (s === 'timestamp') return 'timestamp';
  if (s === 'string') return 'string';
  if (s === 'json') return 'json';
  if (s === 'mva' || s === 'uint_set' || s === 'multi') return 'mva';
  if (s === 'mva64' || s === 'int64_set' || s === 'multi64') return 'mva64';
  return 'other';
}

/** Thrown by `literal` when a value cannot be stored in its column: the event is poison. */
export class ValueError extends Error {}

function intLiteral(v: JsonValue): string {
  if (typeof v === 'number' && Number.isFinite(v)) return String(Math.trunc(v));
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
  if (typeof v === 'string' && /^-?\d+\.\d*$/.test(v)) return v.split('.')[0]!;
  throw new ValueError(`${JSON.stringify(v)} is not an integer`);
}

/** The SQL literal for `v` in a column of type `t`; null becomes the type's empty value. */
export function literal(v: JsonValue | undefined, t: AttrType): string {
  if (v === undefined || v === null) {
    if (t === 'field' || t === 'string' || t === 'other') return "''";
    if (t === 'json') return "'{}'";
    if (t === 'mva' || t === 'mva64') return '()';
    return '0';
  }
  switch (t) {
    case 'field':
    case 'string':
    case 'other':
      return str(typeof v === 'string' ? v : JSON.stringify(v));
    case 'json':
      // A JSON attribute holds an object or array. A string that is JSON object/array text
      // (MariaDB's JSON type is LONGTEXT, so it arrives as text) is stored parsed; other
      // scalars are wrapped as {"value": v} so they survive.
      if (typeof v === 'object') return str(JSON.stringify(v));
      if (typeof v === 'string' && /^\s*[[{]/.test(v)) {
        try {
          return str(JSON.stringify(JSON.parse(v)));
        } catch {
          // not JSON after all: wrap below
        }
      }
      return str(JSON.stringify({ value: v }));
    case 'float':
      if (typeof v === 'number') return String(v);
      if (typeof v === 'string' && Number.isFinite(Number(v))) return String(Number(v));
      throw new ValueError(`${JSON.stringify(v)} is not a number`);
    case 'timestamp':
      if (typeof v === 'string' && !/^-?\d+$/.test(v)) {
        // ISO timestamps (with or without Z; without one is taken as UTC) and dates.
        const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) || /^\d{4}-\d\d-\d\d$/.test(v) ? v : v + 'Z');
        if (Number.isNaN(ms)) throw new ValueError(`${JSON.stringify(v)} is not a timestamp`);
        return String(Math.floor(ms / 1000));
      }
      return intLiteral(v);
    case 'mva':
    case 'mva64': {
      const arr = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',').filter(Boolean) : [v];
      return `(${arr.map(intLiteral).join(',')})`;
    }
    default:
      return intLiteral(v);
  }
}

export type Conn = mysql.Connection;

/** Open a SphinxQL connection. No database, no prepared statements, big ids as strings. */
export async function connect(url: string, timeoutMs: number): Promise<Conn> {
  const u = new URL(url);
  return mysql.createConnection({
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 9306),
    user: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    connectTimeout: timeoutMs,
    supportBigNumbers: true,
    bigNumberStrings: true,
    // searchd answers the handshake like MySQL 5.x but knows none of the session setup.
    multipleStatements: false,
  });
}
