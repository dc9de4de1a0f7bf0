import type { Throughput } from './results.js';

/**
 * Two contenders (the log path and the memory path), `pairs` runs each, alternating
 * A B B A A B …: on a shared machine a run's speed moves ±15% from one minute to the next,
 * and one run of each could land the two on a fast and a slow minute. The alternation spreads
 * drift over both; each keeps its median run.
 */
export async function pairedRuns(pairs: number, a: () => Promise<Throughput>, b: () => Promise<Throughput>, log: (t: Throughput) => void): Promise<[Throughput, Throughput]> {
  const as: Throughput[] = [];
  const bs: Throughput[] = [];
  for (let i = 0; i < pairs; i++) {
    for (const first of i % 2 === 0 ? [true, false] : [false, true]) {
      const t = await (first ? a() : b());
      (first ? as : bs).push(t);
      log(t);
    }
  }
  return [median(as), median(bs)];
}

/**
 * The run with the median rows/s (the lower middle one of an even count) among those that
 * worked, with every working run's rows/s in `trials`; the last failure when none worked.
 */
export function median(runs: Throughput[]): Throughput {
  const ok = runs.filter((r) => !r.error && !r.skipped);
  if (!ok.length) return runs[runs.length - 1]!;
  const sorted = [...ok].sort((x, y) => x.rowsPerSec! - y.rowsPerSec!);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return ok.length > 1 ? { ...mid, trials: ok.map((r) => r.rowsPerSec!) } : mid;
}
