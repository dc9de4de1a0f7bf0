/** Command-line options of `npm run bench` (`node dist/bench/run.js [options]`). */
export const SECTIONS = ['pg', 'mysql', 'snapshot', 'latency', 'memory', 'sinks', 'log'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchOptions {
  /** Sections to run, in the order of SECTIONS. */
  only: Set<Section>;
  /** Inserts of the streaming workload; half as many updates follow. */
  rows: number;
  /** Duration of the steady latency load, seconds. */
  latencySeconds: number;
  /** Row changes per second of the latency load. */
  latencyRate: number;
  /** Rows of the single transaction of the memory run. */
  memoryRows: number;
  /** Events each sink benchmark drains. */
  sinkEvents: number;
  /** Events of the log's append benchmark (each compression). */
  logEvents: number;
  /** Events of the log a one-key time-travel lookup runs over. */
  lookupEvents: number;
  /** Runs of the log path and of the memory path each, alternating; each keeps its median. */
  pairs: number;
  /** Write bench/results/latest.json and history.jsonl (off with --no-save). */
  save: boolean;
  /** Run `tributary run` under `node --cpu-prof`, profiles in this directory. */
  cpuProf: string | null;
  pgUrl: string;
  mysqlUrl: string;
}

export const USAGE = `npm run bench -- [options]

  --only LIST            comma-separated sections: ${SECTIONS.join(',')} (default: all)
  --rows N               inserts of the streaming workload, followed by N/2 updates (default 300000)
  --latency-seconds S    duration of the 5k changes/s latency load (default 30)
  --latency-rate R       row changes per second of the latency load (default 5000)
  --memory-rows N        rows of the one-transaction memory run (default 2000000)
  --sink-events N        events per sink benchmark (default 300000)
  --log-events N         events of the log append benchmark, plain and zstd (default 2000000)
  --lookup-events N      events of the log a one-key state --at runs over (default 10000000)
  --pairs N              runs of the log and of the memory path each, alternating; the median is kept (default 3)
  --cpu-prof DIR         run every 'tributary run' under node --cpu-prof, profiles into DIR
  --no-save              do not write bench/results/
  env: TRIBUTARY_BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/postgres),
       TRIBUTARY_BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306/)`;

export function parseOptions(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    only: new Set(SECTIONS),
    rows: 300_000,
    latencySeconds: 30,
    latencyRate: 5000,
    memoryRows: 2_000_000,
    sinkEvents: 300_000,
    logEvents: 2_000_000,
    lookupEvents: 10_000_000,
    pairs: 3,
    save: true,
    cpuProf: null,
    pgUrl: process.env.TRIBUTARY_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    mysqlUrl: process.env.TRIBUTARY_BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/',
  };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!v || !Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} needs a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--only': {
        const list = (value() ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        const bad = list.filter((s) => !(SECTIONS as readonly string[]).includes(s));
        if (!list.length || bad.length) throw new UsageError(`--only: unknown section(s) ${bad.join(', ') || '(none given)'}; known: ${SECTIONS.join(', ')}`);
        o.only = new Set(list as Section[]);
        break;
      }
      case '--rows': o.rows = Math.round(num(flag, value())); break;
      case '--latency-seconds': o.latencySeconds = num(flag, value()); break;
      case '--latency-rate': o.latencyRate = Math.round(num(flag, value())); break;
      case '--memory-rows': o.memoryRows = Math.round(num(flag, value())); break;
      case '--sink-events': o.sinkEvents = Math.round(num(flag, value())); break;
      case '--log-events': o.logEvents = Math.round(num(flag, value())); break;
      case '--lookup-events': o.lookupEvents = Math.round(num(flag, value())); break;
      case '--pairs': o.pairs = Math.round(num(flag, value())); break;
      case '--cpu-prof': o.cpuProf = value() ?? null; if (!o.cpuProf) throw new UsageError('--cpu-prof needs a directory'); break;
      case '--no-save': o.save = false; break;
      case '-h': case '--help': throw new UsageError('');
      default: throw new UsageError(`unknown option ${a}`);
    }
  }
  return o;
}

export class UsageError extends Error {}
