import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgPosition } from '../../connectors/postgres/position.js';
import { ReplicationConnection } from '../../connectors/postgres/replication.js';
import { PgTestDb, waitFor } from '../helpers/context.js';

/** The LSN as a bigint. */
const lsn = (s: string) => PgPosition.parse(s).lsn;

describe('postgres: our streaming replication protocol (connectors/postgres/replication.ts)', () => {
  it('streams XLogData, answers keepalives, and reports only the flush LSN it is given', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('proto');
    const slot = `proto_${process.pid}`;
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    await db.query('CREATE PUBLICATION proto_pub FOR TABLE t');
    const created = await db.query<{ lsn: string }>("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    const start = created.rows[0]!.lsn;
    const confirmed = async () => (await db.query<{ l: string }>('SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0]!.l;

    const tags: string[] = [];
    let commitEnd = 0n;
    let keepalives = 0;
    let flush = lsn(start);
    const conn = await ReplicationConnection.open(
      { url: db.url, connectTimeoutMs: 10_000, slot, publication: 'proto_pub', startLsn: start, statusIntervalMs: 200 },
      {
        data: (_at, payload) => {
          tags.push(String.fromCharCode(payload[0]!));
          // Commit: flags u8, commit LSN, end LSN, time.
          if (payload[0] === 0x43) commitEnd = payload.readBigUInt64BE(10);
        },
        keepalive: () => void keepalives++,
        flushed: () => flush,
      },
    );
    try {
      // Until something arrived, each status update asks for a reply: a keepalive comes at once.
      await waitFor(() => keepalives > 0, { what: 'a keepalive in answer to our status update' });
      await db.query("INSERT INTO t VALUES (1, 'a'), (2, 'b')");
      await waitFor(() => commitEnd > 0n, { what: 'the transaction' });
      assert.deepEqual(tags.filter((t) => t !== 'R'), ['B', 'I', 'I', 'C'], 'Begin, two inserts, Commit (Relation messages aside)');
      // Received is not durable: the slot stays where we said, however long we stream.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await confirmed(), start, 'nothing received is acknowledged until we say so');
      flush = commitEnd;
      await waitFor(async () => lsn(await confirmed()) === commitEnd, { what: 'the slot to move to the flush LSN we report' });
    } finally {
      await conn.close();
      await conn.close(); // idempotent
    }
    await conn.done;
    assert.equal(lsn(await confirmed()), commitEnd, 'the last status update on close says the same');
  });

  it('a server error (no such slot) rejects `done` with the server error', { timeout: 60_000 }, async () => {
    await using db = await PgTestDb.create('proto');
    await db.query('CREATE PUBLICATION proto_pub FOR ALL TABLES');
    const conn = await ReplicationConnection.open(
      { url: db.url, connectTimeoutMs: 10_000, slot: 'no_such_slot', publication: 'proto_pub', startLsn: '0/0', statusIntervalMs: 1000 },
      { data: () => undefined, keepalive: () => undefined, flushed: () => 0n },
    );
    await assert.rejects(conn.done, (e: { code?: string }) => e.code === '42704');
    await conn.close();
  });

  it('a handler that throws ends the connection with its error', { timeout: 60_000 }, async () => {
    await using db = await PgTestDb.create('proto');
    const slot = `proto_t_${process.pid}`;
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    await db.query('CREATE PUBLICATION proto_pub FOR TABLE t');
    await db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    const conn = await ReplicationConnection.open(
      { url: db.url, connectTimeoutMs: 10_000, slot, publication: 'proto_pub', startLsn: '0/0', statusIntervalMs: 200 },
      {
        data: () => {
          throw new Error('cannot decode');
        },
        keepalive: () => undefined,
        flushed: () => 0n,
      },
    );
    await db.query('INSERT INTO t VALUES (1)');
    await assert.rejects(conn.done, /cannot decode/);
    await conn.close();
  });
});
