/**
 * `npm run bench`: Tributary against the fastest peers and the databases' own limits, on the
 * same workloads in the same run, with ratios and the targets of issue 6.
 *
 * Sections (select with --only): pg, mysql (streaming backlog drains, on the log and on the
 * memory stream), snapshot, latency, memory, sinks, log (the log alone: appends, bytes per
 * event, a one-key time-travel lookup). Results go to bench/results/latest.json and are appended, with the commit
 * and date, to bench/results/history.jsonl. See docs/benchmarks.md.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { mariadbStreaming } from './contenders/mariadb.js';
import { pgStreaming } from './contenders/postgres.js';
import { mariadbSnapshot, pgSnapshot } from './contenders/snapshot.js';
import { mariadbLatency, pgLatency } from './latency.js';
import { mariadbMemory, pgMemory } from './memory.js';
import { logAppends, logLookup } from './log.js';
import { parseOptions, USAGE, UsageError, type BenchOptions } from './lib/options.js';
import { REPO } from './lib/proc.js';
import { errText, type Latency, type Memory, type Report, type Throughput } from './lib/results.js';
import { judge, render } from './report.js';
import { sinkBenches } from './sinks-run.js';
import { MariadbWorkload } from './workloads/mariadb.js';
import { PgWorkload } from './workloads/postgres.js';

const log = (m: string) => process.stderr.write(`${m}\n`);

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

interface Collected {
  throughput: Throughput[];
  latency: Latency[];
  memory: Memory[];
  log?: Report['log'];
  versions: { postgres?: string; mariadb?: string };
}

/** Runs `fn`; a thrown error becomes a failed entry rather than the end of the run. */
async function guarded<T>(what: string, fn: () => Promise<T>, onError: (msg: string) => void): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    log(`${what} failed: ${errText(err)}`);
    onError(errText(err));
    return undefined;
  }
}

async function postgresSections(o: BenchOptions, c: Collected): Promise<void> {
  const want = (['pg', 'snapshot', 'latency', 'memory'] as const).filter((s) => o.only.has(s));
  if (!want.length) return;
  let w: PgWorkload;
  try {
    w = await PgWorkload.open(o.pgUrl);
  } catch (err) {
    // No server: every Postgres item is reported as skipped, with the reason.
    const reason = `Postgres at ${o.pgUrl} unavailable: ${errText(err)}`;
    log(reason);
    if (o.only.has('pg')) c.throughput.push({ section: 'pg', contender: 'Tributary slot → jsonl (fsync, checkpoints)', role: 'tributary', skipped: reason });
    if (o.only.has('snapshot')) c.throughput.push({ section: 'snapshot-pg', contender: 'Tributary initial_only, 2 workers → jsonl', role: 'tributary', skipped: reason });
    if (o.only.has('latency')) c.latency.push({ source: 'postgres', rate: o.latencyRate, seconds: o.latencySeconds, events: 0, skipped: reason });
    if (o.only.has('memory')) c.memory.push({ source: 'postgres', rows: o.memoryRows, skipped: reason });
    return;
  }
  await using _w = w;
  c.versions.postgres = w.version;
  const base = { cpuProf: o.cpuProf, log };
  log(`\n== postgres ${w.version}`);
  if (o.only.has('pg')) {
    await guarded('postgres streaming', async () => c.throughput.push(...(await pgStreaming(w, { ...base, rows: o.rows, pairs: o.pairs }))),
      (e) => c.throughput.push({ section: 'pg', contender: 'Tributary slot → jsonl (fsync, checkpoints)', role: 'tributary', error: e }));
  }
  if (o.only.has('snapshot')) {
    await guarded('postgres snapshot', async () => {
      if (!o.only.has('pg')) await w.streamWorkload('bench_rows', o.rows);
      c.throughput.push(...(await pgSnapshot(w, base)));
    }, (e) => c.throughput.push({ section: 'snapshot-pg', contender: 'Tributary initial_only, 2 workers → jsonl', role: 'tributary', error: e }));
  }
  if (o.only.has('latency')) {
    log(`postgres latency: ${o.latencyRate} changes/s for ${o.latencySeconds} s`);
    const l = await guarded('postgres latency', () => pgLatency(w, { ...base, rate: o.latencyRate, seconds: o.latencySeconds }),
      (e) => c.latency.push({ source: 'postgres', rate: o.latencyRate, seconds: o.latencySeconds, events: 0, error: e }));
    if (l) {
      log(`  p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms${l.error ? ` FAILED ${l.error}` : ''}`);
      c.latency.push(l);
    }
  }
  if (o.only.has('memory')) {
    const m = await guarded('postgres memory', () => pgMemory(w, { ...base, rows: o.memoryRows }),
      (e) => c.memory.push({ source: 'postgres', rows: o.memoryRows, error: e }));
    if (m) {
      log(`  peak RSS ${m.peakRssMb} MB, ${m.rowsPerSec} rows/s${m.error ? ` FAILED ${m.error}` : ''}`);
      c.memory.push(m);
    }
  }
}

async function mariadbSections(o: BenchOptions, c: Collected): Promise<void> {
  const want = (['mysql', 'snapshot', 'latency', 'memory'] as const).filter((s) => o.only.has(s));
  if (!want.length) return;
  let w: MariadbWorkload;
  try {
    w = await MariadbWorkload.open(o.mysqlUrl);
  } catch (err) {
    const reason = `MariaDB at ${o.mysqlUrl} unavailable: ${errText(err)}`;
    log(reason);
    if (o.only.has('mysql')) c.throughput.push({ section: 'mysql', contender: 'Tributary binlog → jsonl (fsync, checkpoints)', role: 'tributary', skipped: reason });
    if (o.only.has('snapshot')) c.throughput.push({ section: 'snapshot-mysql', contender: 'Tributary initial_only, 2 workers → jsonl', role: 'tributary', skipped: reason });
    if (o.only.has('latency')) c.latency.push({ source: 'mariadb', rate: o.latencyRate, seconds: o.latencySeconds, events: 0, skipped: reason });
    if (o.only.has('memory')) c.memory.push({ source: 'mariadb', rows: o.memoryRows, skipped: reason });
    return;
  }
  await using _w = w;
  c.versions.mariadb = w.version;
  const base = { cpuProf: o.cpuProf, log };
  log(`\n== mariadb ${w.version}`);
  if (o.only.has('mysql')) {
    await guarded('mariadb streaming', async () => c.throughput.push(...(await mariadbStreaming(w, { ...base, rows: o.rows, pairs: o.pairs }))),
      (e) => c.throughput.push({ section: 'mysql', contender: 'Tributary binlog → jsonl (fsync, checkpoints)', role: 'tributary', error: e }));
  }
  if (o.only.has('snapshot')) {
    await guarded('mariadb snapshot', async () => {
      if (!o.only.has('mysql')) await w.streamWorkload('bench_rows', o.rows);
      c.throughput.push(...(await mariadbSnapshot(w, base)));
    }, (e) => c.throughput.push({ section: 'snapshot-mysql', contender: 'Tributary initial_only, 2 workers → jsonl', role: 'tributary', error: e }));
  }
  if (o.only.has('latency')) {
    log(`mariadb latency: ${o.latencyRate} changes/s for ${o.latencySeconds} s`);
    const l = await guarded('mariadb latency', () => mariadbLatency(w, { ...base, rate: o.latencyRate, seconds: o.latencySeconds }),
      (e) => c.latency.push({ source: 'mariadb', rate: o.latencyRate, seconds: o.latencySeconds, events: 0, error: e }));
    if (l) {
      log(`  p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms${l.error ? ` FAILED ${l.error}` : ''}`);
      c.latency.push(l);
    }
  }
  if (o.only.has('memory')) {
    const m = await guarded('mariadb memory', () => mariadbMemory(w, { ...base, rows: o.memoryRows }),
      (e) => c.memory.push({ source: 'mariadb', rows: o.memoryRows, error: e }));
    if (m) {
      log(`  peak RSS ${m.peakRssMb} MB, ${m.rowsPerSec} rows/s${m.error ? ` FAILED ${m.error}` : ''}`);
      c.memory.push(m);
    }
  }
}

async function main(): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) console.error(`error: ${err.message}\n`);
      console.error(USAGE);
      return err.message ? 2 : 0;
    }
    throw err;
  }
  if (o.cpuProf) mkdirSync(o.cpuProf, { recursive: true });
  const t0 = performance.now();
  const c: Collected = { throughput: [], latency: [], memory: [], versions: {} };
  await postgresSections(o, c);
  await mariadbSections(o, c);
  if (o.only.has('log')) {
    log(`\n== log (${o.logEvents} appends each, time travel over ${o.lookupEvents})`);
    c.log = { appends: [] };
    try {
      c.log.appends = await logAppends(o.logEvents, log);
      c.log.lookup = await logLookup(o.lookupEvents, log);
    } catch (err) {
      c.log.error = errText(err);
      log(`log: FAILED ${c.log.error}`);
    }
  }
  if (o.only.has('sinks')) {
    log(`\n== sinks (${o.sinkEvents} events each)`);
    c.throughput.push(...(await sinkBenches(o.sinkEvents, log)));
  }
  const report: Report = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']) || 'unknown',
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    machine: { cpus: cpus().length, node: process.version, ...c.versions },
    options: { only: [...o.only], rows: o.rows, latencySeconds: o.latencySeconds, latencyRate: o.latencyRate, memoryRows: o.memoryRows, sinkEvents: o.sinkEvents, logEvents: o.logEvents, lookupEvents: o.lookupEvents, pairs: o.pairs, cpuProf: !!o.cpuProf },
    throughput: c.throughput,
    latency: c.latency,
    memory: c.memory,
    log: c.log,
    targets: judge(c.throughput, c.latency, c.memory, o.only, c.log),
    totalSeconds: (performance.now() - t0) / 1000,
  };
  console.log('\n' + render(report));
  if (o.save) {
    const dir = join(REPO, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
    appendFileSync(join(dir, 'history.jsonl'), JSON.stringify(report) + '\n');
    log(`\nwrote bench/results/latest.json and appended bench/results/history.jsonl`);
  }
  return 0;
}

process.exitCode = await main();
