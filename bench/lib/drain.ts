/**
 * One Tributary backlog drain: start `tributary run` on a backlog that is already in the
 * WAL/binlog, time from spawn until the sink's checkpoint shows the last transaction
 * durable, record the peak RSS, stop it gracefully, and (for jsonl) check every row arrived.
 */
import { execFileSync } from 'node:child_process';
import { benchPipeline } from './pipeline-config.js';
import { TributaryRun, countLines, cpuRound, serverCpu } from './proc.js';
import { errText, mb, rate, type Throughput } from './results.js';

export interface DrainSpec {
  section: string;
  contender: string;
  /** Pipeline name (lowercase, digits, _). */
  name: string;
  sourceYaml: string;
  /** The `stream:` block (flow YAML); the default (the embedded log) when absent. */
  streamYaml?: string;
  sinkYaml: (out: string, dir: string) => string;
  /** True once the checkpoint covers the whole backlog. */
  done: (ck: { position: string; resume: string }) => boolean;
  rows: number;
  /** Count the jsonl lines afterwards and fail unless they equal `rows`. */
  verifyJsonl?: boolean;
  cpuProfDir?: string | null;
  nodeOptions?: string;
  timeoutMs?: number;
  /** Process name of the database server, for its CPU use (`postgres`, `mariadbd`). */
  server?: string;
}

export async function tributaryDrain(s: DrainSpec): Promise<Throughput> {
  using p = benchPipeline(s.name, s.sourceYaml, s.sinkYaml, s.streamYaml);
  // Start from clean pages: the kernel writing back the last run's files (hundreds of MB of
  // log and jsonl) competed with this run's fsyncs, and moved one contender by a quarter.
  execFileSync('sync');
  const server0 = s.server ? serverCpu(s.server) : 0;
  await using run = new TributaryRun(p.config, { cpuProfDir: s.cpuProfDir, nodeOptions: s.nodeOptions });
  const base: Throughput = { section: s.section, contender: s.contender, role: 'tributary' };
  try {
    const seconds = await run.waitForCheckpoint(p.checkpoint, s.done, s.timeoutMs ?? 600_000);
    const peak = run.peakRss();
    const cpu = run.cpuSeconds();
    const serverCpuSeconds = s.server ? cpuRound(serverCpu(s.server) - server0) : undefined;
    const code = await run.stop();
    if (code !== 0) throw new Error(`tributary exited with code ${code} on SIGTERM:\n${run.stderr.slice(-2000)}`);
    if (s.verifyJsonl) {
      const lines = await countLines(p.out);
      if (lines !== s.rows) throw new Error(`jsonl holds ${lines} events, expected ${s.rows}`);
    }
    return { ...base, rows: s.rows, seconds, rowsPerSec: rate(s.rows, seconds), peakRssMb: mb(peak), cpuSeconds: cpuRound(cpu), serverCpuSeconds };
  } catch (err) {
    return { ...base, error: errText(err) };
  }
}
