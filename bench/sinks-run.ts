/**
 * Per-sink drain throughput: each `bench/sinks/<name>.ts` (written with the sinks) exports
 * `benchSink({events})`, starts its own target server and drains a 7-column backlog through
 * the sink's `write()` in batches of 2,000. Each runs in its own process, so a crash or a
 * missing server binary is reported for that sink alone.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIST, timeCommand } from './lib/proc.js';
import { errText, type Throughput } from './lib/results.js';
import { line } from './contenders/postgres.js';

export async function sinkBenches(events: number, log: (m: string) => void): Promise<Throughput[]> {
  const dir = join(BENCH_DIST, 'sinks');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js')).sort();
  const out: Throughput[] = [];
  for (const f of files) {
    const name = f.replace(/\.js$/, '');
    const base: Throughput = { section: 'sinks', contender: name, role: 'tributary' };
    try {
      const r = await timeCommand(process.execPath, [join(dir, f), String(events)], { timeoutMs: 300_000 });
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { sink: string; events: number; seconds: number; rowsPerSec: number };
      out.push({ ...base, contender: res.sink, rows: res.events, seconds: res.seconds, rowsPerSec: res.rowsPerSec });
    } catch (err) {
      out.push({ ...base, error: errText(err) });
    }
    log(line(out.at(-1)!));
  }
  return out;
}
