/** What each benchmark section produces; `run.ts` collects them into one report. */

/** One contender's backlog drain (or bulk export). */
export interface Throughput {
  /** Section key: pg, mysql, snapshot-pg, snapshot-mysql, sinks. */
  section: string;
  contender: string;
  /** Tributary itself, or a peer it is compared with. */
  role: 'tributary' | 'peer';
  rows?: number;
  seconds?: number;
  rowsPerSec?: number;
  /** Peak RSS (VmHWM) of the Tributary process during the drain. */
  peakRssMb?: number;
  /** CPU seconds (user + system, all threads) the contender's process used. */
  cpuSeconds?: number;
  /**
   * CPU seconds the database server used meanwhile (walsender decoding, COPY, binlog dump):
   * on a 2-core machine the server and the contender share the cores, so this shows how much
   * of the machine was left to the contender.
   */
  serverCpuSeconds?: number;
  /** Rows/s of each run when the contender ran several times (the row is the median run). */
  trials?: number[];
  /** Set when the contender did not run: why. */
  skipped?: string;
  /** Set when it ran and failed. */
  error?: string;
}

export interface Latency {
  source: 'postgres' | 'mariadb';
  /** Row changes per second offered, and for how long. */
  rate: number;
  seconds: number;
  /** Events measured (should be rate × seconds). */
  events: number;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  /** What the commit time is taken from. */
  clock?: string;
  skipped?: string;
  error?: string;
}

export interface Memory {
  source: 'postgres' | 'mariadb';
  rows: number;
  peakRssMb?: number;
  seconds?: number;
  rowsPerSec?: number;
  skipped?: string;
  error?: string;
}

export interface Target {
  name: string;
  /** The measured value, as printed. */
  measured: string;
  goal: string;
  /** null: could not be judged (a side was skipped or failed). */
  pass: boolean | null;
}

/** The log alone: durable appends of one compression. */
export interface LogAppend {
  compression: 'none' | 'zstd';
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** Bytes on disk (segments and indexes) per event. */
  bytesPerEvent: number;
}

/** A one-key `tributary state --at` in a fresh process over a log of `events` events. */
export interface LogLookup {
  events: number;
  ms: number;
  /** The answer matched the row the bench wrote. */
  correct: boolean;
}

export interface Report {
  date: string;
  commit: string;
  dirty: boolean;
  machine: { cpus: number; node: string; postgres?: string; mariadb?: string };
  options: Record<string, unknown>;
  throughput: Throughput[];
  latency: Latency[];
  memory: Memory[];
  log?: { appends: LogAppend[]; lookup?: LogLookup; error?: string };
  targets: Target[];
  totalSeconds: number;
}

export const mb = (bytes: number) => Math.round(bytes / (1 << 20));
export const rate = (rows: number, seconds: number) => Math.round(rows / seconds);
export const errText = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n').slice(0, 3).join(' | ').slice(0, 400);
