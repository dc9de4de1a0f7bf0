import type pg from 'pg';
import { globToRegExp } from '../../src/runtime/table-filter.js';
import type { PgTypeInfo } from './values.js';

export interface CapturedTable {
  oid: number;
  schema: string;
  table: string;
  /** d default, n nothing, f full, i index */
  replicaIdentity: string;
  primaryKey: string[];
}

/** Quote an identifier for SQL. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qualified(t: { schema: string; table: string }): string {
  return `${ident(t.schema)}.${ident(t.table)}`;
}

/** Every type of the database, for building value decoders (a few hundred rows). */
export async function loadTypes(client: pg.ClientBase): Promise<Map<number, PgTypeInfo>> {
  const r = await client.query<{ oid: number; typname: string; typtype: string; typcategory: string; typelem: number; typbasetype: number; typdelim: string }>(
    'SELECT oid::int8::float8 AS oid, typname, typtype, typcategory, typelem::int8::float8 AS typelem, typbasetype::int8::float8 AS typbasetype, typdelim FROM pg_type',
  );
  const m = new Map<number, PgTypeInfo>();
  for (const t of r.rows) {
    m.set(Number(t.oid), { oid: Number(t.oid), name: t.typname, type: t.typtype, category: t.typcategory, elem: Number(t.typelem), base: Number(t.typbasetype), delim: t.typdelim });
  }
  return m;
}

/** Tables matching the include/exclude globs, with replica identity and primary key. */
export async function resolveTables(client: pg.ClientBase, include: readonly string[], exclude: readonly string[] | undefined): Promise<CapturedTable[]> {
  const r = await client.query<{ oid: string; schema: string; table: string; relreplident: string; pk: string[] | null }>(`
    SELECT c.oid::int8::text AS oid, n.nspname AS schema, c.relname AS table, c.relreplident,
           (SELECT array_agg(a.attname::text ORDER BY k.ord)
              FROM pg_index i
              CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
     ORDER BY 2, 3`);
  const inc = include.map(globToRegExp);
  const exc = (exclude ?? []).map(globToRegExp);
  return r.rows
    .filter((t) => {
      const q = `${t.schema}.${t.table}`;
      return inc.some((x) => x.test(q)) && !exc.some((x) => x.test(q));
    })
    .map((t) => ({ oid: Number(t.oid), schema: t.schema, table: t.table, replicaIdentity: t.relreplident, primaryKey: t.pk ?? [] }));
}

/**
 * Make the publication publish exactly the captured tables: create it when missing, add
 * tables that now match, drop tables that no longer do. It must exist before the slot is
 * created, or decoding fails with "publication does not exist".
 */
export async function syncPublication(client: pg.ClientBase, name: string, tables: CapturedTable[], create: boolean): Promise<'created' | 'updated' | 'unchanged'> {
  const exists = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
  const list = tables.map(qualified).join(', ');
  if (!exists.rowCount) {
    if (!create) throw new Error(`publication ${name} does not exist and source.create_publication is false`);
    await client.query(tables.length ? `CREATE PUBLICATION ${ident(name)} FOR TABLE ${list}` : `CREATE PUBLICATION ${ident(name)}`);
    return 'created';
  }
  const cur = await client.query<{ schemaname: string; tablename: string }>('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [name]);
  const have = new Set(cur.rows.map((r) => `${r.schemaname}.${r.tablename}`));
  const want = new Set(tables.map((t) => `${t.schema}.${t.table}`));
  const add = tables.filter((t) => !have.has(`${t.schema}.${t.table}`));
  const drop = cur.rows.filter((r) => !want.has(`${r.schemaname}.${r.tablename}`));
  if (add.length) await client.query(`ALTER PUBLICATION ${ident(name)} ADD TABLE ${add.map(qualified).join(', ')}`);
  if (drop.length) await client.query(`ALTER PUBLICATION ${ident(name)} DROP TABLE ${drop.map((r) => qualified({ schema: r.schemaname, table: r.tablename })).join(', ')}`);
  return add.length || drop.length ? 'updated' : 'unchanged';
}

export interface SlotInfo {
  exists: boolean;
  confirmedFlush: string | null;
  walStatus: string | null;
  plugin: string | null;
  database: string | null;
}

export async function slotInfo(client: pg.ClientBase, slot: string): Promise<SlotInfo> {
  const r = await client.query<{ confirmed_flush_lsn: string | null; wal_status: string | null; plugin: string | null; database: string | null }>(
    'SELECT confirmed_flush_lsn::text, wal_status, plugin, database FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const row = r.rows[0];
  return row
    ? { exists: true, confirmedFlush: row.confirmed_flush_lsn, walStatus: row.wal_status, plugin: row.plugin, database: row.database }
    : { exists: false, confirmedFlush: null, walStatus: null, plugin: null, database: null };
}
