import type { DuckDBConnection } from '@duckdb/node-api';
import type { ValueKind } from '../postgres/plan.js';

/** Quote an SQL identifier. */
export function ident(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"';
}

/** Quote an SQL string literal. */
export function literal(s: string): string {
  return "'" + s.replace(/'/g, "''") + "'";
}

/** The DuckDB type a new column gets for an inferred value kind (docs/sinks/duckdb.md). */
export const DUCK_TYPES: Record<ValueKind, string> = {
  int: 'BIGINT',
  float: 'DOUBLE',
  bool: 'BOOLEAN',
  text: 'VARCHAR',
  json: 'JSON',
};

/** Hidden mirror column: the fence of the event that wrote the row (VARCHAR compares bytewise). */
export const FENCE_COL = '_tributary_fence';

/** History mode's own columns, in table order, with their types. */
export const HISTORY_COLS: ReadonlyArray<readonly [string, string]> = [
  ['_op', 'VARCHAR'],
  ['_position', 'VARCHAR'],
  ['_index', 'INTEGER'],
  ['_fence', 'VARCHAR'],
  ['_ts_ms', 'BIGINT'],
  ['_before', 'JSON'],
];

/** What the sink knows about one target table. Dropped after a failed transaction. */
export interface TargetTable {
  schema: string;
  name: string;
  /** `"schema"."name"`. */
  q: string;
  /** `schema.name`: the table's id in `_tributary_tombstones`. */
  id: string;
  /** Column → DuckDB type name; empty while not loaded or when the table is missing. */
  cols: Map<string, string>;
  loaded: boolean;
  /** Highest tombstone fence (null: none; undefined: unknown). See the postgres sink. */
  tombMax: string | null | undefined;
}

export type Mode = 'mirror' | 'history';

/** Run a statement and return its rows as JSON-safe objects. */
export async function rows<T>(c: DuckDBConnection, sql: string, params?: string[]): Promise<T[]> {
  const r = await c.runAndReadAll(sql, params);
  return r.getRowObjectsJson() as T[];
}

/**
 * Target-table metadata and DDL (create, add column, widen BIGINT to DOUBLE), run inside the
 * batch's transaction so a failed batch leaves no half-made table; `reset()` after a rollback.
 */
export class DuckCatalog {
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

  table(schema: string, name: string): TargetTable {
    const id = `${schema}.${name}`;
    let t = this.tables.get(id);
    if (!t) {
      t = { schema, name, q: `${ident(schema)}.${ident(name)}`, id, cols: new Map(), loaded: false, tombMax: undefined };
      this.tables.set(id, t);
    }
    return t;
  }

  reset(): void {
    this.tables.clear();
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
      const defs: string[] = [];
      if (this.mode === 'history') for (const [n, ty] of HISTORY_COLS) defs.push(`${ident(n)} ${ty}${n === '_fence' ? ' NOT NULL UNIQUE' : n === '_op' || n === '_position' ? ' NOT NULL' : ''}`);
      for (const [col, k] of kinds) defs.push(`${ident(col)} ${DUCK_TYPES[k]}${this.mode === 'mirror' && keyCols.includes(col) ? ' NOT NULL' : ''}`);
      if (this.mode === 'mirror') {
        for (const k of keyCols) if (!kinds.has(k)) defs.push(`${ident(k)} VARCHAR NOT NULL`);
        defs.push(`${ident(FENCE_COL)} VARCHAR NOT NULL`);
        defs.push(`PRIMARY KEY (${keyCols.map(ident).join(', ')})`);
      }
      await c.run(`CREATE TABLE IF NOT EXISTS ${t.q} (${defs.join(', ')})`);
      await this.load(c, t);
      t.tombMax = undefined;
    }
    // DuckDB takes one action per ALTER TABLE.
    const alters: string[] = [];
    if (this.mode === 'mirror' && !t.cols.has(FENCE_COL)) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(FENCE_COL)} VARCHAR DEFAULT ''`);
    if (this.mode === 'history') for (const [n, ty] of HISTORY_COLS) if (!t.cols.has(n)) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(n)} ${ty}`);
    for (const [col, k] of kinds) {
      const have = t.cols.get(col);
      if (have === undefined) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(col)} ${DUCK_TYPES[k]}`);
      // Widen before loading: DuckDB would silently round 2.5 into a BIGINT column.
      else if (k === 'float' && /^(BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT)$/.test(have)) alters.push(`ALTER COLUMN ${ident(col)} TYPE DOUBLE`);
    }
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
