import type pg from 'pg';
import { quoteIdent as ident, TableCache, type TargetTable, type ValueKind, type WarehouseDialect, type WarehouseMode } from '../../src/sdk/warehouse/index.js';

/** Postgres column types (docs/sinks/postgres.md). */
export const PG_DIALECT: WarehouseDialect = {
  types: { int: 'bigint', float: 'double precision', bool: 'boolean', text: 'text', json: 'jsonb' },
  historyCols: [
    ['_op', 'text'],
    ['_position', 'text'],
    ['_index', 'integer'],
    ['_fence', 'text COLLATE "C"'],
    ['_ts_ms', 'bigint'],
    ['_before', 'jsonb'],
  ],
  text: 'text',
  fence: 'text COLLATE "C"',
  fenceAdded: `text COLLATE "C" NOT NULL DEFAULT ''`,
  isInteger: (type) => type === 'bigint' || type === 'integer' || type === 'smallint',
};

/** Transaction-scoped advisory lock that serializes Tributary DDL on one target database. */
const DDL_LOCK = 0x7472_6962; // "trib"

/**
 * Target-table metadata and the DDL that keeps tables in step with the source: create when
 * missing, add new columns, widen bigint to double precision when a fractional number shows
 * up. DDL runs inside the batch's transaction, so a failed batch leaves no half-made table;
 * the caches are then dropped with `reset()` and reloaded.
 */
export class PgCatalog extends TableCache {
  constructor(mode: WarehouseMode, meta: string) {
    super(mode, meta, PG_DIALECT);
  }

  /** Create the meta schema and tables. Idempotent. */
  async setup(c: pg.ClientBase): Promise<void> {
    await c.query('BEGIN');
    try {
      await c.query('SELECT pg_advisory_xact_lock($1)', [DDL_LOCK]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${ident(this.meta)}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${this.positions} (
        pipeline text NOT NULL, sink text NOT NULL, position text NOT NULL, fence text COLLATE "C" NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, sink))`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${this.tombstones} (
        tbl text NOT NULL, key text NOT NULL, fence text COLLATE "C" NOT NULL, PRIMARY KEY (tbl, key))`);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** Load the columns of `t` (none when the table does not exist). */
  async load(c: pg.ClientBase, t: TargetTable): Promise<void> {
    const r = await c.query<{ attname: string; type: string }>(
      `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [t.q],
    );
    t.cols = new Map(r.rows.map((x) => [x.attname, x.type]));
    t.loaded = true;
  }

  private async lockDdl(c: pg.ClientBase, locked: { v: boolean }): Promise<void> {
    if (locked.v) return;
    await c.query('SELECT pg_advisory_xact_lock($1)', [DDL_LOCK]);
    locked.v = true;
  }

  /**
   * Make `t` exist with a column for every kind in `kinds` (inside the caller's transaction).
   * Columns that were only ever null are not created yet: a missing column reads as NULL, and
   * it is added with the right type once a value arrives.
   */
  async ensure(c: pg.ClientBase, t: TargetTable, kinds: Map<string, ValueKind>, keyCols: string[]): Promise<void> {
    if (!t.loaded) await this.load(c, t);
    const locked = { v: false };
    if (t.cols.size === 0) {
      await this.lockDdl(c, locked);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${ident(t.schema)}`);
      const defs = this.createDefs(kinds, keyCols);
      await c.query(`CREATE TABLE IF NOT EXISTS ${t.q} (${defs.join(', ')})`);
      await this.load(c, t);
      t.tombMax = undefined;
    }
    const alters = this.alterActions(t, kinds);
    if (alters.length) {
      await this.lockDdl(c, locked);
      await c.query(`ALTER TABLE ${t.q} ${alters.join(', ')}`);
      await this.load(c, t);
    }
  }

  /** Highest tombstone fence of `t` (cached). */
  async tombMax(c: pg.ClientBase, t: TargetTable): Promise<string | null> {
    if (t.tombMax === undefined) {
      const r = await c.query<{ m: string | null }>(`SELECT max(fence) AS m FROM ${this.tombstones} WHERE tbl = $1`, [t.id]);
      t.tombMax = r.rows[0]?.m ?? null;
    }
    return t.tombMax;
  }
}
