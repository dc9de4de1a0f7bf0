/**
 * The adversarial snapshot scenario of snapshot-visibility.test.ts: many writers, each on a
 * connection of its own, commit short transactions on the table being snapshotted, in small
 * chunks, while chunk watermarks are written around them. Afterwards the jsonl sink (replayed)
 * and the Redis sink must both equal the table, row for row.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { Row } from '../../src/core/event.js';
import { TempDir, TributaryProcess, waitFor } from './context.js';
import { REDIS_URL } from './env.js';
import { readJsonl, replay } from './pipeline.js';

/** One writer connection: each call is one autocommitted statement. */
export interface RaceWriter {
  update(id: number, v: number): Promise<unknown>;
  insert(id: number, v: number): Promise<unknown>;
  remove(id: number): Promise<unknown>;
  end(): Promise<void>;
}

export interface RaceSubject {
  label: string;
  /** Pipeline name (also the Redis key prefix): unique per run. */
  name: string;
  dir: TempDir;
  /** Rows 1..rows exist before the pipeline starts. */
  rows: number;
  /** The pipeline file, with `sinks` holding the jsonl sink `audit` and then `extraSinks`. */
  config(extraSinks: string): string;
  writer(): Promise<RaceWriter>;
  writers: number;
  /** The table's rows now. */
  table(): Promise<{ id: string | number; v: string | number }[]>;
  /** Commit a row into the marker table (captured too): once it is in the jsonl, the stream is caught up. */
  mark(n: number): Promise<void>;
  /** What runs beside the writers while they write (the stand-in for a lagging standby), until `stop` is set. */
  beside?(stop: () => boolean): Promise<void>;
}

/** What a run found: rows where a sink disagrees with the table. */
export interface RaceResult {
  writes: number;
  reads: number;
  jsonlWrong: string[];
  redisWrong: string[];
}

/**
 * Runs the scenario once. Writers pick keys at random: updates set `v` to a new, ever larger
 * value (so a stale row is visible as a smaller number), deletes remove a row, inserts add
 * new keys above the initial range.
 */
export async function visibilityRace(s: RaceSubject): Promise<RaceResult> {
  const redis = new Redis(REDIS_URL);
  const prefix = s.name;
  try {
    const cfg = s.config(`  - name: cache\n    type: redis\n    url: ${REDIS_URL}\n    key: "${prefix}:{table}:{key}"\n    fence_key: "${prefix}:fences"\n`);
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    let stop = false;
    let seq = 1_000_000;
    let nextId = s.rows + 1;
    let writes = 0;
    const loops: Promise<void>[] = [];
    for (let i = 0; i < s.writers; i++) {
      const w = await s.writer();
      loops.push(
        (async () => {
          try {
            while (!stop) {
              const r = Math.random();
              const id = 1 + Math.floor(Math.random() * s.rows);
              try {
                if (r < 0.75) await w.update(id, seq++);
                else if (r < 0.85) await w.remove(id);
                else await w.insert(nextId++, seq++);
                writes++;
              } catch (err) {
                // A cancelled statement (the stand-in standby's cancel can land after the
                // commit) or a duplicate key: the table says what happened.
                if (!/cancel|duplicate|Duplicate/i.test(String((err as Error).message))) throw err;
              }
            }
          } finally {
            await w.end();
          }
        })(),
      );
    }
    let writersDone = false;
    const beside = s.beside?.(() => writersDone);
    const stopWriters = async () => {
      stop = true;
      const ended = await Promise.allSettled(loops);
      writersDone = true;
      await beside;
      for (const e of ended) if (e.status === 'rejected') throw e.reason;
    };
    try {
      await proc.waitForLog(/snapshot completed/, 240_000);
    } catch (err) {
      await stopWriters().catch(() => undefined);
      throw new Error(`${(err as Error).message}\n${proc.stderr.slice(-3000)}`);
    }
    await stopWriters();
    // Everything committed so far is streamed once the marker is.
    await s.mark(1);
    await waitFor(() => readJsonl(`${s.dir.path}/out.jsonl`).some((e) => e.source.table === 'marker'), { timeoutMs: 60_000, what: 'the jsonl to catch up' });
    await waitFor(async () => (await redis.keys(`${prefix}:marker:*`)).length > 0, { timeoutMs: 60_000, what: 'Redis to catch up' });
    assert.equal(await proc.kill('SIGTERM'), 0, proc.stderr.slice(-3000));

    const want = new Map<string, Row>((await s.table()).map((r) => [JSON.stringify({ id: Number(r.id) }), { id: Number(r.id), v: Number(r.v) }]));
    const events = readJsonl(`${s.dir.path}/out.jsonl`).filter((e) => e.source.table === 't');
    const got = replay(events);
    const jsonlWrong: string[] = [];
    for (const [k, row] of want) {
      const g = got.get(k);
      if (!g || Number(g.v) !== row.v) jsonlWrong.push(`${k}: table v=${row.v}, jsonl ${g ? `v=${g.v}` : 'missing'}`);
    }
    for (const k of got.keys()) if (!want.has(k)) jsonlWrong.push(`${k}: deleted in the table, present in the jsonl`);

    const redisWrong: string[] = [];
    const keys = await redis.keys(`${prefix}:t:*`);
    const held = new Map<string, number>();
    for (let i = 0; i < keys.length; i += 2000) {
      const part = keys.slice(i, i + 2000);
      const vals = await redis.mget(...part);
      part.forEach((k, j) => {
        if (vals[j] !== null) held.set(JSON.stringify({ id: Number(k.split(':').pop()) }), Number((JSON.parse(vals[j]!) as Row).v));
      });
    }
    for (const [k, row] of want) {
      const v = held.get(k);
      if (v !== row.v) redisWrong.push(`${k}: table v=${row.v}, redis ${v === undefined ? 'missing' : `v=${v}`}`);
    }
    for (const k of held.keys()) if (!want.has(k)) redisWrong.push(`${k}: deleted in the table, present in Redis`);
    const reads = events.filter((e) => e.op === 'r').length;
    process.stderr.write(`# ${s.label}: ${reads} snapshot rows, ${writes} concurrent writes; rows wrong: jsonl ${jsonlWrong.length}, redis ${redisWrong.length}\n`);
    return { writes, reads, jsonlWrong, redisWrong };
  } finally {
    const keys = await redis.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 5000) await redis.del(...keys.slice(i, i + 5000));
    await redis.quit();
  }
}
