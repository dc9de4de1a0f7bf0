/**
 * Latency under a steady load: `rate` row changes per second for `seconds`, offered as 100
 * transactions per second (alternating a multi-row INSERT and a multi-row UPDATE), while
 * `tributary run` streams them into the bench-latency sink (durable jsonl-style writes). Each
 * event's latency is from its commit time to the moment its batch is durable.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import { MysqlPosition } from '../connectors/mysql/position.js';
import { PgPosition } from '../connectors/postgres/position.js';
import { benchPipeline } from './lib/pipeline-config.js';
import { BENCH_DIST, TributaryRun, sleep } from './lib/proc.js';
import { errText, type Latency } from './lib/results.js';
import { benchServerId, MY_DB, type MariadbWorkload } from './workloads/mariadb.js';
import { pubFor, type PgWorkload } from './workloads/postgres.js';

const TICK_MS = 10;

interface LatencyOptions {
  rate: number;
  seconds: number;
  cpuProf: string | null;
  log: (msg: string) => void;
}

/** Offer `perTick` row changes every TICK_MS for `seconds`; returns the changes made. */
async function steadyLoad(seconds: number, perTick: number, tick: (k: number, from: number, to: number) => Promise<number>): Promise<{ changes: number; seconds: number }> {
  const t0 = performance.now();
  let changes = 0;
  let nextId = 1;
  for (let k = 0; ; k++) {
    const due = t0 + k * TICK_MS;
    if (due - t0 >= seconds * 1000) break;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    // Even ticks insert new rows; odd ticks update the rows the previous tick inserted.
    if (k % 2 === 0) {
      changes += await tick(k, nextId, nextId + perTick - 1);
      nextId += perTick;
    } else changes += await tick(k, nextId - perTick, nextId - 1);
  }
  return { changes, seconds: (performance.now() - t0) / 1000 };
}

function summarize(samples: number[]): Pick<Latency, 'p50Ms' | 'p99Ms' | 'maxMs' | 'events'> {
  const s = Float64Array.from(samples).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]!;
  return { events: s.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: s[s.length - 1] };
}

async function measure(source: Latency['source'], sourceYaml: string, timeColumn: string | null, o: LatencyOptions,
  load: () => Promise<{ changes: number; seconds: number }>, done: () => Promise<(ck: { position: string; resume: string }) => boolean>): Promise<Latency> {
  const base: Latency = { source, rate: o.rate, seconds: o.seconds, events: 0, clock: timeColumn ? `row column ${timeColumn} = NOW(6) (binlog timestamps have 1 s resolution)` : 'source.ts_ms (commit timestamp)' };
  using p = benchPipeline(`lat_${source === 'postgres' ? 'pg' : 'my'}`, sourceYaml, (out, dir) =>
    `type: ${join(BENCH_DIST, 'plugins', 'latency-sink.js')}\npath: ${out}\nstats: ${join(dir, 'latency.json')}${timeColumn ? `\ntime_column: ${timeColumn}` : ''}`);
  await using run = new TributaryRun(p.config, { cpuProfDir: o.cpuProf, logLevel: 'info' });
  try {
    const deadline = Date.now() + 60_000;
    while (!/pipeline \S+ running/.test(run.stderr)) {
      if (!run.running || Date.now() > deadline) throw new Error(`tributary did not start: ${run.stderr.slice(-1500)}`);
      await sleep(50);
    }
    await sleep(1000);
    const l = await load();
    const isDone = await done();
    await run.waitForCheckpoint(p.checkpoint, isDone, 120_000);
    const code = await run.stop();
    if (code !== 0) throw new Error(`tributary exited with ${code}: ${run.stderr.slice(-1500)}`);
    const samples = JSON.parse(readFileSync(join(p.dir, 'latency.json'), 'utf8')) as number[];
    if (samples.length !== l.changes) throw new Error(`the sink saw ${samples.length} events, the load made ${l.changes}`);
    return { ...base, rate: Math.round(l.changes / l.seconds), ...summarize(samples) };
  } catch (err) {
    return { ...base, error: errText(err) };
  }
}

export async function pgLatency(w: PgWorkload, o: LatencyOptions): Promise<Latency> {
  const c: pg.Client = w.client;
  const perTick = Math.max(1, Math.round((o.rate * TICK_MS) / 1000));
  try {
    return await measure('postgres',
      `type: postgres\nurl: ${w.url}\ntables: [public.bench_live]\nslot: bench_lat\npublication: ${pubFor('bench_live')}\nsnapshot: never`,
      null, o,
      () => steadyLoad(o.seconds, perTick, async (k, a, b) => {
        if (k % 2 === 0) await w.insert('bench_live', a, b, c);
        else await w.update('bench_live', a, b, c);
        return b - a + 1;
      }),
      async () => {
        const { markLsn } = await w.endMarker();
        return (ck) => PgPosition.parse(ck.position).lsn >= markLsn;
      });
  } finally {
    await w.dropSlot('bench_lat');
  }
}

export async function mariadbLatency(w: MariadbWorkload, o: LatencyOptions): Promise<Latency> {
  const c: mysql.Connection = await w.connect();
  const perTick = Math.max(1, Math.round((o.rate * TICK_MS) / 1000));
  try {
    return await measure('mariadb',
      `type: mysql\nurl: ${w.url}\ntables: [${MY_DB}.bench_live]\nsnapshot: never\nserver_id: ${benchServerId()}\nstart: latest`,
      'updated_at', o,
      () => steadyLoad(o.seconds, perTick, async (k, a, b) => {
        if (k % 2 === 0) {
          await c.query(`INSERT INTO bench_live (id, qty, title, price, updated_at, status, attrs)
            SELECT seq, seq % 10000, CONCAT('product ', seq, ' lorem ipsum dolor sit amet'), (seq % 1000000) / 100, NOW(6), 'new', JSON_OBJECT('size', seq % 50)
            FROM seq_${a}_to_${b}`);
        } else await c.query('UPDATE bench_live SET qty = qty + 1, updated_at = NOW(6) WHERE id BETWEEN ? AND ?', [a, b]);
        return b - a + 1;
      }),
      async () => {
        const end = await w.position();
        const endPos = new MysqlPosition(end.file, end.pos);
        return (ck) => MysqlPosition.parse(ck.resume).compare(endPos) >= 0;
      });
  } finally {
    await c.end().catch(() => undefined);
  }
}
