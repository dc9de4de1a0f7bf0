/**
 * The SIGKILL crash scenario both sources run (pg-crash, mysql-crash): a writer commits
 * single-row inserts, updates and deletes while `tributary run` is SIGKILLed and restarted 3
 * times. Afterwards the log holds every committed change exactly once, in commit order (read
 * back with the log reader), the jsonl file holds every committed change exactly once, a sink
 * with tiny batches holds the same events in the same order, replaying the jsonl gives the
 * table, and Redis holds exactly the table's rows.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { TempDir, TributaryProcess } from './context.js';
import { REDIS_URL } from './env.js';
import { readLoggedTxns } from './log-contents.js';
import { readJsonl, replay } from './pipeline.js';

/** What differs between the sources: the source block, the writer's SQL, the ids of a transaction. */
export interface CrashSubject {
  /** The source type, `postgres` or `mysql` (it reads the log's positions; and for messages). */
  label: string;
  /** Pipeline name. */
  name: string;
  /** The YAML of the source block (unindented). */
  sourceYaml: string;
  /** A `stream:` line, when not the default log. */
  streamYaml?: string;
  /** A writer connection: one autocommitted statement per call, returning the rows affected. */
  writer(): Promise<{ insert(id: number, note: string): Promise<number>; update(id: number, note: string): Promise<number>; remove(id: number): Promise<number>; end(): Promise<void> }>;
  /** The table `items (id, v, note)` as it is now. */
  rows(): Promise<{ id: string | number; v: number; note: string }[]>;
  /** What identifies an event's transaction (Postgres txId, MySQL GTID): unique per commit here. */
  txn(e: ChangeEvent): unknown;
}

export async function crashScenario(s: CrashSubject): Promise<void> {
  await using dir = new TempDir(`tributary-${s.label}-crash-`);
  const prefix = `${s.name}${process.pid}`;
  const out = dir.file('items.jsonl');
  const indent = (y: string) => y.trim().replace(/^/gm, '  ');
  const cfg = dir.file(
    'crash.yaml',
    `name: ${s.name}
source:
${indent(s.sourceYaml)}
${s.streamYaml ?? ''}
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${out}
  - name: cache
    type: redis
    url: ${REDIS_URL}
    key: "${prefix}:{table}:{key}"
    fence_key: "${prefix}:fences"
  - name: small-batches
    type: jsonl
    path: ${dir.path}/small.jsonl
    batch: { max_events: 7 }
http: { port: 0 }
`,
  );
  const running = new RegExp(`pipeline ${s.name} running`);
  const redis = new Redis(REDIS_URL);
  try {
    let proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(running);

    const w = await s.writer();
    let committed = 0;
    let stop = false;
    const ids: number[] = [];
    let next = 1;
    const writing = (async () => {
      while (!stop) {
        const r = Math.random();
        if (r < 0.35 || ids.length < 20) {
          const id = next++;
          committed += await w.insert(id, `note ${id}`);
          ids.push(id);
        } else if (r < 0.85) {
          committed += await w.update(ids[Math.floor(Math.random() * ids.length)]!, `updated ${committed}`);
        } else {
          committed += await w.remove(ids.splice(Math.floor(Math.random() * ids.length), 1)[0]!);
        }
        if (committed % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    })();

    // Every process's stderr, for the message of a run that stalls.
    const earlier: string[] = [];
    for (let k = 0; k < 3; k++) {
      await new Promise((r) => setTimeout(r, 1200 + Math.random() * 1200));
      await proc.kill('SIGKILL');
      earlier.push(proc.stderr);
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
      proc = TributaryProcess.start(['run', '--config', cfg]);
      await proc.waitForLog(running);
    }
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await writing;
    await w.end();
    assert.ok(committed >= 1000, `the writer committed ${committed} changes`);

    const audit = await waitForSink(out, committed, proc, earlier);
    // Let it run a moment longer: a duplicate would show up as extra lines.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(proc.running, true, proc.stderr.slice(-2000));
    assert.equal(await proc.kill('SIGTERM'), 0, 'a drained SIGTERM stop exits 0');

    const finalAudit = readJsonl(out);
    assert.equal(finalAudit.length, committed, 'every committed change exactly once in the jsonl file');
    assert.equal(audit!.length, committed);
    const txns = finalAudit.map((e) => s.txn(e));
    assert.equal(new Set(txns).size, committed, 'no transaction appears twice');
    const small = readJsonl(`${dir.path}/small.jsonl`);
    assert.deepEqual(small.map((e) => s.txn(e)), txns, 'a sink with tiny batches holds the same events in the same order');

    // The log: every committed change exactly once, in commit order, the same as the jsonl.
    const logged = await readLoggedTxns(`${dir.path}/state`, s.name, s.label);
    assert.equal(logged.start, 0, 'nothing was trimmed');
    const loggedEvents = logged.txns.flatMap((t) => t.events);
    assert.equal(loggedEvents.length, committed, 'every committed change exactly once in the log');
    assert.deepEqual(loggedEvents.map((e) => s.txn(e)), txns, 'the log holds the same changes as the jsonl file, in the same (commit) order');
    for (const t of logged.txns) for (const e of t.events) assert.equal(s.txn(e), s.txn(t.events[0]!), `transaction ${t.txn} holds the events of one database transaction`);

    const want = new Map((await s.rows()).map((r) => [JSON.stringify({ id: Number(r.id) }), { id: Number(r.id), v: r.v, note: r.note } as Row]));
    assert.deepEqual(replay(finalAudit), want, 'replaying the jsonl gives the table');

    const keys = await redis.keys(`${prefix}:items:*`);
    const cached = new Map<string, Row>();
    for (const k of keys) cached.set(JSON.stringify({ id: Number(k.split(':').pop()) }), JSON.parse((await redis.get(k))!));
    assert.deepEqual(cached, want, 'Redis holds exactly the current rows');
    console.log(`# ${s.label} crash safety: ${committed} committed changes across 3 SIGKILLs; log ${loggedEvents.length} events in ${logged.txns.length} commits (offsets ${logged.start}..${logged.end}); jsonl ${finalAudit.length} lines, ${new Set(txns).size} distinct transactions; replay = table (${want.size} rows); Redis ${cached.size} keys = table`);
  } finally {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  }
}

/**
 * Wait for the jsonl sink to hold `want` events. A run that stalls says how far the sink got
 * and when it last moved, whether the process still runs, and the tail of its stderr (and a
 * count of the warnings and restarts of the processes killed before it).
 */
async function waitForSink(path: string, want: number, proc: TributaryProcess, earlier: string[]): Promise<ChangeEvent[]> {
  const timeoutMs = 60_000;
  const started = Date.now();
  let seen = 0;
  let movedAt = started;
  for (;;) {
    const evs = readJsonl(path);
    if (evs.length >= want) return evs;
    if (evs.length !== seen) {
      seen = evs.length;
      movedAt = Date.now();
    }
    if (!proc.running || Date.now() - started > timeoutMs) {
      const warnings = (text: string) => text.split('\n').filter((l) => /"level":(40|50|60)|\b(WARN|ERROR|FATAL)\b/.test(l)).length;
      throw new Error(
        `timed out waiting for the jsonl sink to reach ${want} events: it holds ${seen}` +
          ` (last grew ${Math.round((Date.now() - movedAt) / 1000)} s ago, waited ${Math.round((Date.now() - started) / 1000)} s);` +
          ` the last process is ${proc.running ? 'running' : 'gone'};` +
          ` earlier processes logged ${earlier.map(warnings).join(', ')} warnings/errors.` +
          `\nits stderr (tail):\n${proc.stderr.slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
