/**
 * The `postgres` sink: a warehouse table or a live replica in another Postgres database.
 *
 * - `mode: mirror` keeps the current row per key. Each row carries the fence of the event that
 *   wrote it (`_tributary_fence`, text, "C" collation); an upsert applies only over an older
 *   fence, and a delete leaves a tombstone (`_tributary_tombstones`), so replaying older events
 *   never regresses or resurrects a row.
 * - `mode: history` appends every event (`_op`, `_position`, `_index`, `_fence`, `_ts_ms`,
 *   `_before` plus the row's columns); `_fence` is unique, so a redelivery inserts nothing.
 *
 * Every batch is one transaction holding the data, any DDL it needs and, when the batch ends a
 * source transaction, the committed position in `_tributary_positions`. `open()` returns that
 * position, so the runtime resumes after it: the sink is exactly-once on its own, whatever
 * happened to the runtime's checkpoint. See docs/sinks/postgres.md.
 */
import pg from 'pg';
import { defineSink, ErrorCodes, once, settledWithin, TributaryError, type SinkEvent, type WriteContext } from '../../src/sdk/index.js';
import { PgCatalog } from './catalog.js';
import { PostgresSinkConfig, connectionString } from './config.js';
import { classifyPgError } from './errors.js';
import { PgBatchWriter } from './writer.js';
import { checkPostgresSink } from './check.js';

export { PostgresSinkConfig } from './config.js';

/** How long `close()` lets an in-flight batch finish before cutting its connection (it then rolls back). */
const CLOSE_GRACE_MS = 5000;

export default defineSink({
  type: 'postgres',
  description:
    'Writes change events into Postgres tables: a mirror of the current rows (fenced upserts, tombstoned deletes) or an append-only history. Bulk, set-based writes; the committed position is stored in the same transaction as the data, so the sink is exactly-once.',
  config: PostgresSinkConfig,
  check: checkPostgresSink,
  create(config, ctx) {
    // One connection is enough (a batch is one transaction) and keeps batches in order. The pool
    // exists so that a connection that failed is thrown away and the retry gets a fresh one.
    const pool = new pg.Pool({ connectionString: connectionString(config), max: 1, application_name: `tributary:${ctx.pipeline}:${ctx.sinkName}` });
    pool.on('error', () => undefined); // an idle connection died: the next checkout reconnects
    const catalog = new PgCatalog(config.mode, config.meta_schema);
    const writer = new PgBatchWriter(
      { mode: config.mode, schema: config.schema, table: config.table, pipeline: ctx.pipeline, sink: ctx.sinkName, maxRows: config.max_rows_per_statement },
      catalog,
    );
    let closed = false;
    let active: pg.PoolClient | null = null;
    let inflight: Promise<void> | null = null;

    function assertOpen(): void {
      if (closed) throw new TributaryError(ErrorCodes.SINK_CLOSED, `postgres sink ${ctx.sinkName} is closed`, { retryable: false });
    }

    async function writeBatch(events: readonly SinkEvent[], wctx: WriteContext): Promise<void> {
      assertOpen();
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw classifyPgError(err, 'a batch (connect)', ctx.sinkName);
      }
      active = client;
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        await writer.apply(client, events, wctx.commit);
        await client.query('COMMIT');
      } catch (err) {
        broken = err as Error;
        await client.query('ROLLBACK').catch(() => undefined);
        // The cached catalog may describe DDL that was rolled back.
        catalog.reset();
        writer.reset();
        const first = events[0]!;
        const what = events.length === 1 ? `the event of ${first.table} at ${first.position}#${first.index}` : `a batch of ${events.length} events (from ${first.position}#${first.index})`;
        throw classifyPgError(err, what, ctx.sinkName);
      } finally {
        active = null;
        // Releasing with an error destroys the connection: never reuse one that may be broken.
        client.release(broken && !(broken as { code?: unknown }).code ? broken : undefined);
      }
    }

    return {
      async open() {
        assertOpen();
        const client = await pool.connect().catch((err: unknown) => {
          throw classifyPgError(err, 'the sink setup (connect)', ctx.sinkName);
        });
        try {
          await catalog.setup(client);
          const r = await client.query<{ position: string }>(`SELECT position FROM ${catalog.positions} WHERE pipeline = $1 AND sink = $2`, [ctx.pipeline, ctx.sinkName]);
          return { position: r.rows[0]?.position ?? null };
        } catch (err) {
          throw classifyPgError(err, 'the sink setup', ctx.sinkName);
        } finally {
          client.release();
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
        if (inflight) await settledWithin(inflight, CLOSE_GRACE_MS);
        // Still running: cut the socket; Postgres rolls the transaction back, and the batch
        // is redelivered after the restart.
        const a = active as (pg.PoolClient & { connection?: { stream?: { destroy(): void } } }) | null;
        a?.connection?.stream?.destroy();
        await pool.end().catch(() => undefined);
      }),
    };
  },
});
