/**
 * Target tables of a SQL warehouse sink: the table cache, the options of a batch writer, and
 * the DDL that keeps a table in step with the source (create when missing, add new columns,
 * widen an integer column when a fraction shows up). Each sink supplies its
 * {@link WarehouseDialect} and runs the statements its own way (postgres and duckdb do).
 */
import { renderTemplate, type SinkEvent } from '../index.js';
import type { ValueKind } from './infer.js';
import { quoteIdent as ident } from './quote.js';

/** `mirror`: the current row per key. `history`: every event appended as a row. */
export type WarehouseMode = 'mirror' | 'history';

/** Hidden mirror column: the fence of the event that wrote the row. */
export const FENCE_COL = '_tributary_fence';

/** What a sink knows about one target table. Dropped after a failed transaction. */
export interface TargetTable {
  schema: string;
  name: string;
  /** `"schema"."name"`. */
  q: string;
  /** `schema.name`: the table's id in `_tributary_tombstones`. */
  id: string;
  /** Column → SQL type as the database names it; empty while not loaded or when missing. */
  cols: Map<string, string>;
  loaded: boolean;
  /**
   * Highest tombstone fence of the table (null: none), or undefined when unknown. While every
   * incoming fence is above it, the tombstone check is skipped: that is the steady state, so
   * only replays pay for the lookup.
   */
  tombMax: string | null | undefined;
}

/** Options of a warehouse batch writer (from the sink's config, see `warehouseFields`). */
export interface WarehouseWriterOptions {
  mode: WarehouseMode;
  schema: string | undefined;
  table: string;
  pipeline: string;
  sink: string;
  maxRows: number;
}

/** The column types of one database. */
export interface WarehouseDialect {
  /** The type a new column gets for an inferred value kind. */
  types: Record<ValueKind, string>;
  /** History mode's own columns, in table order, with their types. */
  historyCols: ReadonlyArray<readonly [string, string]>;
  /** A key column no value has typed yet. */
  text: string;
  /** The fence column: text that compares bytewise. */
  fence: string;
  /** The fence column as added to an existing table (a default fills the old rows). */
  fenceAdded: string;
  /** Whether a column of `type` holds integers only (and must widen for a fraction). */
  isInteger(type: string): boolean;
}

/** Cached {@link TargetTable} entries and the meta tables' names. */
export class TableCache {
  private tables = new Map<string, TargetTable>();
  /** Source table (`SinkEvent.table`) → its target: the templates are rendered once per source table. */
  private bySource = new Map<string, TargetTable>();

  constructor(
    readonly mode: WarehouseMode,
    readonly meta: string,
    private readonly dialect: WarehouseDialect,
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

  /**
   * The cached entry for the target table of `e`'s source table: the `schema` template (by
   * default `{schema}`, the source schema or MySQL database) and the `table` template of the
   * sink's config, rendered with `renderTemplate`.
   */
  tableFor(e: SinkEvent, names: { schema?: string; table: string }): TargetTable {
    let t = this.bySource.get(e.table);
    if (!t) {
      t = this.table(renderTemplate(names.schema ?? '{schema}', e.event), renderTemplate(names.table, e.event));
      this.bySource.set(e.table, t);
    }
    return t;
  }

  /** Forget everything (after a rollback, the cache may describe DDL that never happened). */
  reset(): void {
    this.tables.clear();
    this.bySource.clear();
  }

  /**
   * The column definitions of a new table for `kinds`. Columns that were only ever null are
   * left out: a missing column reads as NULL, and it is added once a value types it.
   */
  createDefs(kinds: Map<string, ValueKind>, keyCols: string[]): string[] {
    const d = this.dialect;
    const defs: string[] = [];
    if (this.mode === 'history') for (const [n, ty] of d.historyCols) defs.push(`${ident(n)} ${ty}${n === '_fence' ? ' NOT NULL UNIQUE' : n === '_op' || n === '_position' ? ' NOT NULL' : ''}`);
    for (const [col, k] of kinds) defs.push(`${ident(col)} ${d.types[k]}${this.mode === 'mirror' && keyCols.includes(col) ? ' NOT NULL' : ''}`);
    if (this.mode === 'mirror') {
      for (const k of keyCols) if (!kinds.has(k)) defs.push(`${ident(k)} ${d.text} NOT NULL`);
      defs.push(`${ident(FENCE_COL)} ${d.fence} NOT NULL`);
      defs.push(`PRIMARY KEY (${keyCols.map(ident).join(', ')})`);
    }
    return defs;
  }

  /** The ALTER TABLE actions that make the loaded table `t` hold every kind in `kinds`. */
  alterActions(t: TargetTable, kinds: Map<string, ValueKind>): string[] {
    const d = this.dialect;
    const alters: string[] = [];
    if (this.mode === 'mirror' && !t.cols.has(FENCE_COL)) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(FENCE_COL)} ${d.fenceAdded}`);
    if (this.mode === 'history') for (const [n, ty] of d.historyCols) if (!t.cols.has(n)) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(n)} ${ty}`);
    for (const [col, k] of kinds) {
      const have = t.cols.get(col);
      if (have === undefined) alters.push(`ADD COLUMN IF NOT EXISTS ${ident(col)} ${d.types[k]}`);
      // A float column whose first values happened to be whole numbers was created as an
      // integer; widen it before loading, or the database rounds (DuckDB) or fails (Postgres).
      else if (k === 'float' && d.isInteger(have)) alters.push(`ALTER COLUMN ${ident(col)} TYPE ${d.types.float}`);
    }
    return alters;
  }
}
