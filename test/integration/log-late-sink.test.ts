/**
 * Sinks that join late (issue 14, "Tests that must exist": Late sink, Beyond retention).
 *
 * - Late sink, with real processes: a pipeline runs with sink A (after an initial snapshot);
 *   it stops; sink B (`start: earliest`) is added; it restarts. B receives exactly A's events,
 *   in A's order, from the log: no new snapshot runs (no snapshot line in the second run's
 *   log, the snapshot's `r` events are in both once, not twice), and the source resumes where
 *   the log ends instead of being read again.
 * - Beyond retention, in process: with tiny segments and `max_age`, retention trims history
 *   every sink has read (folding it into the compacted state); a sink added afterwards gets
 *   the compacted state (each key's latest row, as `r` events) and then the tail, and its
 *   replay equals the table. (log-replay-pg covers a sink *rewound* to earliest past
 *   retention; this is a new consumer group, which the runtime opens another way.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Row } from '../../src/core/event.js';
import { loadConfig } from '../../src/config/load.js';
import { Metrics, defineRuntimeMetrics } from '../../src/runtime/metrics.js';
import { Pipeline } from '../../src/runtime/pipeline.js';
import type { LogStream } from '../../src/stream/log-stream.js';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { readLoggedTxns } from '../helpers/log-contents.js';
import { readJsonl, replay } from '../helpers/pipeline.js';

const lines = (path: string): string[] => {
  try {
    return readFileSync(path, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};
const byId = (a: Row, b: Row) => Number(a.id) - Number(b.id);

describe('a sink added later reads the history from the log', { concurrency: false }, () => {
  it('late sink: B (start: earliest) receives the same events as A in the same order, and no new snapshot runs', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('latesink');
    await using dir = new TempDir('tributary-latesink-');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO t SELECT g, 0 FROM generate_series(1, 40) g');
    const name = `ls_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const a = join(dir.path, 'a.jsonl');
    const b = join(dir.path, 'b.jsonl');
    const config = (sinks: string) =>
      dir.file(
        'pipeline.yaml',
        `name: ${name}
source:
  type: postgres
  url: ${db.url}
  tables: [public.t]
  snapshot: initial
  heartbeat_ms: 0
state: { type: file, dir: ${dir.path}/state }
sinks:
${sinks}
http: { port: 0 }
`,
      );
    const running = new RegExp(`pipeline ${name} running`);
    const runningLine = (stderr: string) => JSON.parse(stderr.split('\n').find((l) => running.test(l))!) as { from: string | null; sinks: string[] };
    const work = async (from: number, to: number) => {
      for (let i = from; i <= to; i++) await db.query(`BEGIN; UPDATE t SET v = v + 1 WHERE id % 7 = ${i % 7}; INSERT INTO t VALUES (${100 + i}, ${i}); DELETE FROM t WHERE id = ${i}; COMMIT`);
    };
    const rowsNow = async () => new Map((await db.query<Row>('SELECT id, v FROM t')).rows.map((r) => [JSON.stringify({ id: r.id }), r]));

    let proc = TributaryProcess.start(['run', '--config', config(`  - { name: a, type: jsonl, path: ${a} }`)]);
    try {
      await proc.waitForLog(running, 60_000);
      await proc.waitForLog(/snapshot completed/, 60_000);
      await work(1, 10);
      await waitFor(async () => JSON.stringify([...replay(readJsonl(a))].sort()) === JSON.stringify([...(await rowsNow())].sort()), { timeoutMs: 60_000, what: 'sink A to reach the table' });
      assert.equal(await proc.kill('SIGTERM'), 0, proc.stderr.slice(-2000));
      const aFirst = lines(a);
      const snapshotReads = readJsonl(a).filter((e) => e.op === 'r').length;
      assert.equal(snapshotReads, 40, 'the first run snapshotted the 40 rows');

      // Sink B joins; the pipeline restarts and goes on.
      proc = TributaryProcess.start(['run', '--config', config(`  - { name: a, type: jsonl, path: ${a} }\n  - { name: b, type: jsonl, path: ${b}, start: earliest }`)]);
      await proc.waitForLog(running, 60_000);
      const second = runningLine(proc.stderr);
      assert.deepEqual(second.sinks, ['a', 'b']);
      assert.ok(second.from, 'the source resumes after the log\'s last durable commit, not from scratch');
      await work(11, 20);
      const want = await rowsNow();
      await waitFor(() => {
        const A = readJsonl(a);
        return A.length > aFirst.length && lines(b).length === A.length && JSON.stringify([...replay(A)].sort()) === JSON.stringify([...want].sort());
      }, { timeoutMs: 60_000, what: `sink B to catch up with A (A ${lines(a).length}, B ${lines(b).length} lines)` });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await proc.kill('SIGTERM'), 0, proc.stderr.slice(-2000));

      const A = lines(a);
      const B = lines(b);
      assert.ok(A.slice(0, aFirst.length).every((l, i) => l === aFirst[i]), 'A kept what it had, and went on from there');
      assert.deepEqual(B, A, 'B holds exactly the events A holds, in the same order (the same bytes)');
      assert.doesNotMatch(proc.stderr, /snapshot (started|completed)|resuming snapshot/, 'no snapshot ran when B joined');
      assert.equal(B.filter((l) => l.startsWith('{"op":"r"')).length, 40, 'B got the first run\'s snapshot from the log, once; A and B got no second one');
      assert.equal(A.filter((l) => l.startsWith('{"op":"r"')).length, 40);
      assert.deepEqual(replay(readJsonl(b)), want, 'B replays to the table');
      // The log holds each change once: the source was not read again for B.
      const logged = await readLoggedTxns(join(dir.path, 'state'), name, 'postgres');
      assert.deepEqual(logged.txns.flatMap((t) => t.events).map((e) => JSON.stringify(e)), A, 'the log holds A\'s events once each');
      console.log(`# late sink: A ${A.length} events; B joined after ${aFirst.length} and received the same ${B.length}, in order; 40 snapshot rows once; no snapshot on the second run`);
    } finally {
      await proc.kill('SIGKILL');
    }
  });

  it('beyond retention: a sink added after retention trimmed the log gets the compacted state, then the tail, and its replay equals the table', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('lateret');
    await using dir = new TempDir('tributary-lateret-');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int)');
    const name = `lr_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const a = join(dir.path, 'a.jsonl');
    const late = join(dir.path, 'late.jsonl');
    const yaml = (sinks: string) => `name: ${name}
source:
  type: postgres
  url: ${db.url}
  tables: [public.t]
  snapshot: never
  heartbeat_ms: 0
stream: { type: log, segment_bytes: 2048, retention: { max_age: 1ms } }
state: { type: file, dir: ${dir.path}/state }
sinks:
${sinks}
http: { port: 0 }
`;
    const start = async (sinks: string): Promise<Pipeline> => {
      const cfg = await loadConfig([dir.file('pipeline.yaml', yaml(sinks))]);
      const metrics = new Metrics();
      defineRuntimeMetrics(metrics);
      const p = new Pipeline(cfg.pipelines[0]!, pino({ level: process.env.TRIBUTARY_TEST_LOG ?? 'silent' }), metrics);
      await p.start();
      return p;
    };
    const txn = (i: number) => db.query(`BEGIN; INSERT INTO t SELECT g, ${i} FROM generate_series(${i * 10}, ${i * 10 + 9}) g ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v; UPDATE t SET v = v + 100 WHERE id < ${i * 5}; DELETE FROM t WHERE id = ${i * 3}; COMMIT`);

    let p = await start(`  - { name: a, type: jsonl, path: ${a} }`);
    try {
      for (let i = 0; i < 20; i++) await txn(i);
      const stream = p.stream as LogStream;
      await waitFor(() => p.runners[0]!.offset === stream.log.lastCommit!.offset + 1, { timeoutMs: 60_000, what: 'sink a to commit the end of the log' });
      await new Promise((r) => setTimeout(r, 5));
      const r = await p.retention!.runOnce();
      assert.ok(r.removed > 0 && stream.log.start > 0, `retention trimmed the log (${JSON.stringify(r)})`);
      const horizon = stream.log.start;
      const compactedRows = stream.compacted!.records;
      assert.ok(compactedRows > 0, 'and folded it into the compacted state');
      await p.drainAndStop(5000);

      p = await start(`  - { name: a, type: jsonl, path: ${a} }\n  - { name: late, type: jsonl, path: ${late}, start: earliest }`);
      for (let i = 20; i < 25; i++) await txn(i);
      const s2 = p.stream as LogStream;
      assert.equal(s2.log.start, horizon, 'the log still starts at the horizon');
      const table = (await db.query<Row>('SELECT id, v FROM t ORDER BY id')).rows;
      const same = (path: string) => JSON.stringify([...replay(readJsonl(path)).values()].sort(byId)) === JSON.stringify(table);
      await waitFor(() => same(late) && same(a) && p.runners.every((x) => x.offset === s2.log.lastCommit!.offset + 1), { timeoutMs: 60_000, what: 'both sinks to reach the table and commit the end of the log' });
      const got = readJsonl(late);
      // The tail: the log from the horizon on, read back.
      const logged = await readLoggedTxns(join(dir.path, 'state'), name, 'postgres');
      assert.equal(logged.start, horizon);
      const tail = logged.txns.flatMap((t) => t.events);
      const compacted = got.slice(0, got.length - tail.length);
      assert.ok(compacted.length > 0, 'the compacted state comes first');
      assert.equal(compacted.length, compactedRows, `the whole compacted state (${compactedRows} records), once`);
      assert.ok(compacted.every((e) => e.op === 'r' || e.op === 'd'), 'as reads (and young deletes)');
      assert.equal(new Set(compacted.map((e) => JSON.stringify(e.key))).size, compacted.length, 'one event per key');
      assert.deepEqual(got.slice(compacted.length).map((e) => JSON.stringify(e)), tail.map((e) => JSON.stringify(e)), 'then the log from the horizon, every event once, in order');
      assert.deepEqual([...replay(got).values()].sort(byId), table, 'its replay equals the table');
      assert.deepEqual([...replay(readJsonl(a)).values()].sort(byId), table, 'and the sink that was there all along still agrees');
      console.log(`# beyond retention: log trimmed to ${horizon}; the late sink got ${compacted.length} compacted rows, then ${tail.length} events; replay = table (${table.length} rows)`);
    } finally {
      await p.drainAndStop(5000);
    }
  });
});
