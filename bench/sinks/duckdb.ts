/**
 * Throughput of the duckdb sink (mirror mode): the same 300k-event style backlog as the
 * postgres bench (insert-heavy with some updates, 7 columns), drained through `write()` in
 * batches of 2000 with `commit` set per batch. Writes a scratch file in the temp directory.
 *
 *   node dist/bench/sinks/duckdb.js [events]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import duckdbSink from '../../sinks/duckdb/index.js';
import { backlog } from './postgres.js';

export async function benchSink(opts: { events: number }): Promise<{ sink: string; events: number; seconds: number; rowsPerSec: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-duckdb-'));
  try {
    const batches = backlog(opts.events);
    const sink = await duckdbSink.create(duckdbSink.config.parse({ path: join(dir, 'bench.duckdb') }), {
      logger: pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'bench',
      sinkName: 'duckdb',
      stateDir: dir,
    });
    await sink.open?.({ position: null, state: undefined });
    const signal = new AbortController().signal;
    const t0 = performance.now();
    for (const b of batches) await sink.write(b, { signal, commit: b[b.length - 1]!.position });
    const seconds = (performance.now() - t0) / 1000;
    await sink.close();
    return { sink: 'duckdb', events: opts.events, seconds, rowsPerSec: Math.round(opts.events / seconds) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await benchSink({ events: Number(process.argv[2] ?? 300_000) })));
}
