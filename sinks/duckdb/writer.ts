import type { DuckDBConnection } from '@duckdb/node-api';
import { renderTemplate, type Row, type SinkEvent } from '../../src/sdk/index.js';
import { groupByTable, inferKinds, planMirror, rowJson, type KeyedChange, type TableChanges } from '../postgres/plan.js';
import { FENCE_COL, HISTORY_COLS, ident, literal, type DuckCatalog, type Mode, type TargetTable } from './catalog.js';

export interface WriterOptions {
  mode: Mode;
  schema: string | undefined;
  table: string;
  pipeline: string;
  sink: string;
  maxRows: number;
}

function chunks<T>(xs: T[], n: number): T[][] {
  if (xs.length <= n) return [xs];
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/**
 * Rows as a relation: ONE VARCHAR parameter holding a JSON array, expanded by DuckDB's own JSON
 * reader into typed columns. `from_json_strict` (not `from_json`) so that a value that does not
 * fit its column is an error (a poison event) instead of a silent NULL. Every object must carry
 * every listed key, which is why rows are grouped by their column set.
 */
function source(cols: Array<[string, string]>): string {
  const struct = '[{' + cols.map(([n, ty]) => `${JSON.stringify(n)}:${JSON.stringify(ty)}`).join(',') + '}]';
  return `(SELECT unnest(from_json_strict($1::VARCHAR, ${literal(struct)}), recursive := true))`;
}

/** Rows grouped by the set of columns they carry that exist in the target. */
function bySignature<T>(items: T[], row: (x: T) => Row | null, has: (c: string) => boolean): Array<{ cols: string[]; items: T[] }> {
  const groups = new Map<string, { cols: string[]; items: T[] }>();
  for (const it of items) {
    const cols: string[] = [];
    const r = row(it);
    if (r) for (const c in r) if (has(c)) cols.push(c);
    const sig = cols.join('\u0001');
    let g = groups.get(sig);
    if (!g) groups.set(sig, (g = { cols, items: [] }));
    g.items.push(it);
  }
  return [...groups.values()];
}

/**
 * Applies one batch inside the transaction the caller opened (data, DDL and the committed
 * position commit together). Same plan as the postgres sink: collapse to the last change per
 * key, fenced upsert (`ON CONFLICT ... DO UPDATE ... WHERE fence <`), fenced delete plus
 * tombstone, fenced truncate; history appends with a unique `_fence`.
 */
export class DuckBatchWriter {
  private readonly names = new Map<string, TargetTable>();

  constructor(
    private readonly o: WriterOptions,
    private readonly catalog: DuckCatalog,
  ) {}

  target(e: SinkEvent): TargetTable {
    let t = this.names.get(e.table);
    if (!t || !t.loaded) {
      t = this.catalog.table(renderTemplate(this.o.schema ?? '{schema}', e.event), renderTemplate(this.o.table, e.event));
      this.names.set(e.table, t);
    }
    return t;
  }

  reset(): void {
    this.names.clear();
  }

  async apply(c: DuckDBConnection, events: readonly SinkEvent[], commit: string | null): Promise<void> {
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
      await c.run(
        `INSERT INTO ${this.catalog.positions} AS p (pipeline, sink, position, fence, updated_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (pipeline, sink) DO UPDATE SET position = excluded.position, fence = excluded.fence, updated_at = now()
         WHERE p.fence <= excluded.fence`,
        [this.o.pipeline, this.o.sink, commit, events[events.length - 1]!.fence],
      );
    }
  }

  private async mirror(c: DuckDBConnection, tc: TableChanges): Promise<void> {
    const t = this.target(tc.sample);
    const ups: KeyedChange[] = [];
    const dels: KeyedChange[] = [];
    for (const ch of tc.changes.values()) (ch.op === 'upsert' ? ups : dels).push(ch);
    const all: Row[] = ups.map((u) => u.row!);
    for (const d of dels) all.push(d.key);
    await this.catalog.ensure(c, t, inferKinds(all), tc.keyCols);
    const keyCols = tc.keyCols;
    const keyTyped = keyCols.map((k): [string, string] => [k, t.cols.get(k) ?? 'VARCHAR']);
    const meta: Array<[string, string]> = [
      ['_tributary_fence', 'VARCHAR'],
      ['_tributary_key', 'VARCHAR'],
    ];

    if (dels.length) {
      // DuckDB has no data-modifying CTEs: the same rows feed the delete and the tombstones.
      const src = source([...keyTyped, ...meta]);
      const on = keyCols.map((k) => `t.${ident(k)} = d.${ident(k)}`).join(' AND ');
      const del = `DELETE FROM ${t.q} AS t USING ${src} d WHERE ${on} AND t.${ident(FENCE_COL)} < d."_tributary_fence"`;
      const tomb = `INSERT INTO ${this.catalog.tombstones} AS tb (tbl, key, fence) SELECT $2, d."_tributary_key", d."_tributary_fence" FROM ${src} d
        ON CONFLICT (tbl, key) DO UPDATE SET fence = excluded.fence WHERE tb.fence < excluded.fence`;
      let max = (await this.catalog.tombMax(c, t)) ?? '';
      for (const part of chunks(dels, this.o.maxRows)) {
        let json = '[';
        for (let i = 0; i < part.length; i++) {
          const d = part[i]!;
          if (d.fence > max) max = d.fence;
          json += (i ? ',' : '') + rowJson(d.key, { _tributary_fence: d.fence, _tributary_key: d.keyId });
        }
        json += ']';
        await c.run(del, [json]);
        await c.run(tomb, [json, t.id]);
      }
      t.tombMax = max;
    }

    if (!ups.length) return;
    const tombMax = await this.catalog.tombMax(c, t);
    for (const g of bySignature(ups, (u) => u.row, (col) => t.cols.has(col) && col !== FENCE_COL)) {
      const src = source([...g.cols.map((k): [string, string] => [k, t.cols.get(k)!]), ...meta]);
      const colList = g.cols.map(ident).join(', ');
      const sets = g.cols.filter((k) => !keyCols.includes(k)).map((k) => `${ident(k)} = excluded.${ident(k)}`);
      sets.push(`${ident(FENCE_COL)} = excluded.${ident(FENCE_COL)}`);
      for (const part of chunks(g.items, this.o.maxRows)) {
        let json = '[';
        let minFence: string | undefined;
        for (let i = 0; i < part.length; i++) {
          const u = part[i]!;
          if (minFence === undefined || u.fence < minFence) minFence = u.fence;
          json += (i ? ',' : '') + rowJson(u.row, { _tributary_fence: u.fence, _tributary_key: u.keyId });
        }
        json += ']';
        // Tombstones matter only for events older than the newest tombstone (replays).
        const check = tombMax !== null && minFence! <= tombMax;
        const sql = `INSERT INTO ${t.q} AS t (${colList}, ${ident(FENCE_COL)})
          SELECT ${g.cols.map((k) => `s.${ident(k)}`).join(', ')}, s."_tributary_fence" FROM ${src} s
          ${check ? `WHERE NOT EXISTS (SELECT 1 FROM ${this.catalog.tombstones} tb WHERE tb.tbl = $2 AND tb.key IN (s."_tributary_key", '*') AND tb.fence >= s."_tributary_fence")` : ''}
          ON CONFLICT (${keyCols.map(ident).join(', ')}) DO UPDATE SET ${sets.join(', ')}
          WHERE t.${ident(FENCE_COL)} < excluded.${ident(FENCE_COL)}`;
        await c.run(sql, check ? [json, t.id] : [json]);
      }
    }
  }

  /** A truncate, fenced like a delete of every row, plus a table-wide tombstone (`key = '*'`). */
  private async truncate(c: DuckDBConnection, e: SinkEvent): Promise<void> {
    const t = this.target(e);
    if (!t.loaded) await this.catalog.load(c, t);
    if (t.cols.size) await c.run(`DELETE FROM ${t.q} WHERE ${ident(FENCE_COL)} < $1`, [e.fence]);
    await c.run(`DELETE FROM ${this.catalog.tombstones} WHERE tbl = $1 AND key <> '*' AND fence < $2`, [t.id, e.fence]);
    await c.run(
      `INSERT INTO ${this.catalog.tombstones} AS tb (tbl, key, fence) VALUES ($1, '*', $2)
       ON CONFLICT (tbl, key) DO UPDATE SET fence = excluded.fence WHERE tb.fence < excluded.fence`,
      [t.id, e.fence],
    );
    if (t.tombMax === undefined || t.tombMax === null || e.fence > t.tombMax) t.tombMax = e.fence;
  }

  /** History: every event becomes a row; the unique `_fence` makes a redelivery a no-op. */
  private async history(c: DuckDBConnection, group: SinkEvent[]): Promise<void> {
    const t = this.target(group[0]!);
    const data: Row[] = [];
    for (const e of group) {
      const r = e.event.after ?? e.event.before;
      if (r) data.push(r);
    }
    await this.catalog.ensure(c, t, inferKinds(data), []);
    const own = HISTORY_COLS.map(([n]) => n);
    const ownSet = new Set(own);
    const ownTyped = HISTORY_COLS.map(([n, ty]): [string, string] => [n, ty]);
    for (const g of bySignature(group, (e) => e.event.after ?? e.event.before, (col) => t.cols.has(col) && !ownSet.has(col))) {
      const all = [...own, ...g.cols];
      const src = source([...ownTyped, ...g.cols.map((k): [string, string] => [k, t.cols.get(k)!])]);
      const sql = `INSERT INTO ${t.q} (${all.map(ident).join(', ')}) SELECT ${all.map((k) => `s.${ident(k)}`).join(', ')} FROM ${src} s ON CONFLICT ("_fence") DO NOTHING`;
      for (const part of chunks(g.items, this.o.maxRows)) {
        let json = '[';
        for (let i = 0; i < part.length; i++) {
          const e = part[i]!;
          const ev = e.event;
          json +=
            (i ? ',' : '') +
            rowJson(ev.after ?? ev.before, { _op: ev.op, _position: e.position, _index: e.index, _fence: e.fence, _ts_ms: ev.source.ts_ms, _before: ev.before });
        }
        await c.run(sql, [json + ']']);
      }
    }
  }
}
