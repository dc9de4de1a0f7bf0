/**
 * A benchmark sink plugin that writes like the jsonl sink (one line per event, one write and
 * one fsync per batch) and, once the batch is durable, records for every event
 * `Date.now() − commit time`. On close it writes the samples (ms) as a JSON array to `stats`.
 *
 * The commit time is `source.ts_ms` by default (Postgres: the commit timestamp, ms). MySQL
 * binlog event timestamps have whole-second resolution, so for MariaDB `time_column` names a
 * row column the load sets to NOW(6) in the same statement, just before its commit.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { defineSink, once, type SinkEvent } from '../../src/sdk/index.js';

export default defineSink({
  type: 'bench-latency',
  description: 'Benchmark only: jsonl-like durable writes that record commit-to-durable latency per event.',
  config: z.object({
    path: z.string(),
    stats: z.string(),
    time_column: z.string().optional(),
  }),
  create(config) {
    let fh: FileHandle | undefined;
    const samples: number[] = [];
    const commitTime = (e: SinkEvent): number => {
      if (!config.time_column) return e.event.source.ts_ms;
      const v = (e.event.after ?? e.event.before)?.[config.time_column];
      const s = String(v);
      return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s.replace(' ', 'T')}Z`);
    };
    return {
      async open() {
        fh = await open(config.path, 'a');
      },
      async write(events: readonly SinkEvent[]) {
        let text = '';
        for (const e of events) text += e.json + '\n';
        const buf = Buffer.from(text, 'utf8');
        await fh!.write(buf, 0, buf.length);
        await fh!.sync();
        const now = Date.now();
        for (const e of events) samples.push(now - commitTime(e));
      },
      close: once(async () => {
        writeFileSync(config.stats, JSON.stringify(samples));
        await fh?.close();
      }),
    };
  },
});
