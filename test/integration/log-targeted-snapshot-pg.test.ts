import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Row } from '../../src/core/event.js';
import { Metrics, defineRuntimeMetrics } from '../../src/runtime/metrics.js';
import { Pipeline } from '../../src/runtime/pipeline.js';
import type { LogStream } from '../../src/stream/log-stream.js';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { readJsonl, replay } from '../helpers/pipeline.js';

const byId = (a: Row, b: Row) => Number(a.id) - Number(b.id);

/**
 * Issue 14, item 4, last step: a sink that fell off the start of the log (on_gap: rebuild)
 * where the compacted state does not cover it (compaction off) gets a snapshot from the
 * source for itself alone; the other sink never sees those rows.
 */
describe('postgres: a targeted snapshot for a sink that fell off the log', { concurrency: false }, () => {
  it('the late sink gets the table as r rows, then the tail; the other sink gets no r row; a restart does not snapshot again', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('targeted');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int)');
    await using dir = new TempDir('tributary-targeted-');
    const name = `tg_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const cfgFile = dir.file(
      'p.yaml',
      `name: ${name}
source: { type: postgres, url: ${db.url}, tables: [public.t], snapshot: never, heartbeat_ms: 0, snapshot_chunk_rows: 100 }
state: { type: file, dir: ${dir.path}/state }
stream: { type: log, segment_bytes: 2048, retention: { max_age: 1ms }, compaction: { enabled: false } }
sinks:
  - { name: audit, type: jsonl, path: ${dir.path}/audit.jsonl }
  - { name: late, type: jsonl, path: ${dir.path}/late.jsonl, on_gap: rebuild }
http: { port: 0 }
`,
    );
    const make = async () => {
      const cfg = await loadConfig([cfgFile]);
      const m = new Metrics();
      defineRuntimeMetrics(m);
      return new Pipeline(cfg.pipelines[0]!, pino({ level: process.env.TRIBUTARY_TEST_LOG ?? 'silent' }), m);
    };
    const start = async () => {
      const p = await make();
      await p.start();
      return p;
    };
    const atEnd = (p: Pipeline) => {
      const s = p.stream as LogStream;
      return p.runners.every((r) => r.offset === s.log.lastCommit!.offset + 1);
    };
    const write = async (from: number, n: number) => {
      for (let i = from; i < from + n; i++) {
        await db.query(`BEGIN; INSERT INTO t SELECT g, ${i} FROM generate_series(${i * 10}, ${i * 10 + 9}) g ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v; UPDATE t SET v = v + 100 WHERE id < ${i * 5}; DELETE FROM t WHERE id = ${i * 3}; COMMIT`);
      }
    };

    let p = await start();
    try {
      await write(0, 20);
      await waitFor(() => atEnd(p), { timeoutMs: 60_000, what: 'both sinks at the end of the log' });
      await new Promise((r) => setTimeout(r, 5));
      const trimmed = await p.retention!.runOnce();
      const s = p.stream as LogStream;
      assert.ok(trimmed.removed > 0 && s.log.start > 0 && s.compacted === null, JSON.stringify(trimmed));
    } finally {
      await p.drainAndStop(5000);
    }
    // The late sink fell behind retention: its checkpoint points before the log's start.
    const ckpt = join(dir.path, 'state', name, 'sink.late.json');
    writeFileSync(ckpt, JSON.stringify({ ...JSON.parse(readFileSync(ckpt, 'utf8')), offset: 0 }));
    const auditBefore = readJsonl(`${dir.path}/audit.jsonl`).length;
    const lateBefore = readJsonl(`${dir.path}/late.jsonl`).length;

    p = await start();
    try {
      // Changes while the targeted snapshot runs: its windows keep them in order.
      await write(20, 10);
      await waitFor(() => p.snapshots?.state?.target === 'late' && p.snapshots.state.status === 'done', { timeoutMs: 60_000, what: 'the targeted snapshot to finish' });
      await write(30, 3);
      const want = JSON.stringify((await db.query('SELECT id, v FROM t ORDER BY id')).rows);
      const replayed = (file: string, from: number) => JSON.stringify([...replay(readJsonl(file).slice(from)).values()].sort(byId));
      await waitFor(() => replayed(`${dir.path}/audit.jsonl`, 0) === want && replayed(`${dir.path}/late.jsonl`, lateBefore) === want, { timeoutMs: 60_000, what: 'both sinks to hold the table' });
      await waitFor(() => atEnd(p), { timeoutMs: 60_000, what: 'both sinks to commit the end of the log' });
    } finally {
      await p.drainAndStop(5000);
    }
    const table = (await db.query('SELECT id, v FROM t ORDER BY id')).rows as Row[];
    const audit = readJsonl(`${dir.path}/audit.jsonl`);
    assert.equal(audit.filter((e) => e.op === 'r').length, 0, 'the other sink received none of the snapshot rows');
    assert.deepEqual([...replay(audit).values()].sort(byId), table, 'the other sink still replays to the table');
    assert.ok(audit.length > auditBefore);
    const late = readJsonl(`${dir.path}/late.jsonl`).slice(lateBefore);
    const reads = late.filter((e) => e.op === 'r');
    assert.ok(reads.length > 0 && reads.every((e) => e.source.snapshot === 'incremental'), `the late sink got snapshot rows (${reads.length})`);
    assert.deepEqual([...replay(late).values()].sort(byId), table, 'what the late sink received since the restart replays to the table');
    const targeted = JSON.parse(readFileSync(join(dir.path, 'state', name, 'log', 'targeted.json'), 'utf8')) as { ranges: { sink: string; from: number; to: number }[] };
    assert.ok(targeted.ranges.length > 0 && targeted.ranges.every((r) => r.sink === 'late'));
    assert.equal(targeted.ranges.reduce((n, r) => n + r.to - r.from, 0), reads.length, 'every targeted row is in a recorded range');

    // A restart: nothing is owed any more, and no sink receives anything again.
    p = await start();
    try {
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(p.snapshots?.state?.status, 'done');
    } finally {
      await p.drainAndStop(5000);
    }
    assert.equal(readJsonl(`${dir.path}/late.jsonl`).length, lateBefore + late.length);
    assert.equal(readJsonl(`${dir.path}/audit.jsonl`).length, audit.length);
  });

  it('SIGKILL in the middle of the targeted snapshot: it resumes, the other sink still gets no r row, and the late sink replays to the table', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('targeted_kill');
    await using dir = new TempDir('tributary-targeted-kill-');
    const { cfgFile, lateBefore, snapshot, reads } = await lateSinkBehindRetention(db, dir, 'tk');

    let proc = TributaryProcess.start(['run', '--config', cfgFile]);
    const updates = await updating(db);
    try {
      await waitFor(() => reads() >= 2000, { timeoutMs: 60_000, what: 'the targeted snapshot to be under way' });
      assert.equal(snapshot()?.status, 'running');
      await proc.kill('SIGKILL');
      proc = TributaryProcess.start(['run', '--config', cfgFile]);
      await waitFor(() => snapshot()?.status === 'done', { timeoutMs: 60_000, what: 'the targeted snapshot to finish after the restart' });
      assert.equal(snapshot()?.target, 'late');
    } finally {
      await updates.stop();
    }
    try {
      await bothHoldTable(db, dir, lateBefore, () => proc.stderr.slice(-3000));
      assert.equal(await proc.kill('SIGTERM'), 0);
    } finally {
      if (proc.running) await proc.kill('SIGKILL');
    }
    assert.equal(readJsonl(`${dir.path}/audit.jsonl`).filter((e) => e.op === 'r').length, 0, 'the other sink received none of the snapshot rows');
    console.log(`# targeted snapshot across a SIGKILL: ${reads()} r rows for the late sink (table of 20000 rows)`);
  });

  it('split roles: the sinks process asks, the source process snapshots for that sink alone, and a SIGKILLed other sinks process still skips the rows', { timeout: 150_000 }, async () => {
    await using db = await PgTestDb.create('targeted_roles');
    await using dir = new TempDir('tributary-targeted-roles-');
    const { cfgFile, name, lateBefore, auditBefore, snapshot, reads } = await lateSinkBehindRetention(db, dir, 'tr');

    const source = () => TributaryProcess.start(['run', '--config', cfgFile, '--role', 'source']);
    const sinks = (sink: string) => TributaryProcess.start(['run', '--config', cfgFile, '--role', 'sinks', '--sink', sink]);
    const procs = { src: source(), audit: sinks('audit'), late: sinks('late') };
    const updates = await updating(db);
    try {
      await procs.late.waitForLog(/gets a snapshot from the source for itself alone .*the process that runs the source \(run --role source\) begins it/);
      await waitFor(() => reads() >= 2000, { timeoutMs: 60_000, what: 'the targeted snapshot to reach the late sink in its own process' }).catch((err: Error) => {
        throw new Error(`${err.message} (${reads()} so far; snapshot ${JSON.stringify(snapshot())})\nsource: ${procs.src.stderr.slice(-3000)}\nlate: ${procs.late.stderr.slice(-2000)}`);
      });
      assert.equal(snapshot()?.target, 'late');
      assert.equal(snapshot()?.status, 'running');
      // The other sink's process dies mid-snapshot: started again, it reads the ranges anew.
      await procs.audit.kill('SIGKILL');
      procs.audit = sinks('audit');
      await waitFor(() => snapshot()?.status === 'done', { timeoutMs: 60_000, what: 'the targeted snapshot to finish' });
    } finally {
      await updates.stop();
    }
    try {
      await bothHoldTable(db, dir, lateBefore, () => `source: ${procs.src.stderr.slice(-2000)}\nlate: ${procs.late.stderr.slice(-2000)}`);
      for (const proc of Object.values(procs)) assert.equal(await proc.kill('SIGTERM'), 0);
    } finally {
      for (const proc of Object.values(procs)) if (proc.running) await proc.kill('SIGKILL');
    }
    const audit = readJsonl(`${dir.path}/audit.jsonl`);
    assert.ok(audit.length > auditBefore, 'the other sink received the changes made meanwhile');
    assert.equal(audit.filter((e) => e.op === 'r').length, 0, 'the other sink, in its own process, received none of the snapshot rows');
    const late = readJsonl(`${dir.path}/late.jsonl`).slice(lateBefore).filter((e) => e.op === 'r');
    assert.ok(late.every((e) => e.source.snapshot === 'incremental'));
    const targeted = JSON.parse(readFileSync(join(dir.path, 'state', name, 'log', 'targeted.json'), 'utf8')) as { ranges: { sink: string; from: number; to: number }[] };
    assert.ok(targeted.ranges.length > 0 && targeted.ranges.every((r) => r.sink === 'late'));
    assert.equal(targeted.ranges.reduce((n, r) => n + r.to - r.from, 0), late.length, 'every targeted row is in a recorded range');
    // Where the file store keeps the wish (`<key>.json` next to the sinks' checkpoints): gone.
    const stateFiles = readdirSync(join(dir.path, 'state', name));
    assert.ok(stateFiles.includes('sink.late.json'), stateFiles.join(' '));
    assert.deepEqual(stateFiles.filter((f) => f.startsWith('targeted-pending')), [], 'the wish was taken');
    console.log(`# targeted snapshot across processes: ${late.length} r rows for the late sink, none for audit (${audit.length} events)`);
  });
});

/**
 * A table of 20,000 rows streamed to sinks `audit` and `late` (compaction off, retention
 * trimming at once), then the log trimmed and `late`'s checkpoint put back to offset 0: it
 * fell off the start of the log, where only the source can rebuild it.
 */
async function lateSinkBehindRetention(db: PgTestDb, dir: TempDir, prefix: string) {
  await db.query('CREATE TABLE t (id int PRIMARY KEY, v int)');
  const name = `${prefix}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const cfgFile = dir.file(
    'p.yaml',
    `name: ${name}
source: { type: postgres, url: ${db.url}, tables: [public.t], snapshot: never, heartbeat_ms: 0, snapshot_chunk_rows: 100, snapshot_workers: 1 }
state: { type: file, dir: ${dir.path}/state }
stream: { type: log, segment_bytes: 65536, retention: { max_age: 1ms }, compaction: { enabled: false } }
sinks:
  - { name: audit, type: jsonl, path: ${dir.path}/audit.jsonl }
  - { name: late, type: jsonl, path: ${dir.path}/late.jsonl, on_gap: rebuild }
http: { port: 0 }
`,
  );
  const cfg = await loadConfig([cfgFile]);
  const m = new Metrics();
  defineRuntimeMetrics(m);
  const p = new Pipeline(cfg.pipelines[0]!, pino({ level: process.env.TRIBUTARY_TEST_LOG ?? 'silent' }), m);
  await p.start();
  try {
    await db.query('INSERT INTO t SELECT g, 0 FROM generate_series(1, 20000) g');
    for (let i = 0; i < 5; i++) await db.query(`UPDATE t SET v = v + 1 WHERE id = ${i + 1}`);
    const s = p.stream as LogStream;
    await waitFor(() => s.lastCommit !== null && s.log.durableEnd >= 20010 && p.runners.every((r) => r.offset === s.log.lastCommit!.offset + 1), { timeoutMs: 60_000, what: 'both sinks at the end of the log' });
    await new Promise((r) => setTimeout(r, 5));
    const trimmed = await p.retention!.runOnce();
    assert.ok(trimmed.removed > 0 && s.log.start > 0, JSON.stringify(trimmed));
  } finally {
    await p.drainAndStop(5000);
  }
  const ckpt = join(dir.path, 'state', name, 'sink.late.json');
  writeFileSync(ckpt, JSON.stringify({ ...JSON.parse(readFileSync(ckpt, 'utf8')), offset: 0 }));
  const lateBefore = readJsonl(`${dir.path}/late.jsonl`).length;
  const auditBefore = readJsonl(`${dir.path}/audit.jsonl`).length;
  /** The snapshot state the pipeline stored (its target, its status). */
  const snapshot = () => {
    try {
      return JSON.parse(readFileSync(join(dir.path, 'state', name, 'snapshot.json'), 'utf8')) as { status: string; target?: string };
    } catch {
      return null;
    }
  };
  /** Snapshot rows the late sink received since. */
  const reads = () => readJsonl(`${dir.path}/late.jsonl`).slice(lateBefore).filter((e) => e.op === 'r').length;
  return { cfgFile, name, lateBefore, auditBefore, snapshot, reads };
}

/**
 * Wait until the replay of both jsonl files (the late sink's from `lateFrom`) equals the table;
 * on a timeout, say which rows differ, with `context()` (the processes' logs).
 */
async function bothHoldTable(db: PgTestDb, dir: TempDir, lateFrom: number, context: () => string): Promise<void> {
  const want = JSON.stringify((await db.query('SELECT id, v FROM t ORDER BY id')).rows);
  const replayed = (file: string, from: number) => JSON.stringify([...replay(readJsonl(file).slice(from)).values()].sort(byId));
  await waitFor(() => replayed(`${dir.path}/audit.jsonl`, 0) === want && replayed(`${dir.path}/late.jsonl`, lateFrom) === want, { timeoutMs: 60_000, what: 'both sinks to hold the table' }).catch((err: Error) => {
    const table = new Map((JSON.parse(want) as Row[]).map((r) => [Number(r.id), JSON.stringify(r)]));
    const diff = (file: string, from: number) => {
      const got = new Map([...replay(readJsonl(file).slice(from)).values()].map((r) => [Number(r.id), JSON.stringify(r)]));
      const ids = [...new Set([...table.keys(), ...got.keys()])].filter((id) => table.get(id) !== got.get(id));
      return ids.slice(0, 5).map((id) => `${id}: table ${table.get(id)} sink ${got.get(id)}`).join('; ') + ` (${ids.length} differ)`;
    };
    throw new Error(`${err.message}\naudit: ${diff(`${dir.path}/audit.jsonl`, 0)}\nlate: ${diff(`${dir.path}/late.jsonl`, lateFrom)}\n${context()}`);
  });
}

/** Updates of the table's rows, one after another on a connection of their own, until `stop()`. */
async function updating(db: PgTestDb): Promise<{ stop(): Promise<void> }> {
  let stop = false;
  const w = await db.connect();
  const writing = (async () => {
    for (let i = 0; !stop; i++) await w.query('UPDATE t SET v = v + 1 WHERE id = $1', [1 + ((i * 7919) % 20000)]);
  })();
  return {
    async stop() {
      stop = true;
      await writing;
      await w.end();
    },
  };
}
