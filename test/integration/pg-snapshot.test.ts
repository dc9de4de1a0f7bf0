import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { REDIS_URL } from '../helpers/env.js';
import { freePort } from '../helpers/embedded-pg.js';
import { readJsonl } from '../helpers/pipeline.js';
import { resumeAfterSigkill, snapshotState, snapshotUnderLoad } from '../helpers/snapshot-run.js';

/** The admin token of these tests' configs (POST /snapshot needs one). */
const TOKEN = 'snapshot-test-token-0123456789';

function config(dir: TempDir, db: PgTestDb, o: { name: string; tables: string; mode: string; chunk?: number; workers?: number; port?: number; extraSinks?: string; stream?: string }) {
  return dir.file(
    `${o.name}.yaml`,
    `name: ${o.name}
source:
  type: postgres
  url: ${db.url}
  tables: [${o.tables}]
  snapshot: ${o.mode}
  snapshot_chunk_rows: ${o.chunk ?? 5000}
  snapshot_workers: ${o.workers ?? 2}
  status_interval_ms: 200
${o.stream ? `stream: ${o.stream}\n` : ''}state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/out.jsonl
${o.extraSinks ?? ''}
http: { port: ${o.port ?? 0}, auth_token: ${TOKEN} }
`,
  );
}



describe('postgres snapshots (DBLog watermarks, chunked, resumable)', { concurrency: false }, () => {
  it('200k rows with a concurrent writer: jsonl replay and Redis equal the table', { timeout: 240_000 }, async () => {
    await using db = await PgTestDb.create('snapc');
    await using dir = new TempDir();
    await db.query("CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note text); ALTER TABLE t REPLICA IDENTITY FULL; INSERT INTO t SELECT g, 0, 'n' || g FROM generate_series(1, 200000) g; ANALYZE t");
    await snapshotUnderLoad({
      label: 'postgres',
      name: `snapc${process.pid}`,
      dir,
      config: (o) => config(dir, db, { ...o, tables: 'public.t' }),
      async writer() {
        const c = await db.connect();
        return {
          update: (id, note) => c.query('UPDATE t SET v = v + 1, note = $2 WHERE id = $1', [id, note]),
          remove: (id) => c.query('DELETE FROM t WHERE id = $1', [id]),
          insert: (id, note) => c.query('INSERT INTO t VALUES ($1, 1, $2)', [id, note]),
          end: () => c.end(),
        };
      },
      rows: async () => (await db.query<{ id: string; v: number; note: string }>('SELECT id, v, note FROM t')).rows,
    });
  });

  it('a SIGKILL at about 25% resumes from the last durable chunk: nothing lost, few rows re-read', { timeout: 240_000 }, async () => {
    await using db = await PgTestDb.create('snapk');
    await using dir = new TempDir();
    await db.query("CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note text); INSERT INTO t SELECT g, 0, repeat('x', 50) FROM generate_series(1, 200000) g; ANALYZE t");
    await resumeAfterSigkill({ label: 'postgres', name: 'snapk', dir, config: (o) => config(dir, db, { ...o, tables: 'public.t' }) });
  });

  it('on demand: a filtered --where snapshot while streaming, cancel, pause and resume', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('snapd');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note text); INSERT INTO t SELECT g, 0, null FROM generate_series(1, 100000) g; ANALYZE t');
    await db.query('CREATE TABLE other (id int PRIMARY KEY)');
    const port = await freePort();
    const cfg = config(dir, db, { name: 'snapd', tables: 'public.t, public.other', mode: 'never', chunk: 1000, port });
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(/pipeline snapd running/);
    await db.query('INSERT INTO other VALUES (1)');
    const r = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.t', '--where', 'id <= 250 AND id % 2 = 0']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /started on pipeline/);
    await proc.waitForLog(/snapshot completed: 125 rows/);
    await db.query('INSERT INTO other VALUES (2)');
    await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.source.table === 'other').length === 2, { what: 'streaming to go on' });
    const reads = readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'r');
    assert.equal(reads.length, 125);
    assert.ok(reads.every((e) => e.source.snapshot === 'incremental' && Number(e.after!.id) % 2 === 0 && Number(e.after!.id) <= 250));

    // Start a full snapshot and cancel it at once (through the HTTP API the CLI uses).
    const api = (body: object) => fetch(`http://127.0.0.1:${port}/snapshot`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ pipeline: 'snapd', table: 'public.t', ...body }) });
    assert.equal((await api({ action: 'start' })).status, 202);
    const again = await api({ action: 'start' });
    assert.equal(again.status, 409, 'a second snapshot while one runs is refused');
    assert.match(await again.text(), /is running; cancel it or wait/);
    const cancel = await api({ action: 'cancel' });
    assert.equal(cancel.status, 200);
    assert.match(await cancel.text(), /"status": "cancelled"/);
    await proc.waitForLog(/snapshot cancelled/);
    await new Promise((r) => setTimeout(r, 1000));
    const n = readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'r').length - 125;
    assert.ok(n < 100000, `the cancelled snapshot stopped early (${n} rows)`);
    const cli = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.t', '--cancel']);
    assert.equal(cli.code, 1, 'nothing left to cancel');
    const st = await TributaryProcess.run(['status', '--config', cfg]);
    assert.match(st.stdout, /snapshot [0-9a-f-]+ \(incremental\): cancelled/);
    assert.match(st.stdout, /public\.t: \d+\/\d+ chunks, \d+ rows of ~\d+/);

    // Pause stops reading new chunks; resume finishes the table.
    const readCount = () => readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'r').length;
    assert.equal((await api({ action: 'start', table: 'public.t', where: 'id <= 60000' })).status, 202);
    assert.equal((await api({ action: 'pause' })).status, 200);
    await proc.waitForLog(/snapshot paused/);
    await new Promise((r) => setTimeout(r, 1500)); // chunks in flight when paused land
    const atPause = readCount();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(readCount(), atPause, 'no rows arrive while paused');
    const resumed = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.t', '--resume']);
    assert.equal(resumed.code, 0, resumed.stdout);
    await proc.waitForLog(/snapshot completed: 60000 rows/, 60_000);
  });

  it('two BullMQ worker processes share one table and together produce the exact row set', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('snapq');
    await using dir = new TempDir();
    await db.query("CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note text); INSERT INTO t SELECT g, 0, 'n' || g FROM generate_series(1, 60000) g; ANALYZE t");
    const cfg = config(dir, db, { name: 'snapq', tables: 'public.t', mode: 'initial', chunk: 1500, workers: 0, stream: `{ type: redis, url: "${REDIS_URL}" }` });
    await using w1 = TributaryProcess.start(['run', '--worker', '--config', cfg]);
    await using w2 = TributaryProcess.start(['run', '--worker', '--config', cfg]);
    await w1.waitForLog(/snapshot worker waiting/);
    await w2.waitForLog(/snapshot worker waiting/);
    await using main = TributaryProcess.start(['run', '--config', cfg]);
    await main.waitForLog(/snapshot completed: 60000 rows/, 120_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await main.kill('SIGTERM'), 0);
    const chunksOf = (p: TributaryProcess) => (p.stderr.match(/snapshot chunk done/g) ?? []).length;
    const c1 = chunksOf(w1);
    const c2 = chunksOf(w2);
    assert.ok(c1 > 0 && c2 > 0, `both workers read chunks (${c1} and ${c2})`);
    assert.equal(c1 + c2, 40, 'every chunk read once');
    const ids = readJsonl(`${dir.path}/out.jsonl`).map((e) => Number(e.after!.id));
    assert.equal(ids.length, 60000);
    assert.deepEqual([...new Set(ids)].sort((a, b) => a - b), Array.from({ length: 60000 }, (_, i) => i + 1));
    assert.equal(await w1.kill('SIGTERM'), 0);
    assert.equal(await w2.kill('SIGTERM'), 0);
  });

  it('a table without a primary key is read in ctid ranges', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('snapctid');
    await using dir = new TempDir();
    await db.query("CREATE TABLE logs (n int, msg text); ALTER TABLE logs REPLICA IDENTITY FULL; INSERT INTO logs SELECT g, 'm' || g FROM generate_series(1, 30000) g; ANALYZE logs");
    const cfg = config(dir, db, { name: 'snapctid', tables: 'public.logs', mode: 'initial_only', chunk: 3000 });
    const r = await TributaryProcess.run(['run', '--config', cfg], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    // Chunks finish close together and share coalesced state writes: the stop is announced once.
    assert.equal((r.stdout + r.stderr).match(/initial_only: snapshot complete and durable/g)?.length, 1);
    const ns = readJsonl(`${dir.path}/out.jsonl`).map((e) => e.after!.n as number);
    assert.equal(ns.length, 30000);
    assert.equal(new Set(ns).size, 30000);
    const s = snapshotState(dir, 'snapctid')!;
    assert.equal(s.status, 'done');
    assert.ok(s.tables[0]!.done.length > 3, `ctid chunks: ${s.tables[0]!.done.length}`);
  });

  it('initial_only exits 0 when done; when_needed re-snapshots after the slot was dropped; initial refuses', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('snapw');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 3000) g');
    const only = config(dir, db, { name: 'snapw', tables: 'public.t', mode: 'initial_only', chunk: 1000 });
    const r1 = await TributaryProcess.run(['run', '--config', only]);
    assert.equal(r1.code, 0, r1.stderr.slice(-2000));
    assert.equal(readJsonl(`${dir.path}/out.jsonl`).length, 3000);
    // Run again: already complete, so it exits at once without reading again.
    const r1b = await TributaryProcess.run(['run', '--config', only]);
    assert.equal(r1b.code, 0);
    assert.equal(readJsonl(`${dir.path}/out.jsonl`).length, 3000);

    await db.query("SELECT pg_drop_replication_slot('tributary_snapw')");
    await db.query('INSERT INTO t SELECT g, 1 FROM generate_series(3001, 3500) g');
    const initial = config(dir, db, { name: 'snapw', tables: 'public.t', mode: 'initial', chunk: 1000 });
    const r2 = await TributaryProcess.run(['run', '--config', initial]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /TRB2005 replication slot "tributary_snapw" does not exist, but sinks hold positions/);
    assert.match(r2.stderr, /when_needed/);

    const needed = config(dir, db, { name: 'snapw', tables: 'public.t', mode: 'when_needed', chunk: 1000 });
    await using p = TributaryProcess.start(['run', '--config', needed]);
    await p.waitForLog(/re-snapshotting/);
    await p.waitForLog(/snapshot completed: 3500 rows/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await p.kill('SIGTERM'), 0);
    const reads = readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'r');
    assert.equal(reads.length, 3000 + 3500, 'the second snapshot read every row again, including the new ones');
  });
});
