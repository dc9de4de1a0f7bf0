import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { readJsonl, replay } from '../helpers/pipeline.js';
import { REDIS_URL } from '../helpers/env.js';
import { Redis } from 'ioredis';
import type { Row } from '../../src/core/event.js';

/**
 * Issue 14, item 9: `run --role source` and `run --role sinks` as separate processes over the
 * embedded log, each SIGKILLed and restarted on its own under a steady writer; the locks that
 * keep one writer per log and one process per sink; `status` across the processes.
 */
describe('postgres: source and sinks in separate processes (run --role)', { concurrency: false }, () => {
  it('SIGKILL of the source process, then of the sinks processes: every committed change once, replay = table', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('roles');
    await db.query('CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note text); ALTER TABLE items REPLICA IDENTITY FULL');
    await using dir = new TempDir('tributary-roles-');
    const audit = dir.file('audit.jsonl');
    const small = dir.file('small.jsonl');
    const cfg = dir.file(
      'roles.yaml',
      `name: roles
source: { type: postgres, url: ${db.url}, tables: [public.items], snapshot: never, status_interval_ms: 200 }
state: { type: file, dir: ${dir.path}/state }
sinks:
  - { name: audit, type: jsonl, path: ${audit} }
  - { name: small, type: jsonl, path: ${small}, batch: { max_events: 7 } }
http: { port: 0 }
`,
    );
    const source = () => TributaryProcess.start(['run', '--config', cfg, '--role', 'source']);
    const sinks = (name: string) => TributaryProcess.start(['run', '--config', cfg, '--role', 'sinks', '--sink', name]);
    const procs = { src: source(), audit: sinks('audit'), small: sinks('small') };
    await procs.src.waitForLog(/pipeline roles running \(role source\)/);
    await procs.audit.waitForLog(/running \(role sinks: audit\)/);
    await procs.small.waitForLog(/running \(role sinks: small\)/);

    const w = await db.connect();
    let committed = 0;
    let stop = false;
    const ids: number[] = [];
    let next = 1;
    const writing = (async () => {
      while (!stop) {
        const r = Math.random();
        if (r < 0.4 || ids.length < 20) {
          const id = next++;
          committed += (await w.query('INSERT INTO items VALUES ($1, 0, $2)', [id, `note ${id}`])).rowCount ?? 0;
          ids.push(id);
        } else if (r < 0.85) {
          committed += (await w.query('UPDATE items SET v = v + 1, note = $2 WHERE id = $1', [ids[Math.floor(Math.random() * ids.length)]!, `updated ${committed}`])).rowCount ?? 0;
        } else {
          committed += (await w.query('DELETE FROM items WHERE id = $1', [ids.splice(Math.floor(Math.random() * ids.length), 1)[0]!])).rowCount ?? 0;
        }
      }
    })();
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms + Math.random() * ms));
    try {
      // The source dies: the sinks processes wait on the log, and follow the new writer.
      await pause(1200);
      await procs.src.kill('SIGKILL');
      await pause(400);
      procs.src = source();
      await procs.src.waitForLog(/pipeline roles running \(role source\)/);
      // Then the sinks: the jsonl files are cut back to their checkpoints and continue.
      await pause(1200);
      await procs.audit.kill('SIGKILL');
      await procs.small.kill('SIGKILL');
      await pause(400);
      procs.audit = sinks('audit');
      procs.small = sinks('small');
      await procs.audit.waitForLog(/running \(role sinks: audit\)/);
      // Both at once, while the sinks are mid-catch-up.
      await pause(800);
      await procs.src.kill('SIGKILL');
      await procs.small.kill('SIGKILL');
      procs.src = source();
      procs.small = sinks('small');
      await procs.src.waitForLog(/pipeline roles running \(role source\)/);
      await pause(1200);
    } finally {
      stop = true;
      await writing;
      await w.end();
    }
    assert.ok(committed >= 200, `the writer committed ${committed} changes`);
    try {
      try {
        await waitFor(() => readJsonl(audit).length >= committed && readJsonl(small).length >= committed, { timeoutMs: 45_000 });
      } catch {
        // A stall says how far each file got and what each process last said.
        const tails = Object.entries(procs).map(([k, p]) => `--- ${k} (${p.running ? 'running' : 'gone'}):\n${p.stderr.slice(-3000)}`);
        assert.fail(`timed out waiting for both jsonl files to reach ${committed} events: audit holds ${readJsonl(audit).length}, small ${readJsonl(small).length}\n${tails.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 800));
      for (const p of Object.values(procs)) assert.equal(p.running, true, p.stderr.slice(-2000));
      for (const p of Object.values(procs)) assert.equal(await p.kill('SIGTERM'), 0, 'a drained SIGTERM stop exits 0');
    } finally {
      for (const p of Object.values(procs)) if (p.running) await p.kill('SIGKILL');
    }
    const events = readJsonl(audit);
    const txns = events.map((e) => e.source.txId);
    assert.equal(events.length, committed, 'every committed change exactly once in the jsonl file');
    assert.equal(new Set(txns).size, committed, 'no transaction appears twice');
    assert.deepEqual(readJsonl(small).map((e) => e.source.txId), txns, 'the other sinks process holds the same events in the same order');
    const rows = (await db.query<{ id: string; v: number; note: string }>('SELECT id, v, note FROM items ORDER BY id')).rows;
    const want = new Map(rows.map((r) => [JSON.stringify({ id: Number(r.id) }), { id: Number(r.id), v: r.v, note: r.note } as Row]));
    assert.deepEqual(replay(events), want, 'replaying the jsonl gives the table');
    console.log(`# roles: ${committed} committed changes across SIGKILLs of the source and sinks processes; jsonl ${events.length} lines; replay = table (${want.size} rows)`);
  });

  it('refuses a second writer (TRB5020), a sink already running elsewhere (TRB5021), and a role without the log (TRB5022); status shows each process', { timeout: 90_000 }, async () => {
    await using db = await PgTestDb.create('roles_lock');
    await db.query('CREATE TABLE items (id bigint PRIMARY KEY, note text)');
    await using dir = new TempDir('tributary-roles-lock-');
    const cfg = dir.file(
      'roles.yaml',
      `name: locks
source: { type: postgres, url: ${db.url}, tables: [public.items], snapshot: never }
state: { type: file, dir: ${dir.path}/state }
sinks:
  - { name: audit, type: jsonl, path: ${dir.path}/audit.jsonl }
  - { name: other, type: jsonl, path: ${dir.path}/other.jsonl }
http: { port: 0 }
`,
    );
    const [srcPort, sinkPort] = [await freePort(), await freePort()];
    await using src = TributaryProcess.start(['run', '--config', cfg, '--role', 'source', '--http-port', String(srcPort)]);
    await using snk = TributaryProcess.start(['run', '--config', cfg, '--role', 'sinks', '--sink', 'audit', '--http-port', String(sinkPort)]);
    await src.waitForLog(/running \(role source\)/);
    await snk.waitForLog(/running \(role sinks: audit\)/);

    for (const role of ['source', 'all']) {
      const again = await TributaryProcess.run(['run', '--config', cfg, '--role', role], { timeoutMs: 30_000 });
      assert.equal(again.code, 1, again.stderr);
      assert.match(again.stderr, /TRB5020 pipeline locks: another process already runs its source and writes its log/);
      assert.match(again.stderr, /fix: stop the other `tributary run --role source`/);
    }
    const twice = await TributaryProcess.run(['run', '--config', cfg, '--role', 'sinks', '--sink', 'audit'], { timeoutMs: 30_000 });
    assert.equal(twice.code, 1, twice.stderr);
    assert.match(twice.stderr, /TRB5021 pipeline locks: sink audit already runs in another process/);
    const unknown = await TributaryProcess.run(['run', '--config', cfg, '--role', 'sinks', '--sink', 'nope'], { timeoutMs: 30_000 });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /TRB5023 run --sink: pipeline locks has no sink named "nope"/);

    // The change flows from one process to the other, and status shows both with their parts.
    await db.query("INSERT INTO items VALUES (1, 'one')");
    await waitFor(() => readJsonl(`${dir.path}/audit.jsonl`).length === 1, { timeoutMs: 20_000, what: 'the insert in the sinks process' });
    const st = await TributaryProcess.run(['status', '--config', cfg, '--http-port', String(srcPort), '--http-port', String(sinkPort)]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /pipeline locks: 2 processes/);
    assert.match(st.stdout, new RegExp(`role source on port ${srcPort}: running, runs the source \\(writes the log\\); elsewhere: audit, other`));
    assert.match(st.stdout, new RegExp(`role sinks on port ${sinkPort}: running, runs sinks audit; elsewhere: other`));
    const live = (await (await fetch(`http://127.0.0.1:${sinkPort}/status`)).json()) as { pipelines: { role: string; sinks: { name: string; offset: number | null }[] }[] };
    assert.equal(live.pipelines[0]!.role, 'sinks');
    assert.deepEqual(live.pipelines[0]!.sinks.map((s) => s.name), ['audit']);
    assert.equal(await src.kill('SIGTERM'), 0);
    assert.equal(await snk.kill('SIGTERM'), 0);

    const mem = dir.file('memory.yaml', `name: mem\nsource: { type: postgres, url: ${db.url}, tables: [public.items] }\nstream: { type: memory }\nsinks: [{ name: a, type: jsonl, path: ${dir.path}/a.jsonl }]\nhttp: { port: 0 }\n`);
    const noLog = await TributaryProcess.run(['run', '--config', mem, '--role', 'sinks'], { timeoutMs: 30_000 });
    assert.equal(noLog.code, 2);
    assert.match(noLog.stderr, /TRB5022 run --role sinks: pipeline mem has stream type memory/);
  });

  it('with the Redis state store: a part still refuses a Redis that could lose checkpoints (TRB3010), and the sinks process commits there', { timeout: 90_000 }, async () => {
    await using db = await PgTestDb.create('roles_redis');
    await db.query('CREATE TABLE items (id bigint PRIMARY KEY, note text)');
    await using dir = new TempDir('tributary-roles-redis-');
    const name = `rr_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const redis = new Redis(REDIS_URL);
    try {
      const appendfsync = ((await redis.config('GET', 'appendfsync')) as string[])[1];
      const config = (check: boolean) =>
        dir.file(
          `roles-${check}.yaml`,
          `name: ${name}
source: { type: postgres, url: ${db.url}, tables: [public.items], snapshot: never }
state: { type: redis, url: ${REDIS_URL}, check_durability: ${check} }
sinks:
  - { name: audit, type: jsonl, path: ${dir.path}/audit.jsonl }
http: { port: 0 }
`,
        );
      if (appendfsync !== 'always') {
        // Without the pipeline's lease, a part is still held to a durable store.
        const refused = await TributaryProcess.run(['run', '--config', config(true), '--role', 'sinks'], { timeoutMs: 30_000, cwd: dir.path });
        assert.equal(refused.code, 1, refused.stderr);
        assert.match(refused.stderr, /TRB3010/);
      }
      const cfg = config(false);
      // The log lives under ./.tributary beside a Redis state store: both processes share the cwd.
      await using src = TributaryProcess.start(['run', '--config', cfg, '--role', 'source'], { cwd: dir.path });
      await using snk = TributaryProcess.start(['run', '--config', cfg, '--role', 'sinks'], { cwd: dir.path });
      await src.waitForLog(/running \(role source\)/);
      await snk.waitForLog(/running \(role sinks: audit\)/);
      await db.query("INSERT INTO items VALUES (1, 'one'), (2, 'two')");
      await waitFor(() => readJsonl(`${dir.path}/audit.jsonl`).length === 2, { timeoutMs: 20_000, what: 'the inserts in the sinks process' });
      await waitFor(async () => (await redis.hget(`tributary:${name}:sinks`, 'audit')) !== null, { timeoutMs: 20_000, what: 'the checkpoint in Redis' });
      const ck = JSON.parse((await redis.hget(`tributary:${name}:sinks`, 'audit'))!) as { offset: number };
      assert.ok(ck.offset > 0, JSON.stringify(ck));
      assert.equal(await snk.kill('SIGTERM'), 0);
      assert.equal(await src.kill('SIGTERM'), 0);
    } finally {
      const keys = await redis.keys(`tributary:${name}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
  });
});
