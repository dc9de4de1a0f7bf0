import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { Source } from '../core/source.js';
import { sleep } from '../runtime/retry.js';
import type { SnapshotCoordinator } from './coordinator.js';

/**
 * Snapshots of tables that joined the capture after streaming began (a table created while the
 * pipeline runs that matches `source.tables`, or one added while it was stopped). The stream
 * never carried their earlier rows, so each gets the ordinary incremental snapshot, which
 * runs beside the stream with the usual watermark windows. Only one snapshot runs at a time:
 * requests wait here while another runs, and are merged into one snapshot when it ends.
 *
 * Requests live in memory only: the source stores them until `request` resolves (a snapshot
 * that covers them has begun, and the coordinator has stored its plan).
 */
export class JoinedTableSnapshots {
  private waiting: { tables: string[]; resolve: () => void }[] = [];
  private coordinator?: SnapshotCoordinator;
  private source?: Source;
  private loop?: Promise<void>;
  private readonly ac = new AbortController();

  constructor(private readonly o: { mode: 'initial' | 'never' | 'initial_only' | 'when_needed'; logger: Logger }) {}

  /** See `SourceContext.requestSnapshot`. */
  request(tables: string[]): Promise<void> {
    if (this.o.mode === 'never' || this.o.mode === 'initial_only') {
      this.o.logger.info({ tables }, `table(s) joined the capture and are streamed from now on; not snapshotted (snapshot: ${this.o.mode}): ${tables.join(', ')}`);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push({ tables, resolve });
      this.kick();
    });
  }

  /** The coordinator is running: requests may start snapshots from now on. */
  attach(coordinator: SnapshotCoordinator, source: Source): void {
    this.coordinator = coordinator;
    this.source = source;
    this.kick();
  }

  private kick(): void {
    if (this.loop || !this.coordinator || !this.waiting.length || this.ac.signal.aborted) return;
    this.loop = this.run().finally(() => {
      this.loop = undefined;
      this.kick();
    });
  }

  private busy(): boolean {
    const st = this.coordinator!.state?.status;
    return st === 'running' || st === 'paused';
  }

  private async run(): Promise<void> {
    const signal = this.ac.signal;
    while (this.waiting.length && !signal.aborted) {
      if (this.busy()) {
        await sleep(1000, signal);
        continue;
      }
      const batch = this.waiting;
      this.waiting = [];
      const names = [...new Set(batch.flatMap((b) => b.tables))];
      try {
        // A table dropped since it joined is no longer captured: snapshot the others.
        const captured = new Set((await this.source!.snapshots!().tables()).map((t) => t.name));
        const list = names.filter((n) => captured.has(n));
        if (list.length) {
          if (this.busy()) {
            this.waiting.unshift(...batch); // someone started a snapshot meanwhile
            continue;
          }
          await this.coordinator!.begin('incremental', list, null);
          this.o.logger.info({ tables: list }, `snapshotting table(s) that joined the capture: ${list.join(', ')}`);
        }
        for (const b of batch) b.resolve();
      } catch (err) {
        if (signal.aborted) return;
        this.waiting.unshift(...batch);
        this.o.logger.warn({ err, tables: names }, `cannot start the snapshot of tables that joined the capture, retrying: ${errorMessage(err)}`);
        await sleep(5000, signal);
      }
    }
  }

  /** Stop; unanswered requests stay stored by the source for the next start. */
  async close(): Promise<void> {
    this.ac.abort();
    await this.loop;
  }
}
