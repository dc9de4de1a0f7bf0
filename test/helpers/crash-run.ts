/**
 * The SIGKILL crash scenario both sources run (pg-crash, mysql-crash): a writer commits
 * single-row inserts, updates and deletes while `tributary run` is SIGKILLed and restarted 3
 * times. Afterwards the jsonl file holds every committed change exactly once, a sink with
 * tiny batches holds the same events in the same order, replaying the jsonl gives the table,
 * and Redis holds exactly the table's rows.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { TempDir, TributaryProcess, waitFor } from './context.js';
import { REDIS_URL } from './env.js';
import { readJsonl, replay } from './pipeline.js';

/** What differs between the sources: the source block, the writer's SQL, the ids of a transaction. */
export interface CrashSubject {
  /** `postgres` or `mysql`, for messages. */
  label: string;
  /** Pipeline name. */
  name: string;
  /** The YAML of the source block (unindented). */
  sourceYaml: string;
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

    for (let k = 0; k < 3; k++) {
      await new Promise((r) => setTimeout(r, 1200 + Math.random() * 1200));
      await proc.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
      proc = TributaryProcess.start(['run', '--config', cfg]);
      await proc.waitForLog(running);
    }
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await writing;
    await w.end();
    assert.ok(committed >= 1000, `the writer committed ${committed} changes`);

    const audit = await waitFor(() => {
      const evs = readJsonl(out);
      return evs.length >= committed ? evs : null;
    }, { timeoutMs: 60_000, what: `jsonl to reach ${committed} events` });
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

    const want = new Map((await s.rows()).map((r) => [JSON.stringify({ id: Number(r.id) }), { id: Number(r.id), v: r.v, note: r.note } as Row]));
    assert.deepEqual(replay(finalAudit), want, 'replaying the jsonl gives the table');

    const keys = await redis.keys(`${prefix}:items:*`);
    const cached = new Map<string, Row>();
    for (const k of keys) cached.set(JSON.stringify({ id: Number(k.split(':').pop()) }), JSON.parse((await redis.get(k))!));
    assert.deepEqual(cached, want, 'Redis holds exactly the current rows');
    console.log(`# ${s.label} crash safety: ${committed} committed changes across 3 SIGKILLs; jsonl ${finalAudit.length} lines, ${new Set(txns).size} distinct transactions; replay = table (${want.size} rows); Redis ${cached.size} keys = table`);
  } finally {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  }
}
