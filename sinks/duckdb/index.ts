/**
 * The `duckdb` sink: an embedded analytical warehouse in one file (`@duckdb/node-api`).
 *
 * Same design as the postgres sink: `mirror` keeps the current row per key with a hidden
 * `_tributary_fence` column (fenced upserts, tombstoned deletes, fenced truncates); `history`
 * appends every event with a unique `_fence`. Each batch is one DuckDB transaction holding the
 * data, any DDL and (when the batch ends a source transaction) the position in
 * `_tributary_positions`; `open()` returns it, so the sink is exactly-once on its own, and a
 * kill -9 leaves the file at the last committed batch (DuckDB replays its WAL on open).
 * See docs/sinks/duckdb.md.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { defineSink, ErrorCodes, once, settledWithin, TributaryError, type SinkEvent, type WriteContext } from '../../src/sdk/index.js';
import { quoteLiteral as literal } from '../../src/sdk/warehouse/index.js';
import { DuckCatalog, rows } from './catalog.js';
import { DuckdbSinkConfig } from './config.js';
import { classifyDuckError } from './errors.js';
import { DuckBatchWriter } from './writer.js';
import { checkDuckdb } from './check.js';

export { DuckdbSinkConfig } from './config.js';

/** How long `close()` lets an in-flight batch finish before interrupting it (it then rolls back). */
const CLOSE_GRACE_MS = 5000;

/**
 * WAL size at which DuckDB folds the WAL into the file (DuckDB's default: 16MB). Every
 * checkpoint rewrites the row groups changed since the last one, which for a mirror with
 * scattered updates is much of the table, so fewer checkpoints drain a backlog about 15%
 * faster (bench/sinks/duckdb.ts). The price: a crash replays up to this much WAL on the next
 * open, and `close()` checkpoints anyway.
 */
const CHECKPOINT_THRESHOLD = '128MB';

export default defineSink({
  type: 'duckdb',
  description:
    'Writes change events into a DuckDB file: a mirror of the current rows (fenced upserts, tombstoned deletes) or an append-only history. Bulk, set-based writes; the committed position is stored in the same transaction as the data, so the sink is exactly-once.',
  config: DuckdbSinkConfig,
  check: checkDuckdb,
  paths: ['path'],
  // One set-based merge per batch: larger batches amortize its fixed cost.
  batch: { max_events: 10000, max_bytes: 16 << 20 },
  create(config, ctx) {
    const path = resolve(config.path);
    const catalog = new DuckCatalog(config.mode, config.meta_schema);
    const writer = new DuckBatchWriter(
      { mode: config.mode, schema: config.schema, table: config.table, pipeline: ctx.pipeline, sink: ctx.sinkName, maxRows: config.max_rows_per_statement },
      catalog,
    );
    let instance: DuckDBInstance | undefined;
    let conn: DuckDBConnection | undefined;
    let closed = false;
    let inflight: Promise<void> | null = null;

    async function connect(): Promise<DuckDBConnection> {
      if (closed) throw new TributaryError(ErrorCodes.SINK_CLOSED, `duckdb sink ${ctx.sinkName} is closed`);
      if (conn) return conn;
      await mkdir(dirname(path), { recursive: true });
      const options: Record<string, string> = {};
      if (config.threads) options.threads = String(config.threads);
      if (config.memory_limit) options.memory_limit = config.memory_limit;
      try {
        // The process-wide cache: two sinks on one file (say a mirror and a history) must share
        // one database; two instances on the same file would each believe they own it.
        instance = await DuckDBInstance.fromCache(path, options);
        const c = await instance.connect();
        // Set with SQL rather than as an instance option: the instance cache refuses a second
        // opener of the file whose options differ, and readers in this process pass none.
        await c.run(`SET GLOBAL checkpoint_threshold = ${literal(CHECKPOINT_THRESHOLD)}`);
        conn = c;
      } catch (err) {
        instance = undefined;
        throw classifyDuckError(err, `the file ${path} (open)`, ctx.sinkName);
      }
      return conn;
    }

    async function writeBatch(events: readonly SinkEvent[], wctx: WriteContext): Promise<void> {
      const c = await connect();
      try {
        await c.run('BEGIN TRANSACTION');
        await writer.apply(c, events, wctx.commit);
        await c.run('COMMIT');
      } catch (err) {
        await c.run('ROLLBACK').catch(() => undefined);
        catalog.reset();
        writer.reset();
        const first = events[0]!;
        const what = events.length === 1 ? `the event of ${first.table} at ${first.position}#${first.index}` : `a batch of ${events.length} events (from ${first.position}#${first.index})`;
        throw classifyDuckError(err, what, ctx.sinkName);
      }
    }

    return {
      async open() {
        const c = await connect();
        try {
          await catalog.setup(c);
          const r = await rows<{ position: string }>(c, `SELECT position FROM ${catalog.positions} WHERE pipeline = $1 AND sink = $2`, [ctx.pipeline, ctx.sinkName]);
          return { position: r[0]?.position ?? null };
        } catch (err) {
          throw classifyDuckError(err, 'the sink setup', ctx.sinkName);
        }
      },
      write(events, wctx) {
        if (!events.length) return Promise.resolve();
        const p = writeBatch(events, wctx);
        inflight = p.catch(() => undefined);
        return p;
      },
      close: once(async () => {
        closed = true;
        if (inflight && !(await settledWithin(inflight, CLOSE_GRACE_MS))) {
          // Interrupt the running statement; the transaction rolls back and the batch is redelivered.
          conn?.interrupt();
          await inflight;
        }
        const c = conn;
        conn = undefined;
        if (c) {
          // Fold the WAL into the file now rather than at the next open (best effort: it is
          // skipped while another connection of the shared database is in a transaction).
          await c.run('CHECKPOINT').catch(() => undefined);
          c.closeSync();
        }
        // The database itself belongs to the process-wide cache (it may be shared with another
        // sink); it is released, with its file lock, when the last reference goes. Drop ours
        // now rather than when the GC collects it: another process (a restarted pipeline, the
        // conformance kit's crash child) may be waiting for the lock.
        const i = instance;
        instance = undefined;
        i?.closeSync();
      }),
    };
  },
});
