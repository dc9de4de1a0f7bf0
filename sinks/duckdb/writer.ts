import type { DuckDBConnection } from '@duckdb/node-api';
import type { JsonValue, Row, SinkEvent } from '../../src/sdk/index.js';
import {
  bySignature,
  chunks,
  FENCE_COL,
  groupByTable,
  quoteIdent as ident,
  inferKinds,
  planMirror,
  splitChanges,
  type KeyedChange,
  type TableChanges,
  type TargetTable,
  type WarehouseWriterOptions,
} from '../../src/sdk/warehouse/index.js';
import { DUCK_DIALECT, type DuckCatalog } from './catalog.js';
import { Stager, type StageColumn } from './stage.js';

/**
 * Applies one batch inside the transaction the caller opened (data, DDL and the committed
 * position commit together). Same plan as the postgres sink: collapse to the last change per
 * key, fenced upsert, fenced delete plus tombstone, fenced truncate; history appends with a
 * unique `_fence`. Rows are first loaded into the staging table (stage.ts), then applied with
 * one set-based statement each: the upsert is a `MERGE` (`WHEN MATCHED AND fence < ... THEN
 * UPDATE`, `WHEN NOT MATCHED THEN INSERT`), which DuckDB runs as a hash join: about 7 ms for
 * 2,000 rows where `INSERT ... ON CONFLICT` from the same staging table took about 10 ms.
 */
export class DuckBatchWriter {
  private readonly stager = new Stager();

  constructor(
    private readonly o: WarehouseWriterOptions,
    private readonly catalog: DuckCatalog,
  ) {}

  private target(e: SinkEvent): TargetTable {
    return this.catalog.tableFor(e, this.o);
  }

  /** Forget the staging tables (the transaction that made them may have rolled back). */
  reset(): void {
    this.stager.reset();
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
    if (commit !== null) await this.storePosition(c, commit, events[events.length - 1]!.fence);
  }

  /**
   * Upsert the committed position, only forward: a redelivered older batch (with a commit)
   * must not rewind it. A plain UPDATE first because the row exists after the first batch, and
   * DuckDB's `INSERT ... ON CONFLICT` costs a few milliseconds even on a one-row table; the
   * insert runs only when the UPDATE changed nothing (no row yet, or a newer one is stored).
   */
  private async storePosition(c: DuckDBConnection, commit: string, fence: string): Promise<void> {
    const args = [this.o.pipeline, this.o.sink, commit, fence];
    const r = await c.run(`UPDATE ${this.catalog.positions} SET position = $3, fence = $4, updated_at = now() WHERE pipeline = $1 AND sink = $2 AND fence <= $4`, args);
    if (r.rowsChanged > 0) return;
    await c.run(
      `INSERT INTO ${this.catalog.positions} (pipeline, sink, position, fence, updated_at) VALUES ($1, $2, $3, $4, now()) ON CONFLICT (pipeline, sink) DO NOTHING`,
      args,
    );
  }

  private async mirror(c: DuckDBConnection, tc: TableChanges): Promise<void> {
    const t = this.target(tc.sample);
    const { upserts: ups, deletes: dels, kinds } = splitChanges(tc);
    await this.catalog.ensure(c, t, kinds, tc.keyCols);
    const keyCols = tc.keyCols;
    const rowCol = (k: string, type: string): StageColumn<KeyedChange> => ({ name: k, type, get: (ch) => ch.row![k] });
    const fenceCol: StageColumn<KeyedChange> = { name: '_tributary_fence', type: 'VARCHAR', get: (ch) => ch.fence };
    const keyIdCol: StageColumn<KeyedChange> = { name: '_tributary_key', type: 'VARCHAR', get: (ch) => ch.keyId };

    if (dels.length) {
      // DuckDB has no data-modifying CTEs: the staged rows feed the delete and the tombstones.
      const on = keyCols.map((k) => `t.${ident(k)} = d.${ident(k)}`).join(' AND ');
      let max = (await this.catalog.tombMax(c, t)) ?? '';
      for (const part of chunks(dels, this.o.maxRows)) {
        for (const d of part) if (d.fence > max) max = d.fence;
        const keyTyped = keyCols.map((k): StageColumn<KeyedChange> => ({ name: k, type: t.cols.get(k) ?? 'VARCHAR', get: (d) => d.key[k] }));
        const st = await this.stager.load(c, [...keyTyped, fenceCol, keyIdCol], part);
        await c.run(`DELETE FROM ${t.q} AS t USING ${st} d WHERE ${on} AND t.${ident(FENCE_COL)} < d."_tributary_fence"`);
        await c.run(
          `INSERT INTO ${this.catalog.tombstones} AS tb (tbl, key, fence) SELECT $1, d."_tributary_key", d."_tributary_fence" FROM ${st} d
           ON CONFLICT (tbl, key) DO UPDATE SET fence = excluded.fence WHERE tb.fence < excluded.fence`,
          [t.id],
        );
        await this.stager.clear(c, st);
      }
      t.tombMax = max;
    }

    if (!ups.length) return;
    const tombMax = await this.catalog.tombMax(c, t);
    for (const g of bySignature(ups, (u) => u.row, (col) => t.cols.has(col) && col !== FENCE_COL)) {
      const typed = g.cols.map((k) => rowCol(k, t.cols.get(k)!));
      const on = keyCols.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(' AND ');
      const sets = g.cols.filter((k) => !keyCols.includes(k)).map((k) => `${ident(k)} = s.${ident(k)}`);
      sets.push(`${ident(FENCE_COL)} = s."_tributary_fence"`);
      const insCols = [...g.cols.map(ident), ident(FENCE_COL)].join(', ');
      const insVals = [...g.cols.map((k) => `s.${ident(k)}`), 's."_tributary_fence"'].join(', ');
      for (const part of chunks(g.items, this.o.maxRows)) {
        let minFence = part[0]!.fence;
        for (const u of part) if (u.fence < minFence) minFence = u.fence;
        // Tombstones matter only for events older than the newest tombstone (replays); only
        // then do the rows carry their key string.
        const check = tombMax !== null && minFence <= tombMax;
        const st = await this.stager.load(c, check ? [...typed, fenceCol, keyIdCol] : [...typed, fenceCol], part);
        const src = check
          ? `(SELECT * FROM ${st} s WHERE NOT EXISTS (SELECT 1 FROM ${this.catalog.tombstones} tb WHERE tb.tbl = $1 AND tb.key IN (s."_tributary_key", '*') AND tb.fence >= s."_tributary_fence"))`
          : st;
        const sql = `MERGE INTO ${t.q} AS t USING ${src} AS s ON ${on}
          WHEN MATCHED AND t.${ident(FENCE_COL)} < s."_tributary_fence" THEN UPDATE SET ${sets.join(', ')}
          WHEN NOT MATCHED THEN INSERT (${insCols}) VALUES (${insVals})`;
        await c.run(sql, check ? [t.id] : undefined);
        await this.stager.clear(c, st);
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
    const own = DUCK_DIALECT.historyCols.map(([n]) => n);
    const ownSet = new Set(own);
    const ownGet: Record<string, (e: SinkEvent) => JsonValue> = {
      _op: (e) => e.event.op,
      _position: (e) => e.position,
      _index: (e) => e.index,
      _fence: (e) => e.fence,
      _ts_ms: (e) => e.event.source.ts_ms,
      _before: (e) => e.event.before,
    };
    const ownTyped = DUCK_DIALECT.historyCols.map(([n, ty]): StageColumn<SinkEvent> => ({ name: n, type: ty, get: ownGet[n]! }));
    for (const g of bySignature(group, (e) => e.event.after ?? e.event.before, (col) => t.cols.has(col) && !ownSet.has(col))) {
      const all = [...own, ...g.cols];
      const typed = [...ownTyped, ...g.cols.map((k): StageColumn<SinkEvent> => ({ name: k, type: t.cols.get(k)!, get: (e) => (e.event.after ?? e.event.before)![k] }))];
      for (const part of chunks(g.items, this.o.maxRows)) {
        const st = await this.stager.load(c, typed, part);
        await c.run(`INSERT INTO ${t.q} (${all.map(ident).join(', ')}) SELECT ${all.map((k) => `s.${ident(k)}`).join(', ')} FROM ${st} s ON CONFLICT ("_fence") DO NOTHING`);
        await this.stager.clear(c, st);
      }
    }
  }
}
