import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent as ident, TableCache, type TargetTable, type ValueKind, type WarehouseDialect, type WarehouseMode } from '../../src/sdk/warehouse/index.js';

/** DuckDB column types (docs/sinks/duckdb.md). VARCHAR compares bytewise, as fences need. */
export const DUCK_DIALECT: WarehouseDialect = {
  types: { int: 'BIGINT', float: 'DOUBLE', bool: 'BOOLEAN', text: 'VARCHAR', json: 'JSON' },
  historyCols: [
    ['_op', 'VARCHAR'],
    ['_position', 'VARCHAR'],
    ['_index', 'INTEGER'],
    ['_fence', 'VARCHAR'],
    ['_ts_ms', 'BIGINT'],
    ['_before', 'JSON'],
  ],
  text: 'VARCHAR',
  fence: 'VARCHAR',
  // DuckDB cannot add a column with a constraint.
  fenceAdded: `VARCHAR DEFAULT ''`,
  isInteger: (type) => /^(BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT)$/.test(type),
};

/** Run a statement and return its rows as JSON-safe objects. */
export async function rows<T>(c: DuckDBConnection, sql: string, params?: string[]): Promise<T[]> {
  const r = await c.runAndReadAll(sql, params);
  return r.getRowObjectsJson() as T[];
}

/**
 * Target-table metadata and DDL (create, add column, widen BIGINT to DOUBLE), run inside the
 * batch's transaction so a failed batch leaves no half-made table; `reset()` after a rollback.
 */
export class DuckCatalog extends TableCache {
  constructor(mode: WarehouseMode, meta: string) {
    super(mode, meta, DUCK_DIALECT);
  }

  async setup(c: DuckDBConnection): Promise<void> {
    await c.run(`CREATE SCHEMA IF NOT EXISTS ${ident(this.meta)}`);
    await c.run(`CREATE TABLE IF NOT EXISTS ${this.positions} (
      pipeline VARCHAR NOT NULL, sink VARCHAR NOT NULL, position VARCHAR NOT NULL, fence VARCHAR NOT NULL,
      updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, sink))`);
    await c.run(`CREATE TABLE IF NOT EXISTS ${this.tombstones} (
      tbl VARCHAR NOT NULL, key VARCHAR NOT NULL, fence VARCHAR NOT NULL, PRIMARY KEY (tbl, key))`);
  }

  async load(c: DuckDBConnection, t: TargetTable): Promise<void> {
    const r = await rows<{ column_name: string; data_type: string }>(
      c,
      'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
      [t.schema, t.name],
    );
    t.cols = new Map(r.map((x) => [x.column_name, x.data_type]));
    t.loaded = true;
  }

  /** Make `t` exist with a column for every kind in `kinds`; null-only columns wait for a value. */
  async ensure(c: DuckDBConnection, t: TargetTable, kinds: Map<string, ValueKind>, keyCols: string[]): Promise<void> {
    if (!t.loaded) await this.load(c, t);
    if (t.cols.size === 0) {
      await c.run(`CREATE SCHEMA IF NOT EXISTS ${ident(t.schema)}`);
      const defs = this.createDefs(kinds, keyCols);
      await c.run(`CREATE TABLE IF NOT EXISTS ${t.q} (${defs.join(', ')})`);
      await this.load(c, t);
      t.tombMax = undefined;
    }
    // DuckDB takes one action per ALTER TABLE.
    const alters = this.alterActions(t, kinds);
    for (const a of alters) await c.run(`ALTER TABLE ${t.q} ${a}`);
    if (alters.length) await this.load(c, t);
  }

  async tombMax(c: DuckDBConnection, t: TargetTable): Promise<string | null> {
    if (t.tombMax === undefined) {
      const r = await rows<{ m: string | null }>(c, `SELECT max(fence) AS m FROM ${this.tombstones} WHERE tbl = $1`, [t.id]);
      t.tombMax = r[0]?.m ?? null;
    }
    return t.tombMax;
  }
}
