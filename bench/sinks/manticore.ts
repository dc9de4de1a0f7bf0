/**
 * Throughput of the manticore sink: a 7-column backlog drained through `write()` in batches
 * of 2,000 into a real Sphinx searchd this benchmark starts (and stops) itself.
 * Run: `node dist/bench/sinks/manticore.js [events]`.
 */
import { pathToFileURL } from 'node:url';
import manticore from '../../sinks/manticore/index.js';
import { buildBacklog, drain } from '../../test/helpers/servers/backlog.js';
import { SearchdServer } from '../../test/helpers/servers/searchd.js';

export async function benchSink(opts: { events: number }): Promise<{ sink: string; events: number; seconds: number; rowsPerSec: number }> {
  const backlog = buildBacklog(opts.events);
  await using sd = await SearchdServer.start({
    indexes: {
      bench: ['rt_field = title', 'rt_field = status', 'rt_attr_uint = qty', 'rt_attr_string = price', 'rt_attr_timestamp = updated_at', 'rt_attr_string = status_s', 'rt_attr_json = attrs'],
    },
  });
  const seconds = await drain(manticore, { url: sd.url, attributes: { qty: 'qty', price: 'price', updated_at: 'updated_at', status: 'status_s', attrs: 'attrs' } }, backlog);
  const [r] = await sd.query<{ c: string }>('SELECT COUNT(*) AS c FROM bench');
  const distinct = new Set(backlog.map((e) => e.event.key!.id)).size;
  if (Number(r!.c) !== distinct) throw new Error(`manticore bench: index has ${r!.c} documents, expected ${distinct}`);
  return { sink: 'manticore (sphinx 2.2 searchd)', events: opts.events, seconds, rowsPerSec: Math.round(opts.events / seconds) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await benchSink({ events: Number(process.argv[2] ?? 200_000) })));
}
