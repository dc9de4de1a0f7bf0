import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type pg from 'pg';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { REDIS_URL } from '../helpers/env.js';
import { freePort } from '../helpers/embedded-pg.js';
import { readJsonl, replay } from '../helpers/pipeline.js';

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
http: { port: ${o.port ?? 0} }
`,
  );
}

function tableState(rows: { id: string | number; v: number; note: string | null }[]): Map<string, Row> {
  return new Map(rows.map((r) => [JSON.stringify({ id: Number(r.id) }), { id: Number(r.id), v: r.v, note: r.note } as Row]));
}

function snapshotState(dir: TempDir, name: string): { status: string; tables: { done: boolean[]; rows: number }[] } | null {
  const p = `${dir.path}/state/${name}/snapshot.json`;
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null;
}

describe('postgres snapshots (DBLog watermarks, chunked, resumable)', { concurrency: false }, () => {
  it('200k rows with a concurrent writer: jsonl replay and Redis equal the table', { timeout: 240_000 }, async () => {
    await using db = await PgTestDb.create('snapc');
    await using dir = new TempDir();
    await db.query("CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note text); ALTER TABLE t REPLICA IDENTITY FULL; INSERT INTO t SELECT g, 0, 'n' || g FROM generate_series(1, 200000) g; ANALYZE t");
    const prefix = `snapc${process.pid}`;
    const redis = new Redis(REDIS_URL);
    try {
      const cfg = config(dir, db, {
        name: 'snapc',
        tables: 'public.t',
        mode: 'initial',
        chunk: 4000,
        extraSinks: `  - name: cache\n    type: redis\n    url: ${REDIS_URL}\n    key: "${prefix}:{table}:{key}"\n    fence_key: "${prefix}:fences"\n`,
      });
      await using proc = TributaryProcess.start(['run', '--config', cfg]);
      // The writer runs during the whole snapshot, on the very rows being read.
      const w = await db.connect();
      let stop = false;
      let next = 200001;
      const writing = (async (c: pg.Client) => {
        while (!stop) {
          const r = Math.random();
          const id = 1 + Math.floor(Math.random() * 200000);
          if (r < 0.5) await c.query('UPDATE t SET v = v + 1, note = $2 WHERE id = $1', [id, `w${next}`]);
          else if (r < 0.7) await c.query('DELETE FROM t WHERE id = $1', [id]);
          else await c.query('INSERT INTO t VALUES ($1, 1, $2)', [next++, 'new']);
        }
      })(w);
      await proc.waitForLog(/snapshot completed/, 180_000);
      await new Promise((r) => setTimeout(r, 500));
      stop = true;
      await writing;
      await w.end();
      const rows = (await db.query<{ id: string; v: number; note: string }>('SELECT id, v, note FROM t')).rows;
      const want = tableState(rows);
      // Wait for the stream to catch up with the last writes.
      await waitFor(() => replay(readJsonl(`${dir.path}/out.jsonl`)).size === want.size, { timeoutMs: 60_000, what: 'jsonl to catch up' });
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await proc.kill('SIGTERM'), 0);
      const events = readJsonl(`${dir.path}/out.jsonl`);
      const reads = events.filter((e) => e.op === 'r');
      assert.ok(reads.length > 150_000, `snapshot rows: ${reads.length}`);
      assert.ok(reads.every((e) => e.source.snapshot === 'true' || e.source.snapshot === 'last'));
      assert.equal(reads.filter((e) => e.source.snapshot === 'last').length, 1, 'exactly one "last" row');
      assert.ok(events.some((e) => e.op === 'u') && events.some((e) => e.op === 'd'), 'streamed changes interleave with the snapshot');
      assert.deepEqual(replay(events), want, 'replaying the jsonl gives the table');
      const keys = await redis.keys(`${prefix}:t:*`);
      assert.equal(keys.length, want.size, 'Redis holds as many rows as the table');
      const sample = keys.slice(0, 2000);
      const vals = await redis.mget(...sample);
      sample.forEach((k, i) => assert.deepEqual(JSON.parse(vals[i]!), want.get(JSON.stringify({ id: Number(k.split(':').pop()) })), `Redis ${k}`));
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      for (let i = 0; i < keys.length; i += 5000) await redis.del(...keys.slice(i, i + 5000));
      await redis.quit();
    }
  });

  it('a SIGKILL at about 25% resumes from the last durable chunk: nothing lost, few rows re-read', { timeout: 240_000 }, async () => {
    await using db = await PgTestDb.create('snapk');
    await using dir = new TempDir();
    await db.query("CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note text); INSERT INTO t SELECT g, 0, repeat('x', 50) FROM generate_series(1, 200000) g; ANALYZE t");
    const chunk = 2000;
    const workers = 2;
    const cfg = config(dir, db, { name: 'snapk', tables: 'public.t', mode: 'initial', chunk, workers });
    const first = TributaryProcess.start(['run', '--config', cfg]);
    await waitFor(() => {
      const s = snapshotState(dir, 'snapk');
      if (!s) return false;
      // Chunks are cut as the table is read, so the chunk list grows: count rows instead.
      return s.tables[0]!.rows >= 200000 * 0.25;
    }, { timeoutMs: 120_000, intervalMs: 20, what: '25% of the rows' });
    await first.kill('SIGKILL');
    const offset = (JSON.parse(readFileSync(`${dir.path}/state/snapk/sink.audit.json`, 'utf8')) as { state: { offset: number } }).state.offset;
    const before = readFileSync(`${dir.path}/out.jsonl`).subarray(0, offset).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ChangeEvent);
    const durable = new Set(before.map((e) => e.after!.id));
    assert.ok(durable.size > 0 && durable.size < 200000, `durable before the kill: ${durable.size}`);

    await using second = TributaryProcess.start(['run', '--config', cfg]);
    await second.waitForLog(/resuming snapshot from its last durable chunk/);
    await second.waitForLog(/snapshot completed/, 180_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await second.kill('SIGTERM'), 0);
    const all = readJsonl(`${dir.path}/out.jsonl`);
    const ids = all.map((e) => e.after!.id as number);
    assert.equal(new Set(ids).size, 200000, 'every row arrived');
    const lines = readFileSync(`${dir.path}/out.jsonl`, 'utf8').split('\n').filter(Boolean);
    assert.equal(new Set(lines).size, lines.length, 'no event twice in the jsonl');
    const rereads = all.slice(before.length).filter((e) => durable.has(e.after!.id)).length;
    assert.ok(rereads < workers * chunk, `rows re-read after the restart: ${rereads} (must be < ${workers * chunk})`);
    process.stderr.write(`# snapshot resume: ${durable.size} rows durable before SIGKILL, ${rereads} re-read\n`);
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
    assert.match(r.stdout, /"started"/);
    await proc.waitForLog(/snapshot completed: 125 rows/);
    await db.query('INSERT INTO other VALUES (2)');
    await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.source.table === 'other').length === 2, { what: 'streaming to go on' });
    const reads = readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'r');
    assert.equal(reads.length, 125);
    assert.ok(reads.every((e) => e.source.snapshot === 'incremental' && Number(e.after!.id) % 2 === 0 && Number(e.after!.id) <= 250));

    // Start a full snapshot and cancel it at once (through the HTTP API the CLI uses).
    const api = (body: object) => fetch(`http://127.0.0.1:${port}/snapshot`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pipeline: 'snapd', table: 'public.t', ...body }) });
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
