import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';
import { readJsonl } from '../helpers/pipeline.js';
import { snapshotState } from '../helpers/snapshot-run.js';

/**
 * An initial snapshot that cannot finish (a missing grant) is reported, fails readiness, and is
 * not abandoned: it is retried with backoff until the grant is in place, and resumed after a
 * restart. Real users without the grant, on the real servers.
 */

async function readyz(port: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: r.status, body: await r.text() };
}

async function snapshotStatus(port: number): Promise<{ status: string; error: { code: string } | null } | null> {
  const r = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { pipelines: { snapshot: { status: string; error: { code: string } | null } | null }[] };
  return r.pipelines[0]!.snapshot;
}

/** Ids the jsonl holds (snapshot rows and streamed inserts). */
function idsIn(path: string): Set<number> {
  return new Set(readJsonl(path).filter((e) => e.after).map((e) => Number(e.after!.id)));
}

describe('a snapshot that cannot finish is reported, fails readiness and is retried', { concurrency: false }, () => {
  it('mariadb: no grant on the signal table; granted while running, then again across a restart', { timeout: 300_000 }, async () => {
    await using db = await MysqlTestDb.create('sgrant');
    await using dir = new TempDir();
    const user = `trb_sg_${process.pid % 100000}`;
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int)');
    await db.query('INSERT INTO t SELECT seq, seq FROM seq_1_to_301');
    await db.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    try {
      // What streaming needs, and SELECT on the data; nothing on the signal table's database beyond that.
      await db.query(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${user}'@'%'`);
      await db.query(`GRANT SELECT ON \`${db.name}\`.* TO '${user}'@'%'`);
      const config = async (name: string) => {
        const port = await freePort();
        const file = dir.file(
          `${name}.yaml`,
          `name: ${name}
source:
  type: mysql
  url: mysql://${user}:pw@127.0.0.1:3306/
  tables: [${db.name}.t]
  snapshot: initial
  snapshot_chunk_rows: 100
  snapshot_workers: 1
  server_id: ${uniqueServerId()}
  heartbeat_ms: 1000
  signal_table: ${db.name}.tributary_signal
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/${name}.jsonl
http: { port: ${port} }
`,
        );
        return { file, port, out: `${dir.path}/${name}.jsonl` };
      };
      const grant = () => db.query(`GRANT CREATE, INSERT, DELETE ON \`${db.name}\`.* TO '${user}'@'%'`);
      const revoke = () => db.query(`REVOKE CREATE, INSERT, DELETE ON \`${db.name}\`.* FROM '${user}'@'%'`);

      // 1. Granted while it runs: the retry finishes it, no restart.
      const a = await config(`sgra${process.pid % 100000}`);
      {
        await using proc = TributaryProcess.start(['run', '--config', a.file]);
        // (Before the fix: "snapshot aborted", /readyz 200, status "cancelled".)
        await proc.waitForLog(/snapshot (failed|aborted)/, 60_000);
        const r = await readyz(a.port);
        assert.equal(r.status, 503, r.body);
        assert.match(r.body, /initial snapshot failed: TRB4010 cannot write snapshot watermarks/);
        const snap = await snapshotStatus(a.port);
        assert.equal(snap?.status, 'failed', 'status says failed, not cancelled');
        assert.equal(snap?.error?.code, 'TRB4010');
        const st = await TributaryProcess.run(['status', '--config', a.file]);
        assert.match(st.stdout, /\(initial\): failed: TRB4010 cannot write snapshot watermarks into .*tributary_signal.*fix: GRANT CREATE, INSERT, DELETE/, st.stdout);
        // Streaming goes on meanwhile.
        await db.query('INSERT INTO t VALUES (1000, 1)');
        await waitFor(() => idsIn(a.out).has(1000), { what: 'the streamed insert' });
        await grant();
        await proc.waitForLog(/snapshot recovered/, 120_000);
        await proc.waitForLog(/snapshot completed: 30[12] rows/, 60_000);
        assert.equal((await readyz(a.port)).status, 200);
        assert.equal((await snapshotStatus(a.port))!.status, 'done');
        assert.equal(idsIn(a.out).size, 302, 'every row of the table (301 read, 1 streamed)');
        assert.equal(await proc.kill('SIGTERM'), 0);
      }

      // 2. Granted while it is stopped: the restart resumes it.
      await revoke();
      const b = await config(`sgrb${process.pid % 100000}`);
      {
        await using proc = TributaryProcess.start(['run', '--config', b.file]);
        await proc.waitForLog(/snapshot failed, retrying with backoff until it succeeds: TRB4010/, 60_000);
        assert.equal((await readyz(b.port)).status, 503);
        assert.equal(await proc.kill('SIGTERM'), 0);
      }
      const stopped = await TributaryProcess.run(['status', '--config', b.file]);
      assert.match(stopped.stdout, /\(initial\): failed: TRB4010/, 'the stored state says why, not "cancelled"');
      assert.equal(snapshotState(dir, `sgrb${process.pid % 100000}`)!.status, 'failed');
      await grant();
      {
        await using proc = TributaryProcess.start(['run', '--config', b.file]);
        await proc.waitForLog(/the snapshot failed before the restart; trying again/);
        await proc.waitForLog(/snapshot completed: 30[12] rows/, 60_000);
        assert.equal((await readyz(b.port)).status, 200);
        assert.equal(await proc.kill('SIGTERM'), 0);
      }
      assert.equal(idsIn(b.out).size, 302, 'every row of the table after the restart');
      process.stderr.write('# mariadb: failed snapshot retried to completion after GRANT (running), and resumed after a restart\n');
    } finally {
      await db.query(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  });

  it('postgres: SELECT revoked while the snapshot reads; granted while running, then again across a restart', { timeout: 300_000 }, async () => {
    await using db = await PgTestDb.create('sgrant');
    await using dir = new TempDir();
    const role = `trb_sg_${process.pid % 100000}_${Math.floor(Math.random() * 1e4)}`;
    await db.query(`CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 100000) g; ANALYZE t`);
    await db.query(`CREATE ROLE ${role} LOGIN REPLICATION`);
    try {
      // The role owns the table (a publication for a table takes its owner) and may create
      // publications; its SELECT is revoked below, as an owner's can be.
      await db.query(`ALTER TABLE t OWNER TO ${role}; GRANT CREATE ON DATABASE "${db.name}" TO ${role}`);
      const config = async (name: string) => {
        const port = await freePort();
        const url = new URL(db.url);
        url.username = role;
        const file = dir.file(
          `${name}.yaml`,
          `name: ${name}
source:
  type: postgres
  url: ${url.toString()}
  tables: [public.t]
  snapshot: initial
  snapshot_chunk_rows: 1000
  snapshot_workers: 1
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/${name}.jsonl
http: { port: ${port} }
`,
        );
        return { name, file, port, out: `${dir.path}/${name}.jsonl` };
      };
      // The plan is stored before the first chunk is read: revoke then, while it reads.
      const started = (name: string) => waitFor(() => snapshotState(dir, name)?.status === 'running', { timeoutMs: 60_000, intervalMs: 5, what: 'the snapshot to start' });

      // 1. Revoked as it starts reading, granted while it runs.
      const a = await config(`sgpa${process.pid % 100000}`);
      {
        await using proc = TributaryProcess.start(['run', '--config', a.file]);
        await started(a.name);
        await db.query(`REVOKE SELECT ON t FROM ${role}`);
        // (Before the fix: a "permission denied" warning every second, status "running", /readyz 200.)
        await proc.waitForLog(/snapshot (chunk (\d+ )?)?failed|cannot find the next snapshot chunk/, 60_000);
        await waitFor(async () => (await readyz(a.port)).status === 503, { timeoutMs: 5000, what: '/readyz to fail' }).catch(() => undefined);
        const r = await readyz(a.port);
        assert.equal(r.status, 503, r.body);
        assert.match(r.body, /initial snapshot failed: TRB4010 cannot read public\.t/);
        const st = await TributaryProcess.run(['status', '--config', a.file]);
        assert.match(st.stdout, /\(initial\): failed: TRB4010 .*fix: GRANT SELECT ON "public"\."t" TO/, st.stdout);
        await db.query(`GRANT SELECT ON t TO ${role}`);
        await proc.waitForLog(/snapshot recovered/, 120_000);
        await proc.waitForLog(/snapshot completed: 100000 rows/, 120_000);
        assert.equal((await readyz(a.port)).status, 200);
        assert.equal(await proc.kill('SIGTERM'), 0);
      }
      assert.equal(idsIn(a.out).size, 100000);

      // 2. Revoked as it starts reading, granted while it is stopped.
      const b = await config(`sgpb${process.pid % 100000}`);
      {
        await using proc = TributaryProcess.start(['run', '--config', b.file]);
        await started(b.name);
        await db.query(`REVOKE SELECT ON t FROM ${role}`);
        await proc.waitForLog(/snapshot failed, retrying with backoff until it succeeds: TRB4010/, 60_000);
        assert.equal(await proc.kill('SIGTERM'), 0);
      }
      assert.match((await TributaryProcess.run(['status', '--config', b.file])).stdout, /\(initial\): failed: TRB4010/);
      await db.query(`GRANT SELECT ON t TO ${role}`);
      {
        await using proc = TributaryProcess.start(['run', '--config', b.file]);
        await proc.waitForLog(/the snapshot failed before the restart; trying again/);
        await proc.waitForLog(/snapshot completed: 100000 rows/, 120_000);
        assert.equal(await proc.kill('SIGTERM'), 0);
      }
      assert.equal(idsIn(b.out).size, 100000);
      process.stderr.write('# postgres: failed snapshot retried to completion after GRANT (running), and resumed after a restart\n');
    } finally {
      await db.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      // Its slots go with the database; the role after them.
      await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${role}'`).catch(() => undefined);
      await waitFor(async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE usename = '${role}'`)).rowCount === 0, { timeoutMs: 10_000 }).catch(() => undefined);
      await db.query(`DROP ROLE IF EXISTS ${role}`);
    }
  });
});
