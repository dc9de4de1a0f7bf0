/**
 * Processes the benchmark runs: `tributary run` subprocesses (with their peak RSS and their
 * checkpoints), and peer commands timed from spawn to exit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the first parent of this file holding bin/tributary.js. */
export const REPO = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (d !== dirname(d) && !existsSync(join(d, 'bin', 'tributary.js'))) d = dirname(d);
  return d;
})();
export const BIN = join(REPO, 'bin', 'tributary.js');
/** Compiled benchmark scripts (peers, plugins) live next to this module's parent. */
export const BENCH_DIST = dirname(dirname(fileURLToPath(import.meta.url)));

/** Absolute path of `name` on the PATH, or null. */
export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Peak resident set size (VmHWM) of a live process, in bytes; 0 when it is gone. */
export function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Clock ticks per second of the CPU times in /proc (USER_HZ; 100 on every common kernel). */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * The fields of /proc/PID/stat after the command name (which may hold spaces), so that
 * index 11 is utime, 12 stime, 13 cutime and 14 cstime; plus the command name. Null when
 * the process is gone.
 */
function statOf(pid: number | 'self'): { comm: string; f: string[] } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    return { comm: s.slice(s.indexOf('(') + 1, close), f: s.slice(close + 2).split(' ') };
  } catch {
    return null;
  }
}

/** CPU seconds (user + system, every thread) a live process has used; NaN once it is gone. */
export function processCpu(pid: number): number {
  const st = statOf(pid);
  return st ? (Number(st.f[11]) + Number(st.f[12])) / TICKS : NaN;
}

/**
 * CPU seconds used by this process's children that have exited and been reaped. The kernel
 * adds a child's times (threads and its own reaped children included) here when it is
 * waited for, so the difference around one child's run is exactly what that child used.
 */
export function reapedChildrenCpu(): number {
  const st = statOf('self');
  return st ? (Number(st.f[13]) + Number(st.f[14])) / TICKS : 0;
}

/**
 * CPU seconds the database server has used so far: every live process named `comm`
 * (postgres: postmaster, walsenders, backends; mariadbd: one process whose threads include
 * the binlog dump) plus what their exited children used. Only differences mean anything;
 * they show what serving a contender cost the server (walsender decoding, COPY, binlog
 * reads), which shares the machine's cores with the contender.
 */
export function serverCpu(comm: string): number {
  let ticks = 0;
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const st = statOf(Number(name));
    if (st?.comm !== comm) continue;
    ticks += Number(st.f[11]) + Number(st.f[12]) + Number(st.f[13]) + Number(st.f[14]);
  }
  return ticks / TICKS;
}

/**
 * A peer command's figures: rows/s from its wall time, its CPU and the server's CPU over
 * the same run (`server0` is {@link serverCpu} taken just before it started).
 */
export function peerFigures(r: TimedResult, rows: number, server: string, server0: number): { rows: number; seconds: number; rowsPerSec: number; cpuSeconds: number; serverCpuSeconds: number } {
  return { rows, seconds: r.seconds, rowsPerSec: Math.round(rows / r.seconds), cpuSeconds: cpuRound(r.cpuSeconds), serverCpuSeconds: cpuRound(serverCpu(server) - server0) };
}

/** Round CPU seconds for the report. */
export const cpuRound = (s: number) => Math.round(s * 100) / 100;

export interface TimedResult {
  code: number | null;
  seconds: number;
  stdout: string;
  stderr: string;
  /** CPU seconds the command used (user + system, its threads and children included). */
  cpuSeconds: number;
}

/**
 * Run a command to completion, timed from spawn to exit. `discardStdout` sends stdout to
 * /dev/null at the file-descriptor level (no pipe through this process), as a shell would.
 */
export async function timeCommand(cmd: string, args: string[], opts: { discardStdout?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<TimedResult> {
  const devnull = opts.discardStdout ? openSync('/dev/null', 'w') : null;
  const cpu0 = reapedChildrenCpu();
  const t0 = performance.now();
  const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', devnull ?? 'pipe', 'pipe'] });
  if (devnull !== null) closeSync(devnull);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
  const code = await new Promise<number | null>((res) => child.once('exit', (c, s) => res(c ?? (s ? -1 : null))));
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  return { code, seconds, stdout, stderr, cpuSeconds: reapedChildrenCpu() - cpu0 };
}

/** One `tributary run --config FILE` subprocess. */
export class TributaryRun implements AsyncDisposable {
  readonly child: ChildProcess;
  readonly startedAt = performance.now();
  private readonly reaped0 = reapedChildrenCpu();
  private lastCpu = 0;
  readonly exited: Promise<number | null>;
  stderr = '';
  private hwm = 0;
  private sampler: NodeJS.Timeout;
  private exitCode: number | null | undefined;

  constructor(config: string, opts: { cpuProfDir?: string | null; nodeOptions?: string; logLevel?: string } = {}) {
    const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
    this.child = spawn(process.execPath, [...nodeArgs, BIN, 'run', '--config', config], {
      cwd: REPO,
      env: { ...process.env, TRIBUTARY_LOG_LEVEL: opts.logLevel ?? 'warn', NODE_OPTIONS: opts.nodeOptions ?? process.env.TRIBUTARY_BENCH_NODE_OPTIONS ?? '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-20_000)));
    this.exited = new Promise((res) => this.child.once('exit', (c, s) => res((this.exitCode = c ?? (s ? -1 : null)))));
    // VmHWM is gone with the process, so a run that exits by itself (initial_only) is sampled.
    this.sampler = setInterval(() => this.sample(), 100);
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  private sample(): void {
    if (this.child.pid && this.running) this.hwm = Math.max(this.hwm, peakRss(this.child.pid));
  }

  /**
   * CPU seconds the process has used (every thread): read live while it runs; once it has
   * exited, taken from the reaped-children times (exact, as the bench runs one at a time).
   */
  cpuSeconds(): number {
    if (this.running && this.child.pid) {
      const c = processCpu(this.child.pid);
      if (!Number.isNaN(c)) return (this.lastCpu = c);
    }
    return this.exitCode === undefined ? this.lastCpu : reapedChildrenCpu() - this.reaped0;
  }

  /** Peak RSS so far (bytes). */
  peakRss(): number {
    this.sample();
    return this.hwm;
  }

  elapsed(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  /**
   * Poll the sink's checkpoint file (`<stateDir>/<pipeline>/sink.<sink>.json`) until `done`
   * accepts it. The file store renames checkpoints into place after the sink's write is
   * durable, so a checkpoint seen here is data in the sink. Returns seconds since spawn.
   */
  async waitForCheckpoint(file: string, done: (ck: { position: string; resume: string }) => boolean, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const ck = JSON.parse(readFileSync(file, 'utf8')) as { position: string; resume: string };
        if (done(ck)) return this.elapsed();
      } catch {
        /* not written yet */
      }
      if (!this.running) throw new Error(`tributary exited (code ${this.exitCode}) before the backlog was durable:\n${this.stderr.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`tributary did not drain within ${timeoutMs / 1000} s:\n${this.stderr.slice(-3000)}`);
      await sleep(25);
    }
  }

  /** Graceful stop (SIGTERM), then SIGKILL after `graceMs`. */
  async stop(graceMs = 30_000): Promise<number | null> {
    this.sample();
    clearInterval(this.sampler);
    if (this.running) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    return this.exited;
  }

  /** Wait for the process to exit by itself. */
  async wait(timeoutMs: number): Promise<number | null> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    clearInterval(this.sampler);
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    clearInterval(this.sampler);
    if (this.running) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Count newlines in a file without holding it (jsonl outputs are hundreds of MB). */
export async function countLines(path: string): Promise<number> {
  if (!existsSync(path)) return 0;
  const { createReadStream } = await import('node:fs');
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}
