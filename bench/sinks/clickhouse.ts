/**
 * Throughput of the clickhouse sink: a 7-column backlog drained through `write()` in batches
 * of 2,000 into a clickhouse-server this benchmark starts (and stops) itself.
 * Run: `node dist/bench/sinks/clickhouse.js [events]`.
 */
import { pathToFileURL } from 'node:url';
import clickhouse from '../../sinks/clickhouse/index.js';
import { buildBacklog, drain } from '../../test/helpers/servers/backlog.js';
import { ClickHouseServer } from '../../test/helpers/servers/clickhouse.js';

export async function benchSink(opts: { events: number }): Promise<{ sink: string; events: number; seconds: number; rowsPerSec: number }> {
  const backlog = buildBacklog(opts.events);
  await using ch = await ClickHouseServer.start();
  const seconds = await drain(clickhouse, { url: ch.url, database: 'bench' }, backlog);
  // Check the mirror holds what was sent, so a silently failing sink cannot look fast.
  const [r] = await ch.rows<{ c: string }>('SELECT count() AS c FROM bench.bench FINAL WHERE _deleted = 0');
  const distinct = new Set(backlog.map((e) => e.event.key!.id)).size;
  if (Number(r!.c) !== distinct) throw new Error(`clickhouse bench: mirror has ${r!.c} rows, expected ${distinct}`);
  return { sink: 'clickhouse', events: opts.events, seconds, rowsPerSec: Math.round(opts.events / seconds) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await benchSink({ events: Number(process.argv[2] ?? 200_000) })));
}
