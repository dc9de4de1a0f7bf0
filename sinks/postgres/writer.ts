import type pg from 'pg';
import { renderTemplate, type Row, type SinkEvent } from '../../src/sdk/index.js';
import { FENCE_COL, HISTORY_COLS, ident, type Mode, type PgCatalog, type TargetTable } from './catalog.js';
import { groupByTable, inferKinds, planMirror, rowJson, type KeyedChange, type TableChanges } from './plan.js';

export interface WriterOptions {
  mode: Mode;
  schema: string | undefined;
  table: string;
  pipeline: string;
  sink: string;
  maxRows: number;
}

/** Split `xs` into chunks of at most `n`. */
function chunks<T>(xs: T[], n: number): T[][] {
  if (xs.length <= n) return [xs];
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/**
 * Applies one batch inside one transaction that the caller opened: the data, the DDL it needs
 * and the committed position all commit together or not at all.
 *
 * Every statement is set-based and carries its rows as ONE json parameter expanded server-side
 * by `json_to_recordset` (typed by the target's column types): no statement per row, no
 * parameter-count limit, and Postgres parses the JSON much faster than it would plan thousands
 * of VALUES tuples.
 */
export class PgBatchWriter {
  private readonly names = new Map<string, TargetTable>();

  constructor(
    private readonly o: WriterOptions,
    private readonly catalog: PgCatalog,
  ) {}

  /** The target table of a source table (templates rendered once per source table). */
  target(e: SinkEvent): TargetTable {
    let t = this.names.get(e.table);
    if (!t || !t.loaded) {
      const schema = renderTemplate(this.o.schema ?? '{schema}', e.event);
      const name = renderTemplate(this.o.table, e.event);
      t = this.catalog.table(schema, name);
      this.names.set(e.table, t);
    }
    return t;
  }

  /** Forget cached names (the catalog was reset). */
  reset(): void {
    this.names.clear();
  }

  async apply(c: pg.ClientBase, events: readonly SinkEvent[], commit: string | null): Promise<void> {
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
    const ups: KeyedChange[] = [];
    const dels: KeyedChange[] = [];
    for (const ch of tc.changes.values()) (ch.op === 'upsert' ? ups : dels).push(ch);
    const rows: Row[] = ups.map((u) => u.row!);
    for (const d of dels) rows.push(d.key);
    await this.catalog.ensure(c, t, inferKinds(rows), tc.keyCols);
    const keyCols = tc.keyCols;
    const recKey = keyCols.map((k) => `${ident(k)} ${t.cols.get(k) ?? 'text'}`).join(', ');

    if (dels.length) {
      // Delete only rows older than the delete, and keep a tombstone so that an older insert
      // replayed later cannot bring the row back.
      const on = keyCols.map((k) => `t.${ident(k)} = d.${ident(k)}`).join(' AND ');
      const sql = `WITH d AS (SELECT * FROM json_to_recordset($1::json) AS s(${recKey}, "_tributary_fence" text, "_tributary_key" text)),
        x AS (DELETE FROM ${t.q} t USING d WHERE ${on} AND t.${ident(FENCE_COL)} < d."_tributary_fence" COLLATE "C")
        INSERT INTO ${this.catalog.tombstones} AS tb (tbl, key, fence) SELECT $2, d."_tributary_key", d."_tributary_fence" FROM d
        ON CONFLICT (tbl, key) DO UPDATE SET fence = EXCLUDED.fence WHERE tb.fence < EXCLUDED.fence`;
      let max = (await this.catalog.tombMax(c, t)) ?? '';
      for (const part of chunks(dels, this.o.maxRows)) {
        let json = '[';
        for (let i = 0; i < part.length; i++) {
          const d = part[i]!;
          if (d.fence > max) max = d.fence;
          json += (i ? ',' : '') + rowJson(d.key, { _tributary_fence: d.fence, _tributary_key: d.keyId });
        }
        await c.query(sql, [json + ']', t.id]);
      }
      t.tombMax = max;
    }

    if (!ups.length) return;
    // Rows with the same set of columns go in one statement; a row that lacks a column
    // (unchanged TOAST, or a column the source dropped) must not overwrite it with NULL.
    const groups = new Map<string, { cols: string[]; rows: KeyedChange[] }>();
    for (const u of ups) {
      const cols: string[] = [];
      for (const col in u.row!) if (t.cols.has(col) && col !== FENCE_COL) cols.push(col);
      const sig = cols.join('\u0001');
      let g = groups.get(sig);
      if (!g) groups.set(sig, (g = { cols, rows: [] }));
      g.rows.push(u);
    }
    const tombMax = await this.catalog.tombMax(c, t);
    for (const g of groups.values()) {
      const colList = g.cols.map(ident).join(', ');
      const rec = g.cols.map((k) => `${ident(k)} ${t.cols.get(k)}`).join(', ');
      const sets = g.cols.filter((k) => !keyCols.includes(k)).map((k) => `${ident(k)} = EXCLUDED.${ident(k)}`);
      sets.push(`${ident(FENCE_COL)} = EXCLUDED.${ident(FENCE_COL)}`);
      for (const part of chunks(g.rows, this.o.maxRows)) {
        let json = '[';
        let minFence: string | undefined;
        for (let i = 0; i < part.length; i++) {
          const u = part[i]!;
          if (minFence === undefined || u.fence < minFence) minFence = u.fence;
          json += (i ? ',' : '') + rowJson(u.row, { _tributary_fence: u.fence, _tributary_key: u.keyId });
        }
        // Tombstones matter only for events older than the newest tombstone (replays).
        const check = tombMax !== null && minFence! <= tombMax;
        const sql = `INSERT INTO ${t.q} AS t (${colList}, ${ident(FENCE_COL)})
          SELECT ${g.cols.map((k) => `s.${ident(k)}`).join(', ')}, s."_tributary_fence"
          FROM json_to_recordset($1::json) AS s(${rec}, "_tributary_fence" text, "_tributary_key" text)
          ${check ? `WHERE NOT EXISTS (SELECT 1 FROM ${this.catalog.tombstones} tb WHERE tb.tbl = $2 AND tb.key IN (s."_tributary_key", '*') AND tb.fence >= s."_tributary_fence" COLLATE "C")` : ''}
          ON CONFLICT (${keyCols.map(ident).join(', ')}) DO UPDATE SET ${sets.join(', ')}
          WHERE t.${ident(FENCE_COL)} < EXCLUDED.${ident(FENCE_COL)}`;
        await c.query(sql, check ? [json + ']', t.id] : [json + ']']);
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
    const own = new Set(HISTORY_COLS.map(([n]) => n));
    const cols = [...t.cols.keys()].filter((k) => !own.has(k));
    const all = [...HISTORY_COLS.map(([n]) => n), ...cols];
    const rec = all.map((k) => `${ident(k)} ${t.cols.get(k)!.replace(/ COLLATE.*$/, '')}`).join(', ');
    const sql = `INSERT INTO ${t.q} (${all.map(ident).join(', ')})
      SELECT ${all.map((k) => `s.${ident(k)}`).join(', ')} FROM json_to_recordset($1::json) AS s(${rec})
      ON CONFLICT ("_fence") DO NOTHING`;
    for (const part of chunks(group, this.o.maxRows)) {
      let json = '[';
      for (let i = 0; i < part.length; i++) {
        const e = part[i]!;
        const ev = e.event;
        json +=
          (i ? ',' : '') +
          rowJson(ev.after ?? ev.before, { _op: ev.op, _position: e.position, _index: e.index, _fence: e.fence, _ts_ms: ev.source.ts_ms, _before: ev.before });
      }
      await c.query(sql, [json + ']']);
    }
  }
}
