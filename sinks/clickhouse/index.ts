/**
 * The `clickhouse` sink: mirrors tables into ClickHouse `ReplacingMergeTree(_version)` tables.
 *
 * Every event becomes one row: the `after` image (or the key, with `_deleted = 1`, for a
 * delete) plus `_version` = the event's 64-bit version (`int64Version` in the SDK: a UInt64
 * column is what ClickHouse 18+ accepts for ReplacingMergeTree). ReplacingMergeTree keeps,
 * per sorting key (the primary key), the row with the highest `_version`, and of equal
 * versions the last inserted (the events past the 65,535th of one transaction share one:
 * each batch is collapsed to the last event per key and inserted in order), so:
 * - a replayed event inserts a row identical to one already there (no change);
 * - an older event delivered after a newer one loses to it (fenced by version);
 * - a delete is a tombstone row that outranks every older insert, so a replay cannot
 *   resurrect the row.
 * Read the mirror with `SELECT ... FROM t FINAL WHERE _deleted = 0`.
 *
 * One `INSERT ... FORMAT TabSeparated` per table per batch (rows.ts). The sink also records
 * its last committed position in `<database>._tributary_positions` (in the background, after
 * the data: positions.ts), so after a crash `open()` tells the runtime what is already in
 * ClickHouse and it is not sent again.
 */
import { z } from 'zod';
import { defineSink, ErrorCodes, fillUnchanged, int64Version, once, PoisonEventError, renderTemplate, requireAfter, requireKey, TributaryError, type Row, type SinkEvent } from '../../src/sdk/index.js';
import { keyIdOf, kindOf, quoteBackslashLiteral as literal } from '../../src/sdk/warehouse/index.js';
import { asPoison, ClickHouseClient, ClickHouseError } from './client.js';
import { BackgroundPosition } from './positions.js';
import { columnInfo, tsvInserts, type TsvRow } from './rows.js';
import { fits, ident, initialColumns, typeFor, widen } from './schema.js';
import { checkClickHouse } from './check.js';

/** How long `close()` waits for the last position INSERT before aborting it. */
const CLOSE_GRACE_MS = 5000;

export const ClickHouseSinkConfig = z.object({
  url: z.string().default('http://127.0.0.1:8123').describe('ClickHouse HTTP interface. Credentials in the URL are accepted and never logged.'),
  database: z.string().min(1).default('default').describe('Database that holds the mirror tables (created when missing).'),
  table: z.string().min(1).default('{table}').describe('Mirror table name template: {schema} {db} {table} {pipeline}.'),
  username: z.string().optional().describe('User (HTTP basic auth). Default: from the URL, else ClickHouse\'s `default`.'),
  password: z.string().optional().describe('Password; never logged. A password inside `url` must be percent-encoded.'),
  password_file: z.string().optional().describe('A file holding the password (a mounted Secret), read at start instead of `password`. Relative to the config file.'),
  create_tables: z.boolean().default(true).describe('Create a missing mirror table, inferring column types from the first row (see docs/sinks/clickhouse.md).'),
  add_columns: z.boolean().default(true).describe('Add columns that appear later, and widen a column whose values stop fitting (Int64 → Float64 → String).'),
  positions_table: z.string().min(1).default('_tributary_positions').describe('Table in `database` where the sink records its committed position.'),
  timeout_ms: z.number().int().min(100).default(60_000).describe('Per-request timeout.'),
});
export type ClickHouseSinkConfig = z.infer<typeof ClickHouseSinkConfig>;

/** What the sink knows about one mirror table. */
interface TableState {
  name: string;
  keyCols: string[];
  /** Column → ClickHouse type, in table order (without `_version`/`_deleted`). */
  cols: Map<string, string>;
}

interface PendingRow {
  e: SinkEvent;
  row: Row;
  deleted: boolean;
}

export default defineSink({
  type: 'clickhouse',
  description: 'A warehouse mirror: one ReplacingMergeTree(_version) table per source table, bulk-inserted as TabSeparated; deletes are `_deleted = 1` tombstones, fenced by version.',
  config: ClickHouseSinkConfig,
  check: checkClickHouse,
  // ClickHouse wants few, large inserts (each INSERT makes a part on disk).
  batch: { max_events: 20000, max_bytes: 16 << 20 },
  create(config, ctx) {
    const client = new ClickHouseClient({ url: config.url, username: config.username, password: config.password, timeoutMs: config.timeout_ms });
    const closing = new AbortController();
    // The position INSERT outlives `closing` by a grace period, so close() can store the last one.
    const closingPositions = new AbortController();
    const db = ident(config.database);
    const posTable = `${db}.${ident(config.positions_table)}`;
    const tables = new Map<string, TableState>();
    /** Mirror table per source table (`db` + `schema.table`): renders the name template once. */
    const bySource = new Map<string, TableState>();
    const positions = new BackgroundPosition(
      async (position, version) => {
        await client.exec(
          `INSERT INTO ${posTable} FORMAT JSONEachRow\n${JSON.stringify({ pipeline: ctx.pipeline, sink: ctx.sinkName, position, _version: version })}\n`,
          closingPositions.signal,
        );
      },
      (err) => ctx.logger.warn({ err }, 'clickhouse: storing the committed position failed; a newer one will replace it'),
    );

    const signalFor = (s?: AbortSignal) => AbortSignal.any([closing.signal, ctx.signal, ...(s ? [s] : [])]);

    /** The table's columns (without `_version`/`_deleted`) and its sorting key, empty when missing. */
    async function describe(name: string, signal: AbortSignal): Promise<{ cols: Map<string, string>; sortKey: string[] }> {
      const rows = await client.rows<{ name: string; type: string; is_in_sorting_key: number }>(
        `SELECT name, type, is_in_sorting_key FROM system.columns WHERE database = ${literal(config.database)} AND table = ${literal(name)}`,
        signal,
      );
      const cols = new Map<string, string>();
      const sortKey: string[] = [];
      for (const r of rows) {
        if (r.name === '_version' || r.name === '_deleted') continue;
        cols.set(r.name, r.type);
        if (Number(r.is_in_sorting_key)) sortKey.push(r.name);
      }
      return { cols, sortKey };
    }
    const loadColumns = async (name: string, signal: AbortSignal) => (await describe(name, signal)).cols;

    /** Find or create the mirror table for an event; cached per table name. */
    async function tableFor(e: SinkEvent, sample: Row, signal: AbortSignal): Promise<TableState> {
      const src = `${e.event.source.db}\u0000${e.table}`;
      let t = bySource.get(src);
      if (t) return t;
      const name = renderTemplate(config.table, e.event);
      t = tables.get(name);
      if (t) {
        bySource.set(src, t);
        return t;
      }
      const d = await describe(name, signal);
      // An existing table's sorting key wins (it may have been created by hand).
      const keyCols = d.sortKey.length ? d.sortKey : Object.keys(e.event.key ?? {});
      let cols = d.cols;
      if (!cols.size) {
        if (!config.create_tables) {
          throw new TributaryError(ErrorCodes.SINK_CONFIG, `ClickHouse table ${config.database}.${name} does not exist`, {
            fix: `create it as ReplacingMergeTree(_version) with _version UInt64 and _deleted UInt8, or set create_tables: true`,
            retryable: true,
          });
        }
        const defs = initialColumns(sample, keyCols);
        // Key columns are the sorting key: never Nullable (old ClickHouse refuses it).
        const ddl =
          `CREATE TABLE IF NOT EXISTS ${db}.${ident(name)} (` +
          [...defs.map(([c, ty]) => `${ident(c)} ${ty}`), '`_version` UInt64', '`_deleted` UInt8'].join(', ') +
          `) ENGINE = ReplacingMergeTree(_version) ORDER BY (${keyCols.map(ident).join(', ')})`;
        await client.exec(ddl, signal);
        ctx.logger.info({ table: `${config.database}.${name}`, columns: defs.length }, 'clickhouse: created mirror table');
        cols = await loadColumns(name, signal);
      }
      t = { name, keyCols, cols };
      tables.set(name, t);
      bySource.set(src, t);
      return t;
    }

    /** Add missing columns and widen ones whose values no longer fit, in one ALTER. */
    async function evolve(t: TableState, rows: PendingRow[], signal: AbortSignal): Promise<void> {
      const add = new Map<string, string>();
      const modify = new Map<string, string>();
      for (const { e, row } of rows) {
        for (const c in row) {
          const v = row[c];
          const cur = modify.get(c) ?? t.cols.get(c);
          if (cur === undefined) {
            const prev = add.get(c);
            const k = kindOf(v);
            if (prev === undefined || (prev === 'Nullable(String)' && k !== null)) add.set(c, typeFor(k, false));
            else if (!fits(v, prev)) add.set(c, widen(prev, v));
            continue;
          }
          if (fits(v, cur)) continue;
          if (t.keyCols.includes(c)) {
            throw new PoisonEventError(`event at ${e.position}#${e.index} of ${e.table}: key column ${c} holds ${JSON.stringify(v)}, which does not fit its ClickHouse type ${cur}`);
          }
          modify.set(c, widen(cur, v!));
        }
      }
      if (!add.size && !modify.size) return;
      if (!config.add_columns) {
        throw new TributaryError(ErrorCodes.SINK_CONFIG, `ClickHouse table ${config.database}.${t.name} lacks or cannot hold columns ${[...add.keys(), ...modify.keys()].join(', ')}`, {
          fix: 'alter the table by hand, or set add_columns: true',
          retryable: true,
        });
      }
      const clauses = [...[...add].map(([c, ty]) => `ADD COLUMN ${ident(c)} ${ty}`), ...[...modify].map(([c, ty]) => `MODIFY COLUMN ${ident(c)} ${ty}`)];
      try {
        await client.exec(`ALTER TABLE ${db}.${ident(t.name)} ${clauses.join(', ')}`, signal);
        ctx.logger.info({ table: `${config.database}.${t.name}`, add: [...add.keys()], widen: [...modify.keys()] }, 'clickhouse: altered mirror table');
      } catch (err) {
        // Another writer may have added the column first (code 44): take the table as it is now.
        if (!(err instanceof ClickHouseError) || err.clickhouseCode !== 44) throw err;
      }
      t.cols = await loadColumns(t.name, signal);
    }

    /**
     * Fill columns a Postgres update left out (`source.unchanged`: TOASTed values not sent)
     * from the newest row this batch or the mirror holds, so the new row version keeps them.
     */
    async function fillUnchangedColumns(t: TableState, rows: PendingRow[], signal: AbortSignal): Promise<void> {
      // The common case, a batch without such updates, costs one pass and no key strings.
      if (!rows.some((p) => !p.deleted && p.e.event.source.unchanged?.length)) return;
      const keyOf = (r: Row) => keyIdOf(r, t.keyCols);
      const latest = new Map<string, Row>();
      const need: PendingRow[] = [];
      for (const p of rows) {
        if (p.deleted) {
          latest.delete(keyOf(p.row));
          continue;
        }
        if (p.e.event.source.unchanged?.length && !latest.has(keyOf(p.row))) need.push(p);
        latest.set(keyOf(p.row), p.row);
      }
      if (!need.length) return;
      const tuples = need.map((p) => `(${t.keyCols.map((k) => sqlValue(p.row[k])).join(', ')})`);
      const found = await client.rows<Row>(
        `SELECT * FROM ${db}.${ident(t.name)} FINAL WHERE _deleted = 0 AND (${t.keyCols.map(ident).join(', ')}) IN (${tuples.join(', ')})`,
        signal,
      );
      const stored = new Map(found.map((r) => [keyOf(Object.fromEntries(t.keyCols.map((k) => [k, normKey(r[k], t.cols.get(k)!)])) as Row), r]));
      const running = new Map<string, Row>();
      for (const p of rows) {
        const k = keyOf(p.row);
        if (p.deleted) {
          running.set(k, {});
          continue;
        }
        p.row = fillUnchanged(p.row, p.e.event.source.unchanged, running.get(k) ?? stored.get(k));
        running.set(k, p.row);
      }
    }

    /** Write all rows of one table with one INSERT. */
    async function insert(t: TableState, rows: PendingRow[], signal: AbortSignal): Promise<void> {
      await evolve(t, rows, signal);
      await fillUnchangedColumns(t, rows, signal);
      const cols = columnInfo(t.cols);
      // The last event per key only: of equal versions (a tie inside one big transaction)
      // ReplacingMergeTree keeps the last inserted, and one INSERT lists tombstones after
      // upserts, so two rows of one key in one INSERT could end in the wrong order.
      const lastByKey = new Map<string, TsvRow>();
      for (const { e, row, deleted } of rows) {
        let r = row;
        if (deleted) {
          // A tombstone carries the key only.
          r = {};
          for (const k of t.keyCols) r[k] = row[k] ?? null;
        }
        const key = keyIdOf(row, t.keyCols);
        lastByKey.delete(key); // keep the order of last writes
        lastByKey.set(key, { row: r, version: int64Version(e).version.toString(), deleted });
      }
      const tsv = [...lastByKey.values()];
      for (const ins of tsvInserts(tsv, cols)) {
        try {
          await client.exec(`INSERT INTO ${db}.${ident(t.name)} (${[...ins.cols, '_version', '_deleted'].map(ident).join(', ')}) FORMAT TabSeparated\n${ins.body}`, signal);
        } catch (err) {
          if (err instanceof ClickHouseError && err.isDataError) {
            throw asPoison(err, rows.length === 1 ? `event at ${rows[0]!.e.position}#${rows[0]!.e.index} of ${rows[0]!.e.table}` : `a batch of ${rows.length} events for ${config.database}.${t.name}`);
          }
          throw err;
        }
      }
    }

    /** Truncate as a versioned tombstone for every live row older than the truncate. */
    async function truncate(e: SinkEvent, signal: AbortSignal): Promise<void> {
      const name = renderTemplate(config.table, e.event);
      const { cols, sortKey: keyCols } = await describe(name, signal);
      if (!cols.size || !keyCols.length) return;
      const v = int64Version(e).version.toString();
      // `<=`: rows of the same version are earlier events of this (big) transaction.
      await client.exec(
        `INSERT INTO ${db}.${ident(name)} (${keyCols.map(ident).join(', ')}, _version, _deleted) SELECT ${keyCols.map(ident).join(', ')}, ${v}, 1 FROM ${db}.${ident(name)} FINAL WHERE _deleted = 0 AND _version <= ${v}`,
        signal,
      );
    }

    async function flush(groups: Map<string, { t: TableState; rows: PendingRow[] }>, signal: AbortSignal): Promise<void> {
      for (const g of groups.values()) if (g.rows.length) await insert(g.t, g.rows, signal);
      groups.clear();
    }

    return {
      async open() {
        const signal = signalFor();
        await client.exec(`CREATE DATABASE IF NOT EXISTS ${db}`, signal);
        await client.exec(
          `CREATE TABLE IF NOT EXISTS ${posTable} (pipeline String, sink String, position String, _version UInt64) ENGINE = ReplacingMergeTree(_version) ORDER BY (pipeline, sink)`,
          signal,
        );
        const r = await client.rows<{ position: string }>(
          `SELECT position FROM ${posTable} FINAL WHERE pipeline = ${literal(ctx.pipeline)} AND sink = ${literal(ctx.sinkName)}`,
          signal,
        );
        ctx.logger.info({ url: client.safeUrl, database: config.database, position: r[0]?.position ?? null }, 'clickhouse: connected');
        return { position: r[0]?.position ?? null };
      },

      async write(events, wctx) {
        const signal = signalFor(wctx.signal);
        const groups = new Map<string, { t: TableState; rows: PendingRow[] }>();
        for (const e of events) {
          const ev = e.event;
          if (ev.op === 't') {
            await flush(groups, signal);
            await truncate(e, signal);
            continue;
          }
          const key = requireKey(e, 'the ClickHouse mirror keeps rows by key');
          const deleted = ev.op === 'd';
          const row = deleted ? { ...(ev.before ?? {}), ...key } : requireAfter(e);
          const t = await tableFor(e, row, signal);
          let g = groups.get(t.name);
          if (!g) groups.set(t.name, (g = { t, rows: [] }));
          g.rows.push({ e, row, deleted });
        }
        await flush(groups, signal);
        // After the data, without waiting for it: a crash in between only means the batch is
        // sent again, harmlessly (positions.ts).
        if (wctx.commit !== null && events.length) positions.push(wctx.commit, int64Version(events[events.length - 1]!).version.toString());
      },

      close: once(async () => {
        // Nothing pooled to release (fetch keeps no session); abort whatever is in flight,
        // but give the last committed position a moment to land.
        closing.abort();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([positions.flush(), new Promise<void>((r) => (timer = setTimeout(r, CLOSE_GRACE_MS)))]);
        clearTimeout(timer);
        closingPositions.abort();
        await positions.flush();
      }),
    };
  },
});

/** A key value as a SQL literal for `IN` lookups. */
function sqlValue(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return literal(v);
  return literal(JSON.stringify(v));
}

/** Key values come back from ClickHouse as strings for 64-bit integers: compare as numbers. */
function normKey(v: unknown, type: string): Row[string] {
  if (/Int64/.test(type) && typeof v === 'string' && Number.isSafeInteger(Number(v))) return Number(v);
  return v as Row[string];
}
