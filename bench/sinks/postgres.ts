/**
 * Throughput of the postgres sink (mirror mode): a 300k-event style backlog, insert-heavy with
 * some updates, drained through `write()` in batches of 2000 with `commit` set per batch, as
 * the runtime would after a pause. Needs a Postgres server (TRIBUTARY_BENCH_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres); a scratch database is created and dropped.
 *
 *   node dist/bench/sinks/postgres.js [events]
 */
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import type { ChangeEvent } from '../../src/core/event.js';
import type { SinkEvent } from '../../src/sdk/index.js';
import { makeSinkEvent } from '../../src/testing/index.js';
import postgresSink from '../../sinks/postgres/index.js';

const BATCH = 2000;

/** The backlog: 85% inserts of new ids, 15% updates of earlier ids; 7 columns of mixed types. */
export function backlog(events: number): SinkEvent[][] {
  const out: SinkEvent[][] = [];
  let next = 1;
  let batch: SinkEvent[] = [];
  for (let i = 0; i < events; i++) {
    const update = next > 100 && i % 7 === 3;
    const id = update ? 1 + ((i * 7919) % (next - 1)) : next++;
    const ts = 1_737_000_000_000 + i;
    const row = {
      id,
      qty: (i * 31) % 1000,
      name: `customer-${id}`,
      amount: `${(id % 10000) + 1}.${String(i % 100).padStart(2, '0')}`,
      created_at: new Date(ts).toISOString().replace('Z', '123Z'),
      status: update ? 'paid' : 'placed',
      attrs: { source: 'web', tags: ['a', String(i % 10)], n: i },
    };
    const ev: ChangeEvent = {
      op: update ? 'u' : 'c',
      before: update ? { id } : null,
      after: row,
      key: { id },
      source: { connector: 'postgresql', name: 'bench', db: 'shop', schema: 'public', table: 'orders', ts_ms: ts, snapshot: 'false' },
      ts_ms: ts,
    };
    batch.push(makeSinkEvent(ev, out.length + 1, batch.length));
    if (batch.length === BATCH) {
      out.push(batch);
      batch = [];
    }
  }
  if (batch.length) out.push(batch);
  return out;
}

export async function benchSink(opts: { events: number }): Promise<{ sink: string; events: number; seconds: number; rowsPerSec: number }> {
  const admin = new URL(process.env.TRIBUTARY_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const dbName = `tributary_bench_${process.pid}`;
  const a = new pg.Client({ connectionString: admin.toString() });
  await a.connect();
  await a.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(admin.toString());
  url.pathname = `/${dbName}`;
  try {
    const batches = backlog(opts.events);
    const sink = await postgresSink.create(postgresSink.config.parse({ url: url.toString(), schema: 'wh' }), {
      logger: pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'bench',
      sinkName: 'postgres',
      stateDir: '/tmp',
    });
    await sink.open?.({ position: null, state: undefined });
    const signal = new AbortController().signal;
    const t0 = performance.now();
    for (const b of batches) await sink.write(b, { signal, commit: b[b.length - 1]!.position });
    const seconds = (performance.now() - t0) / 1000;
    await sink.close();
    return { sink: 'postgres', events: opts.events, seconds, rowsPerSec: Math.round(opts.events / seconds) };
  } finally {
    await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await a.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await benchSink({ events: Number(process.argv[2] ?? 300_000) })));
}
