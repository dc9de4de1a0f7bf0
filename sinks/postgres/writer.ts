import type pg from 'pg';
import type { JsonValue, Row, SinkEvent } from '../../src/sdk/index.js';
import { PG_DIALECT, type PgCatalog } from './catalog.js';
import { copyLines, copySafe, PgStager, type StageColumn } from './copy.js';
import {
  bySignature,
  chunks,
  FENCE_COL,
  groupByTable,
  quoteIdent as ident,
  inferKinds,
  planMirror,
  splitChanges,
  rowJson,
  type KeyedChange,
  type TableChanges,
  type TargetTable,
  type WarehouseWriterOptions,
} from '../../src/sdk/warehouse/index.js';

/** The rows of one bulk statement as a relation `s`, and the statement's parameters so far. */
interface Source {
  from: string;
  params: unknown[];
}

/** The sink's own columns of a mirror statement, after the row's columns. */
const MIRROR_META: StageColumn[] = [
  { name: '_tributary_fence', type: 'text COLLATE "C"', json: false },
  { name: '_tributary_key', type: 'text', json: false },
];

const isJsonType = (type: string) => type === 'json' || type === 'jsonb';

/**
 * Applies one batch inside one transaction that the caller opened: the data, the DDL it needs
 * and the committed position all commit together or not at all.
 *
 * Every statement is set-based. Its rows are COPYed (text format) into a temporary staging
 * table that the statement reads (copy.ts): no statement per row, no parameter-count limit.
 * When a column has a type COPY text cannot stand for faithfully (arrays, composites of a
 * hand-made table), the statement instead carries its rows as ONE json parameter expanded by
 * `json_to_recordset`, which builds those types from JSON structure.
 */
export class PgBatchWriter {
  private readonly stager = new PgStager();

  constructor(
    private readonly o: WarehouseWriterOptions,
    private readonly catalog: PgCatalog,
  ) {}

  /** The target table of a source table (templates rendered once per source table). */
  private target(e: SinkEvent): TargetTable {
    return this.catalog.tableFor(e, this.o);
  }

  /** Forget the staging tables (the transaction that made them may have rolled back). */
  reset(): void {
    this.stager.reset();
  }

  /**
   * The rows as relation `s` with columns `cols`: a staging table loaded by COPY, or (for a
   * column type COPY cannot carry) `json_to_recordset` over one json parameter, `$1`.
   */
  private async source<T>(
    c: pg.ClientBase,
    cols: StageColumn[],
    items: readonly T[],
    row: (x: T) => Row | null,
    extra: (x: T) => Record<string, JsonValue>,
  ): Promise<Source> {
    const rowCols = new Set<string>();
    for (const col of cols) rowCols.add(col.name);
    if (cols.every((col) => copySafe(col.type.replace(/ COLLATE .*$/, '')))) {
      const own = new Set(Object.keys(extra(items[0]!)));
      for (const k of own) rowCols.delete(k);
      const text = copyLines(items, cols, row, extra, rowCols);
      return { from: `${await this.stager.load(c, cols, text)} s`, params: [] };
    }
    let json = '[';
    for (let i = 0; i < items.length; i++) json += (i ? ',' : '') + rowJson(row(items[i]!), extra(items[i]!));
    const rec = cols.map((col) => `${ident(col.name)} ${col.type.replace(/ COLLATE .*$/, '')}`).join(', ');
    return { from: `json_to_recordset($1::json) AS s(${rec})`, params: [json + ']'] };
  }

  async apply(c: pg.ClientBase, events: readonly SinkEvent[], commit: string | null): Promise<void> {
    this.stager.begin();
    if (this.o.mode === 'history') {
      for (const group of groupByTable(events).values()) await this.history(c, group);
    } else {
      for (const seg of planMirror(events)) {
        if (seg.kind === 'truncate') await this.truncate(c, seg.event);
        else for (const tc of seg.tables.values()) await this.mirror(c, tc);
      }
    }
    if (commit !== null) {
      // Only move forward: a redelivered older batch (with a commit) must not rewind it.
      await c.query(
        `INSERT INTO ${this.catalog.positions} AS p (pipeline, sink, position, fence, updated_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (pipeline, sink) DO UPDATE SET position = EXCLUDED.position, fence = EXCLUDED.fence, updated_at = now()
         WHERE p.fence <= EXCLUDED.fence`,
        [this.o.pipeline, this.o.sink, commit, events[events.length - 1]!.fence],
      );
    }
  }

  private async mirror(c: pg.ClientBase, tc: TableChanges): Promise<void> {
    const t = this.target(tc.sample);
    const { upserts: ups, deletes: dels, kinds } = splitChanges(tc);
    await this.catalog.ensure(c, t, kinds, tc.keyCols);
    const keyCols = tc.keyCols;
    const col = (k: string, type = t.cols.get(k) ?? 'text'): StageColumn => ({ name: k, type, json: isJsonType(type) });
    const meta = (ch: KeyedChange) => ({ _tributary_fence: ch.fence, _tributary_key: ch.keyId });

    if (dels.length) {
      // Delete only rows older than the delete, and keep a tombstone so that an older insert
      // replayed later cannot bring the row back.
      const on = keyCols.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(' AND ');
      let max = (await this.catalog.tombMax(c, t)) ?? '';
      for (const part of chunks(dels, this.o.maxRows)) {
        for (const d of part) if (d.fence > max) max = d.fence;
        const src = await this.source(c, [...keyCols.map((k) => col(k)), ...MIRROR_META], part, (d) => d.key, meta);
        const n = src.params.length;
        await c.query(
          `WITH x AS (DELETE FROM ${t.q} t USING ${src.from} WHERE ${on} AND t.${ident(FENCE_COL)} < s."_tributary_fence" COLLATE "C")
           INSERT INTO ${this.catalog.tombstones} AS tb (tbl, key, fence) SELECT $${n + 1}, s."_tributary_key", s."_tributary_fence" FROM ${src.from}
           ON CONFLICT (tbl, key) DO UPDATE SET fence = EXCLUDED.fence WHERE tb.fence < EXCLUDED.fence`,
          [...src.params, t.id],
        );
      }
      t.tombMax = max;
    }

    if (!ups.length) return;
    const tombMax = await this.catalog.tombMax(c, t);
    // Rows with the same set of columns go in one statement; a row that lacks a column
    // (unchanged TOAST, or a column the source dropped) must not overwrite it with NULL.
    for (const g of bySignature(ups, (u) => u.row, (k) => t.cols.has(k) && k !== FENCE_COL)) {
      const colList = g.cols.map(ident).join(', ');
      const sets = g.cols.filter((k) => !keyCols.includes(k)).map((k) => `${ident(k)} = EXCLUDED.${ident(k)}`);
      sets.push(`${ident(FENCE_COL)} = EXCLUDED.${ident(FENCE_COL)}`);
      const stageCols = [...g.cols.map((k) => col(k)), ...MIRROR_META];
      for (const part of chunks(g.items, this.o.maxRows)) {
        let minFence: string | undefined;
        for (const u of part) if (minFence === undefined || u.fence < minFence) minFence = u.fence;
        const src = await this.source(c, stageCols, part, (u) => u.row, meta);
        const n = src.params.length;
        // Tombstones matter only for events older than the newest tombstone (replays).
        const check = tombMax !== null && minFence! <= tombMax;
        const sql = `INSERT INTO ${t.q} AS t (${colList}, ${ident(FENCE_COL)})
          SELECT ${g.cols.map((k) => `s.${ident(k)}`).join(', ')}, s."_tributary_fence" FROM ${src.from}
          ${check ? `WHERE NOT EXISTS (SELECT 1 FROM ${this.catalog.tombstones} tb WHERE tb.tbl = $${n + 1} AND tb.key IN (s."_tributary_key", '*') AND tb.fence >= s."_tributary_fence" COLLATE "C")` : ''}
          ON CONFLICT (${keyCols.map(ident).join(', ')}) DO UPDATE SET ${sets.join(', ')}
          WHERE t.${ident(FENCE_COL)} < EXCLUDED.${ident(FENCE_COL)}`;
        await c.query(sql, check ? [...src.params, t.id] : src.params);
      }
    }
  }

  /**
   * A truncate, fenced like a delete of every row: rows written by newer events survive (they
   * exist only during a replay), and a table-wide tombstone (`key = '*'`) stops any older
   * replayed event from re-inserting.
   */
  private async truncate(c: pg.ClientBase, e: SinkEvent): Promise<void> {
    const t = this.target(e);
    if (!t.loaded) await this.catalog.load(c, t);
    if (t.cols.size) {
      const newer = await c.query(`SELECT 1 FROM ${t.q} WHERE ${ident(FENCE_COL)} >= $1 LIMIT 1`, [e.fence]);
      // TRUNCATE is much cheaper than DELETE; it is only wrong when newer rows must survive.
      if (newer.rowCount) await c.query(`DELETE FROM ${t.q} WHERE ${ident(FENCE_COL)} < $1`, [e.fence]);
      else await c.query(`TRUNCATE ${t.q}`);
    }
    await c.query(`DELETE FROM ${this.catalog.tombstones} WHERE tbl = $1 AND key <> '*' AND fence < $2`, [t.id, e.fence]);
    await c.query(
      `INSERT INTO ${this.catalog.tombstones} AS tb (tbl, key, fence) VALUES ($1, '*', $2)
       ON CONFLICT (tbl, key) DO UPDATE SET fence = EXCLUDED.fence WHERE tb.fence < EXCLUDED.fence`,
      [t.id, e.fence],
    );
    if (t.tombMax === undefined || t.tombMax === null || e.fence > t.tombMax) t.tombMax = e.fence;
  }

  /** History: every event becomes a row; the unique `_fence` makes a redelivery a no-op. */
  private async history(c: pg.ClientBase, group: SinkEvent[]): Promise<void> {
    const t = this.target(group[0]!);
    const rows: Row[] = [];
    for (const e of group) {
      const r = e.event.after ?? e.event.before;
      if (r) rows.push(r);
    }
    await this.catalog.ensure(c, t, inferKinds(rows), []);
    const own = new Set(PG_DIALECT.historyCols.map(([n]) => n));
    const cols = [...t.cols.keys()].filter((k) => !own.has(k));
    const all = [...PG_DIALECT.historyCols.map(([n]) => n), ...cols];
    const stageCols = all.map((k): StageColumn => {
      const type = t.cols.get(k)!.replace(/ COLLATE .*$/, '');
      return { name: k, type, json: isJsonType(type) };
    });
    for (const part of chunks(group, this.o.maxRows)) {
      const src = await this.source(
        c,
        stageCols,
        part,
        (e) => e.event.after ?? e.event.before,
        (e) => ({ _op: e.event.op, _position: e.position, _index: e.index, _fence: e.fence, _ts_ms: e.event.source.ts_ms, _before: e.event.before }),
      );
      await c.query(`INSERT INTO ${t.q} (${all.map(ident).join(', ')}) SELECT ${all.map((k) => `s.${ident(k)}`).join(', ')} FROM ${src.from} ON CONFLICT ("_fence") DO NOTHING`, src.params);
    }
  }
}
