import type pg from 'pg';
import { globToRegExp } from '../../src/runtime/table-filter.js';
import type { PgTypeInfo } from './values.js';

/** A leaf partition of a partitioned table, with its own replica identity. */
export interface Partition {
  schema: string;
  table: string;
  replicaIdentity: string;
  hasIdentity: boolean;
}

export interface CapturedTable {
  oid: number;
  schema: string;
  table: string;
  /** r: a table; p: a partitioned table, whose partitions are captured through it. */
  kind: 'r' | 'p';
  /** d default, n nothing, f full, i index */
  replicaIdentity: string;
  primaryKey: string[];
  /**
   * Postgres can publish this table's UPDATE and DELETE: it has a replica identity (FULL, a
   * primary key with DEFAULT, or USING INDEX). Without one, Postgres rejects those statements
   * in the application once the table is published. A partitioned table needs one on every
   * leaf partition, since the leaf is what an UPDATE changes.
   */
  hasIdentity: boolean;
  /** The leaf partitions of a partitioned table (empty for a plain table). */
  partitions: Partition[];
  /** The owning role, and whether the source role has its rights (is it, or a member of it). */
  owner: string;
  ownerIsSuperuser: boolean;
  owned: boolean;
  /** The source role may SELECT the table, and use its schema. */
  selectable: boolean;
  schemaUsage: boolean;
}

/** Quote an identifier for SQL. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qualified(t: { schema: string; table: string }): string {
  return `${ident(t.schema)}.${ident(t.table)}`;
}

/** `schema.table`, as configs and events name tables. */
export function tableName(t: { schema: string; table: string }): string {
  return `${t.schema}.${t.table}`;
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

interface TableRow {
  oid: string;
  schema: string;
  table: string;
  relkind: 'r' | 'p';
  relreplident: string;
  has_identity: boolean;
  pk: string[] | null;
  ancestors: string[] | null;
  partitions: Partition[] | null;
  owner: string;
  owner_super: boolean;
  owned: boolean;
  selectable: boolean;
  schema_usage: boolean;
}

/**
 * Tables matching the include/exclude globs, with replica identity, primary key, partitions
 * and the source role's rights on them.
 *
 * A partition whose partitioned parent (or any ancestor) also matches is left out: it is
 * captured through the parent, since the publication publishes through the partition root.
 * Listed too, it would be snapshotted twice (the parent's rows include it).
 */
export async function resolveTables(client: pg.ClientBase, include: readonly string[], exclude: readonly string[] | undefined): Promise<CapturedTable[]> {
  const r = await client.query<TableRow>(`
    WITH rel AS (
      SELECT c.oid, n.oid AS nsp, n.nspname, c.relname, c.relkind, c.relreplident, c.relispartition, c.relowner,
             CASE c.relreplident
               WHEN 'f' THEN true
               WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
               WHEN 'd' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
               ELSE false
             END AS has_identity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    )
    SELECT r.oid::int8::text AS oid, r.nspname AS schema, r.relname AS table, r.relkind, r.relreplident, r.has_identity,
           (SELECT array_agg(a.attname::text ORDER BY k.ord)
              FROM pg_index i
              CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = k.attnum
             WHERE i.indrelid = r.oid AND i.indisprimary) AS pk,
           CASE WHEN r.relispartition THEN ARRAY(SELECT a.relid::oid::int8::text FROM pg_partition_ancestors(r.oid) a WHERE a.relid <> r.oid) END AS ancestors,
           CASE WHEN r.relkind = 'p' THEN
             (SELECT json_agg(json_build_object('schema', l.nspname, 'table', l.relname, 'replicaIdentity', l.relreplident, 'hasIdentity', l.has_identity) ORDER BY l.nspname, l.relname)
                FROM pg_partition_tree(r.oid) t JOIN rel l ON l.oid = t.relid
               WHERE t.isleaf AND t.relid <> r.oid)
           END AS partitions,
           pg_get_userbyid(r.relowner) AS owner,
           (SELECT rolsuper FROM pg_roles WHERE oid = r.relowner) AS owner_super,
           pg_has_role(r.relowner, 'USAGE') AS owned,
           has_table_privilege(r.oid, 'SELECT') AS selectable,
           has_schema_privilege(r.nsp, 'USAGE') AS schema_usage
      FROM rel r
     ORDER BY 2, 3`);
  const inc = include.map(globToRegExp);
  const exc = (exclude ?? []).map(globToRegExp);
  const matched = r.rows.filter((t) => {
    const q = `${t.schema}.${t.table}`;
    return inc.some((x) => x.test(q)) && !exc.some((x) => x.test(q));
  });
  const oids = new Set(matched.map((t) => t.oid));
  return matched
    .filter((t) => !t.ancestors?.some((a) => oids.has(a)))
    .map((t) => {
      const partitions = t.partitions ?? [];
      return {
        oid: Number(t.oid),
        schema: t.schema,
        table: t.table,
        kind: t.relkind,
        replicaIdentity: t.relreplident,
        primaryKey: t.pk ?? [],
        hasIdentity: partitions.length ? partitions.every((p) => p.hasIdentity) : t.has_identity,
        partitions,
        owner: t.owner,
        ownerIsSuperuser: t.owner_super,
        owned: t.owned,
        selectable: t.selectable,
        schemaUsage: t.schema_usage,
      };
    });
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
