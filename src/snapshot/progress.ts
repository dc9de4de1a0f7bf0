import cliProgress from 'cli-progress';
import type { Logger } from 'pino';
import { stderrTerminal, type TerminalLog } from '../core/terminal-log.js';

/** A table's snapshot progress as shown to people. */
export interface TableProgress {
  table: string;
  /** Rows read so far. */
  rows: number;
  /** The database's estimate of the table's rows; null when it has none (never ANALYZEd). */
  estimate: number | null;
  started: number;
  /** Set once every chunk of the table is durable. */
  finished: number | null;
}

/** What cli-progress writes to: a terminal stream (process.stderr, or a test's fake). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/**
 * The line of one table (pure). A known estimate shows a bar, the percentage, rows of the
 * estimate, the rate and an ETA; but only a finished table shows a full bar or 100%. Without
 * an estimate (a table never ANALYZEd), or once the rows read exceed it, the total is unknown:
 * the line counts rows and shows the rate, with no percentage and no ETA.
 */
export function progressLine(t: TableProgress, now: number, opts: { barSize?: number; width?: number } = {}): string {
  const size = opts.barSize ?? 24;
  const name = t.table.padEnd(24);
  const secs = Math.max(0.001, ((t.finished ?? now) - t.started) / 1000);
  const rate = Math.round(t.rows / secs);
  let line: string;
  if (t.finished !== null) {
    line = ` ${name} |${'█'.repeat(size)}| 100% ${t.rows} rows | done in ${duration(t.finished - t.started)}`;
  } else if (t.estimate !== null && t.estimate > 0 && t.rows <= t.estimate) {
    // Chunks remain: never a full bar nor 100%, even when the estimate is met exactly.
    const filled = Math.min(size - 1, Math.floor((t.rows / t.estimate) * size));
    const pct = Math.min(99, Math.floor((t.rows / t.estimate) * 100));
    const eta = rate > 0 ? duration(((t.estimate - t.rows) / rate) * 1000) : '?';
    line = ` ${name} |${'█'.repeat(filled)}${'░'.repeat(size - filled)}| ${String(pct).padStart(2)}% ${t.rows}/${t.estimate} rows | ${rate} rows/s | ETA ${eta}`;
  } else {
    const why = t.estimate !== null && t.estimate > 0 ? `more than the estimate of ~${t.estimate}` : 'total unknown';
    line = ` ${name} |${'·'.repeat(size)}| ${t.rows} rows, ${why} | ${rate} rows/s`;
  }
  return opts.width && line.length > opts.width ? line.slice(0, opts.width) : line;
}

/** One MultiBar per stream, shared by every snapshot in the process, with its users counted. */
const shared = new Map<ProgressStream, { bars: cliProgress.MultiBar; users: number }>();

function acquireBars(stream: ProgressStream, log: TerminalLog | null): cliProgress.MultiBar {
  let s = shared.get(stream);
  if (!s) {
    const bars = new cliProgress.MultiBar({
      stream: stream as NodeJS.WritableStream,
      format: (_o: unknown, params: { maxWidth: number }, payload: { t?: TableProgress }) => (payload.t ? progressLine(payload.t, Date.now(), { width: params.maxWidth }) : ''),
      hideCursor: true,
      clearOnComplete: false,
      // Every redraw draws every bar: after log lines were printed above them, a bar whose
      // text did not change must still be drawn on its new line.
      forceRedraw: true,
    });
    s = { bars, users: 0 };
    shared.set(stream, s);
    log?.setOverlay(bars);
  }
  s.users++;
  return s.bars;
}

function releaseBars(stream: ProgressStream, log: TerminalLog | null): void {
  const s = shared.get(stream);
  if (!s || --s.users > 0) return;
  shared.delete(stream);
  // Print the log lines still waiting above the bars, draw them a last time, then log directly.
  s.bars.update();
  s.bars.stop();
  log?.setOverlay(null);
}

/**
 * Snapshot progress for people: one bar per table when stderr is a terminal (log lines are
 * printed above the bars, see terminal-log.ts); otherwise a log line per table every 10
 * seconds.
 */
export class SnapshotProgress {
  private readonly bars?: cliProgress.MultiBar;
  private readonly perTable = new Map<string, { t: TableProgress; bar?: cliProgress.SingleBar; lastLog: number }>();
  private stopped = false;
  private readonly stream: ProgressStream;
  private readonly log: TerminalLog | null;

  constructor(
    private readonly logger: Logger,
    opts: { stream?: ProgressStream; log?: TerminalLog | null; now?: () => number } = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.log = opts.log !== undefined ? opts.log : this.stream === process.stderr ? stderrTerminal() : null;
    this.now = opts.now ?? Date.now;
    // CI logs are no terminal even when they claim to be one.
    const tty = opts.stream ? !!opts.stream.isTTY : !!process.stderr.isTTY && !process.env.CI;
    if (tty) this.bars = acquireBars(this.stream, this.log);
  }

  private readonly now: () => number;

  /** `rows` more rows of `table` were read; `estimate` is the table's (null: none). */
  read(table: string, rows: number, estimate: number | null): void {
    if (this.stopped) return;
    const now = this.now();
    let e = this.perTable.get(table);
    if (!e) {
      e = { t: { table, rows: 0, estimate, started: now, finished: null }, lastLog: now };
      // The bar's own value/total are not shown (progressLine draws the line); the payload is.
      e.bar = this.bars?.create(1, 0, { t: e.t });
      this.perTable.set(table, e);
    }
    e.t.rows += rows;
    if (e.bar) e.bar.update(0, { t: e.t });
    else if (now - e.lastLog > 10_000) {
      e.lastLog = now;
      const t = e.t;
      const rate = Math.round(t.rows / Math.max(0.001, (now - t.started) / 1000));
      const of = t.estimate !== null && t.estimate > 0 && t.rows <= t.estimate ? `${t.rows}/${t.estimate} rows` : `${t.rows} rows (${t.estimate !== null && t.estimate > 0 ? `more than the estimate of ~${t.estimate}` : 'total unknown'})`;
      this.logger.info({ table, rows: t.rows, estimate: t.estimate, rowsPerSec: rate }, `snapshot ${table}: ${of} (${rate} rows/s)`);
    }
  }

  /** Every chunk of `table` is durable: `rows` in all. */
  tableDone(table: string, rows: number): void {
    const e = this.perTable.get(table);
    if (!e) return;
    e.t.rows = rows;
    e.t.finished = this.now();
    e.bar?.update(0, { t: e.t });
  }

  /** Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.bars) releaseBars(this.stream, this.log);
  }
}
