/**
 * Which tables a MySQL/MariaDB snapshot reads, and by which key: the captured base tables
 * (source.tables and exclude, never the system databases or the signal table), each with
 * its primary key, else `source.key_columns`, else the first UNIQUE index whose columns are
 * all NOT NULL (fewest columns, then by name), and each key column's type (chunk-keys.ts).
 */
import type mysql from 'mysql2';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { ChunkKeyKind, SnapshotTable } from '../../src/snapshot/types.js';
import { mysqlQuery } from './client.js';
import { keyTypeFor } from './chunk-keys.js';
import type { SignalTable } from './signal-table.js';
import { quoteString } from './snapshot-sql.js';

const SYSTEM_DBS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

/** What discovery needs of the source's settings. */
export interface DiscoveryScope {
  /** The source's table filter (tables, exclude). */
  matches: (table: string) => boolean;
  signal: SignalTable;
  keyColumns: Record<string, string[]> | undefined;
  /** Told the key of every table without a primary key, so streamed events carry the same key. */
  onKey?: (table: string, key: string[]) => void;
}

/** Rows of `information_schema.STATISTICS` grouped into indexes. */
interface IndexInfo {
  name: string;
  unique: boolean;
  cols: string[];
  nullable: boolean;
  functional: boolean;
}

/** Captured base tables (db.table) with their TABLE_ROWS estimate. */
async function captured(c: mysql.Connection, s: DiscoveryScope): Promise<{ name: string; db: string; table: string; estimate: number }[]> {
  const rows = await mysqlQuery<{ db: string; t: string; n: string | number | null }>(
    c,
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, TABLE_ROWS AS n FROM information_schema.TABLES
      WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (${SYSTEM_DBS.map(quoteString).join(', ')})
      ORDER BY TABLE_SCHEMA, TABLE_NAME`,
  );
  return rows
    .filter((r) => !(r.db === s.signal.db && r.t === s.signal.table) && s.matches(`${r.db}.${r.t}`))
    .map((r) => ({ name: `${r.db}.${r.t}`, db: r.db, table: r.t, estimate: Number(r.n ?? 0) || 0 }));
}

async function indexes(c: mysql.Connection, dbs: string[]): Promise<Map<string, IndexInfo[]>> {
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

/** The first UNIQUE index whose columns are all NOT NULL (fewest columns, then by name). */
function firstNotNullUnique(ixs: IndexInfo[]): IndexInfo | undefined {
  return ixs
    .filter((x) => x.unique && !x.nullable && !x.functional && x.cols.length)
    .sort((a, b) => a.cols.length - b.cols.length || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0];
}

/** The captured tables (or those of `only`, each naming one of them), with key and key types. */
export async function discoverTables(c: mysql.Connection, s: DiscoveryScope, only?: string[]): Promise<SnapshotTable[]> {
  let all = await captured(c, s);
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
  const idx = await indexes(c, dbs);
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
    const configured = s.keyColumns?.[t.name];
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
      const u = firstNotNullUnique(ixs);
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
    if (keyKind !== 'pk') s.onKey?.(t.name, key);
    const keyTypes = key.map((k) => {
      const ci = tcols.get(k);
      return ci ? keyTypeFor(ci.dt, ci.cs, ci.coll) : 'bin';
    });
    out.push({ name: t.name, key, keyKind, keyTypes, estimate: t.estimate });
  }
  return out;
}

/**
 * The key of every captured table without a primary key (configured key_columns, else the
 * first NOT NULL unique key), for streamed events: they then carry the key snapshot rows carry.
 */
export async function fallbackKeys(c: mysql.Connection, s: DiscoveryScope): Promise<Map<string, string[]>> {
  const all = await captured(c, s);
  const idx = await indexes(c, [...new Set(all.map((t) => t.db))]);
  const out = new Map<string, string[]>();
  for (const t of all) {
    const ixs = idx.get(t.name) ?? [];
    if (ixs.some((x) => x.name === 'PRIMARY')) continue;
    const configured = s.keyColumns?.[t.name];
    if (configured?.length) {
      out.set(t.name, configured);
      continue;
    }
    const u = firstNotNullUnique(ixs);
    if (u) out.set(t.name, u.cols);
  }
  return out;
}
