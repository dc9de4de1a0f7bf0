/**
 * The snapshot scenarios both sources run (pg-snapshot, mysql-snapshot): a 200k-row table
 * snapshotted while a writer changes the very rows being read, and a SIGKILL at about 25%
 * followed by a resume. Each test file brings its source's config and SQL.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { TempDir, TributaryProcess, waitFor } from './context.js';
import { REDIS_URL } from './env.js';
import { readJsonl, replay } from './pipeline.js';

/** `{"id":n}` → row, for a table `t (id, v, note)`. */
export function tableState(rows: { id: string | number; v: number; note: string | null }[]): Map<string, Row> {
  return new Map(rows.map((r) => [JSON.stringify({ id: Number(r.id) }), { id: Number(r.id), v: r.v, note: r.note } as Row]));
}

/** The stored snapshot state of a pipeline, or null before the first write. */
export function snapshotState(dir: TempDir, name: string): { status: string; tables: { table: { keyKind: string; key: string[] }; done: boolean[]; rows: number }[] } | null {
  const p = `${dir.path}/state/${name}/snapshot.json`;
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null;
}

/** Builds a pipeline file: `extraSinks` is YAML list items after the `audit` jsonl sink. */
export type ConfigFor = (o: { name: string; mode: string; chunk: number; workers?: number; extraSinks?: string }) => string;

export interface LoadSubject {
  label: string;
  name: string;
  dir: TempDir;
  config: ConfigFor;
  /** One autocommitted statement per call on a connection of its own. */
  writer(): Promise<{ update(id: number, note: string): Promise<unknown>; remove(id: number): Promise<unknown>; insert(id: number, note: string): Promise<unknown>; end(): Promise<void> }>;
  rows(): Promise<{ id: string | number; v: number; note: string | null }[]>;
  /** Source-specific checks on every event of the jsonl. */
  check?(events: ChangeEvent[]): void;
}

/**
 * Table `t` holds ids 1..200000. The snapshot runs with a Redis sink beside the jsonl one,
 * while the writer updates, deletes and inserts; afterwards replaying the jsonl gives the
 * table, exactly one row is `last`, and Redis holds the table's rows.
 */
export async function snapshotUnderLoad(s: LoadSubject): Promise<void> {
  const prefix = s.name;
  const redis = new Redis(REDIS_URL);
  try {
    const cfg = s.config({
      name: s.name,
      mode: 'initial',
      chunk: 4000,
      extraSinks: `  - name: cache\n    type: redis\n    url: ${REDIS_URL}\n    key: "${prefix}:{table}:{key}"\n    fence_key: "${prefix}:fences"\n`,
    });
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    // The writer runs during the whole snapshot, on the very rows being read.
    const w = await s.writer();
    let stop = false;
    let next = 200001;
    let writes = 0;
    const writing = (async () => {
      while (!stop) {
        const r = Math.random();
        const id = 1 + Math.floor(Math.random() * 200000);
        if (r < 0.5) await w.update(id, `w${next}`);
        else if (r < 0.7) await w.remove(id);
        else await w.insert(next++, 'new');
        writes++;
      }
    })();
    await proc.waitForLog(/snapshot completed/, 180_000);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await writing;
    await w.end();
    const want = tableState(await s.rows());
    // Wait for the stream to catch up with the last writes.
    await waitFor(() => replay(readJsonl(`${s.dir.path}/out.jsonl`)).size === want.size, { timeoutMs: 60_000, what: 'jsonl to catch up' });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await proc.kill('SIGTERM'), 0);
    const events = readJsonl(`${s.dir.path}/out.jsonl`);
    const reads = events.filter((e) => e.op === 'r');
    process.stderr.write(`# ${s.label} snapshot under load: ${reads.length} snapshot rows, ${writes} concurrent writes\n`);
    assert.ok(writes > 100, `the writer was busy during the snapshot (${writes} writes)`);
    assert.ok(reads.length > 150_000, `snapshot rows: ${reads.length}`);
    assert.ok(reads.every((e) => e.source.snapshot === 'true' || e.source.snapshot === 'last'));
    assert.equal(reads.filter((e) => e.source.snapshot === 'last').length, 1, 'exactly one "last" row');
    s.check?.(events);
    assert.ok(events.some((e) => e.op === 'u') && events.some((e) => e.op === 'd'), 'streamed changes interleave with the snapshot');
    assert.deepEqual(replay(events), want, 'replaying the jsonl gives the table');
    const keys = await redis.keys(`${prefix}:t:*`);
    assert.equal(keys.length, want.size, 'Redis holds as many rows as the table');
    const sample = keys.slice(0, 3000);
    const vals = await redis.mget(...sample);
    sample.forEach((k, i) => assert.deepEqual(JSON.parse(vals[i]!), want.get(JSON.stringify({ id: Number(k.split(':').pop()) })), `Redis ${k}`));
  } finally {
    const keys = await redis.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 5000) await redis.del(...keys.slice(i, i + 5000));
    await redis.quit();
  }
}

/**
 * Table `t` holds ids 1..200000 and nothing writes to it. A SIGKILL once a quarter of the
 * rows are durable; the restart resumes the stored snapshot. Every row arrives, no line twice,
 * and fewer rows are read again than one chunk per worker (the at-stake bound).
 */
export async function resumeAfterSigkill(s: { label: string; name: string; dir: TempDir; config: ConfigFor }): Promise<void> {
  const chunk = 2000;
  const workers = 2;
  const { dir, name } = s;
  const cfg = s.config({ name, mode: 'initial', chunk, workers });
  const first = TributaryProcess.start(['run', '--config', cfg]);
  await waitFor(() => {
    const st = snapshotState(dir, name);
    // Chunks are cut as the table is read, so the chunk list grows: count rows instead.
    return !!st && st.tables[0]!.rows >= 200000 * 0.25;
  }, { timeoutMs: 120_000, intervalMs: 10, what: '25% of the rows' });
  await first.kill('SIGKILL');
  const offset = (JSON.parse(readFileSync(`${dir.path}/state/${name}/sink.audit.json`, 'utf8')) as { state: { offset: number } }).state.offset;
  const before = readFileSync(`${dir.path}/out.jsonl`).subarray(0, offset).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ChangeEvent);
  const durable = new Set(before.map((e) => e.after!.id));
  assert.ok(durable.size > 0 && durable.size < 200000, `durable before the kill: ${durable.size}`);

  await using second = TributaryProcess.start(['run', '--config', cfg]);
  await second.waitForLog(/resuming snapshot from its last durable chunk/);
  await second.waitForLog(/snapshot completed/, 180_000);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await second.kill('SIGTERM'), 0);
  const all = readJsonl(`${dir.path}/out.jsonl`);
  assert.equal(new Set(all.map((e) => e.after!.id as number)).size, 200000, 'every row arrived');
  const lines = readFileSync(`${dir.path}/out.jsonl`, 'utf8').split('\n').filter(Boolean);
  assert.equal(new Set(lines).size, lines.length, 'no event twice in the jsonl');
  const rereads = all.slice(before.length).filter((e) => durable.has(e.after!.id)).length;
  assert.ok(rereads < workers * chunk, `rows re-read after the restart: ${rereads} (must be < ${workers * chunk})`);
  process.stderr.write(`# ${s.label} snapshot resume: ${durable.size} rows durable before SIGKILL, ${rereads} re-read\n`);
}
