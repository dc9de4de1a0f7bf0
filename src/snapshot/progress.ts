import cliProgress from 'cli-progress';
import type { Logger } from 'pino';

/**
 * Snapshot progress for people: one bar per table (rows read of the estimate, rate, ETA) when
 * stderr is a terminal; otherwise a log line per table every 10 seconds.
 */
export class SnapshotProgress {
  private readonly bars?: cliProgress.MultiBar;
  private readonly perTable = new Map<string, { bar?: cliProgress.SingleBar; rows: number; estimate: number; started: number; lastLog: number }>();
  private stopped = false;

  constructor(private readonly logger: Logger) {
    if (process.stderr.isTTY && !process.env.CI) {
      this.bars = new cliProgress.MultiBar(
        {
          stream: process.stderr,
          format: ' {table} |{bar}| {percentage}% {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}',
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  read(table: string, rows: number, estimate: number): void {
    if (this.stopped) return;
    let t = this.perTable.get(table);
    const now = Date.now();
    if (!t) {
      t = { rows: 0, estimate: Math.max(estimate, 1), started: now, lastLog: now };
      t.bar = this.bars?.create(t.estimate, 0, { table: table.padEnd(24), rate: 0 });
      this.perTable.set(table, t);
    }
    t.rows += rows;
    if (t.rows > t.estimate) {
      t.estimate = t.rows;
      t.bar?.setTotal(t.estimate);
    }
    const rate = Math.round(t.rows / Math.max(0.001, (now - t.started) / 1000));
    if (t.bar) t.bar.update(t.rows, { rate });
    else if (now - t.lastLog > 10_000) {
      t.lastLog = now;
      this.logger.info({ table, rows: t.rows, estimate: t.estimate, rowsPerSec: rate }, `snapshot ${table}: ${t.rows}/${t.estimate} rows (${rate} rows/s)`);
    }
  }

  tableDone(table: string, rows: number): void {
    const t = this.perTable.get(table);
    if (t?.bar) {
      t.bar.setTotal(rows);
      t.bar.update(rows);
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bars?.stop();
  }
}
