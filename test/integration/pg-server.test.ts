import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { EmbeddedPg } from '../helpers/embedded-pg.js';
import { InProcessPipeline, readJsonl } from '../helpers/pipeline.js';
import { PgPosition } from '../../connectors/postgres/position.js';
import { PG_URL } from '../helpers/env.js';

describe('postgres server conditions', { concurrency: false }, () => {
  it('wal_level=replica gives a clear preflight error naming the fix', { timeout: 120_000 }, async () => {
    await using server = await EmbeddedPg.start(['-c', 'wal_level=replica']);
    await server.query('CREATE TABLE orders (id int PRIMARY KEY)');
    await using dir = new TempDir();
    const cfg = dir.file(
      'replica.yaml',
      `name: replica\nsource:\n  type: postgres\n  url: ${server.url()}\n  tables: [public.orders]\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - { name: out, type: jsonl, path: ${dir.path}/out.jsonl }\nhttp: { port: 0 }\n`,
    );
    const v = await TributaryProcess.run(['validate', '--config', cfg, '--check-source']);
    assert.equal(v.code, 2);
    assert.match(v.stdout, /ERROR TRB2001 replica: wal_level is "replica"; logical decoding needs "logical"/);
    assert.match(v.stdout, /fix: run ALTER SYSTEM SET wal_level = 'logical'; then restart Postgres/);
    assert.doesNotMatch(v.stdout + v.stderr, /test@/, 'the password never appears');
    const r = await TributaryProcess.run(['run', '--config', cfg]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /TRB2001 wal_level is "replica"/);
  });

  it('resumes by itself after the Postgres server restarts mid-stream', { timeout: 180_000 }, async () => {
    await using server = await EmbeddedPg.start();
    await server.query('CREATE TABLE t (id int PRIMARY KEY, v int); ALTER TABLE t REPLICA IDENTITY FULL');
    await using p = await InProcessPipeline.start({
      name: 'restart',
      source: `type: postgres\nurl: ${server.url()}\ntables: [public.t]\nsnapshot: never`,
    });
    await server.query('INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g');
    await p.waitForEvents(100);
    await server.restart();
    await server.query('INSERT INTO t SELECT g, 1 FROM generate_series(101, 200) g');
    await server.query('UPDATE t SET v = 2 WHERE id <= 10');
    const evs = await p.waitForEvents(210, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    const all = p.events();
    assert.equal(all.length, 210, 'nothing lost, nothing twice');
    assert.deepEqual(all.slice(100, 200).map((e) => e.after!.id), Array.from({ length: 100 }, (_, i) => 101 + i));
    assert.equal(evs[209]!.op, 'u');
    assert.equal(p.pipeline.state, 'running');
  });

  it("an idle slot's confirmed_flush_lsn advances while other databases write WAL", { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('idle');
    await using busy = await PgTestDb.create('busy');
    await db.query('CREATE TABLE quiet (id int PRIMARY KEY)');
    await busy.query('CREATE TABLE noise (id int, pad text)');
    await using p = await InProcessPipeline.start({
      name: 'idle',
      // No heartbeat: the keepalive acknowledgement alone must move the slot.
      source: `type: postgres\nurl: ${db.url}\ntables: [public.quiet]\nsnapshot: never\nheartbeat_ms: 0\nstatus_interval_ms: 200`,
    });
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      const lsn = async () => {
        const r = await admin.query<{ l: string }>("SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = 'tributary_idle'");
        return PgPosition.parse(r.rows[0]!.l);
      };
      const before = await lsn();
      for (let i = 0; i < 5; i++) await busy.query("INSERT INTO noise SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g");
      const walNow = PgPosition.parse((await admin.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l);
      await waitFor(async () => (await lsn()).compare(before) > 0 && (await lsn()).lsn > before.lsn + 1_000_000n, { timeoutMs: 60_000, what: 'the idle slot to advance' });
      const after = await lsn();
      assert.ok(after.lsn > before.lsn + 1_000_000n, `slot moved from ${before.serialize()} to ${after.serialize()} (WAL at ${walNow.serialize()})`);
      assert.equal(p.events().length, 0, 'and it emitted nothing');
    } finally {
      await admin.end();
    }
  });
  it('a terminated control connection is replaced: heartbeats go on, and a server shutdown is not a warning', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('ctl');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const cfg = dir.file(
      'ctl.yaml',
      `name: ctl\nsource:\n  type: postgres\n  url: ${db.url}\n  tables: [public.t]\n  snapshot: never\n  heartbeat_ms: 200\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - { name: out, type: jsonl, path: ${dir.path}/out.jsonl }\nhttp: { port: 0 }\n`,
    );
    await using p = TributaryProcess.start(['run', '--config', cfg]);
    await p.waitForLog(/pipeline ctl running/);
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      const controlPid = async () =>
        (await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tributary-control'", [db.name])).rows[0]?.pid;
      let first: number | undefined;
      await waitFor(async () => (first = await controlPid()) !== undefined, { what: 'the control connection' });
      await admin.query('SELECT pg_terminate_backend($1)', [first]);
      // The next heartbeat connects again (before, it failed on the dead client until the
      // replication connection happened to drop).
      let second: number | undefined;
      await waitFor(async () => (second = await controlPid()) !== undefined && second !== first, { timeoutMs: 10_000, what: 'a new control connection' });
      await db.query('INSERT INTO t SELECT generate_series(1, 10)');
      await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).length === 10, { what: 'the rows after the reconnect' });
      const log = p.stdout + p.stderr;
      assert.match(log, /"level":30,[^\n]*"code":"57P01"[^\n]*control connection lost: terminating connection due to administrator command; it reconnects when next needed/);
      assert.doesNotMatch(log, /heartbeat failed/);
      assert.doesNotMatch(log, /"level":40[^\n]*control connection/, 'an administrator shutdown is not a warning');
    } finally {
      await admin.end();
    }
    assert.equal(await p.kill('SIGTERM'), 0);
  });
});
