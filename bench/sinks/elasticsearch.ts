/**
 * Throughput of the elasticsearch sink against the in-process ES stub (no real cluster runs
 * here, so this measures the sink's own cost: NDJSON building, collapsing, response
 * handling, plus the stub). Run: `node dist/bench/sinks/elasticsearch.js [events]`.
 */
import { pathToFileURL } from 'node:url';
import elasticsearch from '../../sinks/elasticsearch/index.js';
import { buildBacklog, drain } from '../../test/helpers/servers/backlog.js';
import { EsStub } from '../../test/helpers/servers/es-stub.js';

export async function benchSink(opts: { events: number }): Promise<{ sink: string; events: number; seconds: number; rowsPerSec: number }> {
  const backlog = buildBacklog(opts.events);
  await using es = await EsStub.start();
  const seconds = await drain(elasticsearch, { url: es.url }, backlog);
  const distinct = new Set(backlog.map((e) => e.event.key!.id)).size;
  if (es.docs('bench').size !== distinct) throw new Error(`elasticsearch bench: ${es.docs('bench').size} documents, expected ${distinct}`);
  return { sink: 'elasticsearch (stub)', events: opts.events, seconds, rowsPerSec: Math.round(opts.events / seconds) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await benchSink({ events: Number(process.argv[2] ?? 200_000) })));
}
