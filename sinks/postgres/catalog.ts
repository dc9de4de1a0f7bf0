import type pg from 'pg';
import type { ValueKind } from './plan.js';

/** Quote an SQL identifier. */
export function ident(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"';
}

/** The Postgres type a new column gets for an inferred value kind (docs/sinks/postgres.md). */
export const PG_TYPES: Record<ValueKind, string> = {
  int: 'bigint',
  float: 'double precision',
  bool: 'boolean',
  text: 'text',
  json: 'jsonb',
};

/** Hidden mirror column: the fence of the event that wrote the row. */
export const FENCE_COL = '_tributary_fence';

/** History mode's own columns, in table order, with their types. */
export const HISTORY_COLS: ReadonlyArray<readonly [string, string]> = [
  ['_op', 'text'],
  ['_position', 'text'],
  ['_index', 'integer'],
  ['_fence', 'text COLLATE "C"'],
  ['_ts_ms', 'bigint'],
  ['_before', 'jsonb'],
];

/** Transaction-scoped advisory lock that serializes Tributary DDL on one target database. */
const DDL_LOCK = 0x7472_6962; // "trib"

/** What the sink knows about one target table. Reset after a failed transaction. */
export interface TargetTable {
  schema: string;
  name: string;
  /** `"schema"."name"`. */
  q: string;
  /** `schema.name`: the table's id in `_tributary_tombstones`. */
  id: string;
  /** Column → SQL type as `format_type` prints it; empty while not loaded or missing. */
  cols: Map<string, string>;
  loaded: boolean;
  /**
   * Highest tombstone fence of the table (null: none), or undefined when unknown. While every
   * incoming fence is above it, the tombstone check is skipped: that is the steady state, so
   * only replays pay for the lookup.
   */
  tombMax: string | null | undefined;
}

export type Mode = 'mirror' | 'history';

/**
 * Target-table metadata and the DDL that keeps tables in step with the source: create when
 * missing, add new columns, widen bigint to double precision when a fractional number shows
 * up. DDL runs inside the batch's transaction, so a failed batch leaves no half-made table;
 * the caches are then dropped with `reset()` and reloaded.
 */
export class PgCatalog {
  private tables = new Map<string, TargetTable>();

  constructor(
    private readonly mode: Mode,
    private readonly meta: string,
  ) {}

  get tombstones(): string {
    return `${ident(this.meta)}._tributary_tombstones`;
  }

  get positions(): string {
    return `${ident(this.meta)}._tributary_positions`;
  }

  /** The cached entry for a target table (not yet loaded). */
  table(schema: string, name: string): TargetTable {
    const id = `${schema}.${name}`;
    let t = this.tables.get(id);
    if (!t) {
      t = { schema, name, q: `${ident(schema)}.${ident(name)}`, id, cols: new Map(), loaded: false, tombMax: undefined };
      this.tables.set(id, t);
    }
    return t;
  }

  /** Forget everything (after a rollback, the cache may describe DDL that never happened). */
  reset(): void {
    this.tables.clear();
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
      const defs: string[] = [];
      if (this.mode === 'history') for (const [n, ty] of HISTORY_COLS) defs.push(`${ident(n)} ${ty}${n === '_fence' ? ' NOT NULL UNIQUE' : n === '_op' || n === '_position' ? ' NOT NULL' : ''}`);
      for (const [col, k] of kinds) defs.push(`${ident(col)} ${PG_TYPES[k]}${this.mode === 'mirror' && keyCols.includes(col) ? ' NOT NULL' : ''}`);
      if (this.mode === 'mirror') {
        for (const k of keyCols) if (!kinds.has(k)) defs.push(`${ident(k)} text NOT NULL`);
        defs.push(`${ident(FENCE_COL)} text COLLATE "C" NOT NULL`);
        defs.push(`PRIMARY KEY (${keyCols.map(ident).join(', ')})`);
      }
      await c.query(`CREATE TABLE IF NOT EXISTS ${t.q} (${defs.join(', ')})`);
      await this.load(c, t);
      t.tombMax = undefined;
    }
    const alters: string[] = [];
    if (this.mode === 'mirror' && !t.cols.has(FENCE_COL)) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(FENCE_COL)} text COLLATE "C" NOT NULL DEFAULT ''`);
    if (this.mode === 'history') for (const [n, ty] of HISTORY_COLS) if (!t.cols.has(n)) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(n)} ${ty}`);
    for (const [col, k] of kinds) {
      const have = t.cols.get(col);
      if (have === undefined) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(col)} ${PG_TYPES[k]}`);
      // A float column whose first values happened to be whole numbers was created bigint.
      else if (k === 'float' && (have === 'bigint' || have === 'integer' || have === 'smallint')) alters.push(`ALTER COLUMN ${ident(col)} TYPE double precision`);
    }
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
