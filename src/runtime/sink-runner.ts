import { mkdir, open as openFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCodes, PoisonEventError, TributaryError, errorMessage } from '../core/errors.js';
import type { Position, Source } from '../core/source.js';
import type { SinkEvent, SinkInstance, WriteContext } from '../sdk/index.js';
import type { ResolvedSink } from '../config/load.js';
import type { SinkCheckpointRecord, StateStore } from '../state/store.js';
import type { EventStream, StreamCommit, StreamConsumer, StreamEntry } from '../stream/types.js';
import type { Metrics } from './metrics.js';
import { matchAll, tableMatcher } from './table-filter.js';
import { sleep, backoffDelay, isRetryableError } from './retry.js';
import { commitTime } from '../core/event.js';
import { plainJsonProblem } from '../core/plain-json.js';

export interface SinkRunnerOptions {
  pipeline: string;
  sink: ResolvedSink;
  stream: EventStream;
  store: StateStore;
  source: Pick<Source, 'parsePosition'>;
  logger: Logger;
  metrics: Metrics;
  stateDir: string;
  /** Called after every persisted checkpoint, so the coordinator can acknowledge. */
  onCommit(): void;
}

/**
 * Drives one sink: reads batches from its own cursor in the stream, filters, writes with
 * retries, isolates poison events into the dead-letter store, and persists the sink's
 * position only after the write is durable.
 *
 * Batches are cut right after the last commit marker they contain, so that when the
 * position is persisted every event written so far belongs to a transaction at or below
 * it. A transaction larger than a batch is written in pieces with no commit in between;
 * after a crash it is delivered again from its start, and the sink's idempotence (or the
 * jsonl truncation) absorbs the repeat.
 */
export class SinkRunner {
  readonly name: string;
  /** Last transaction position durable in the sink. */
  position: Position | null = null;
  /** Where the source must resume for this sink. */
  resume: Position | null = null;
  /** The stream offset this sink resumes from after a restart (log stream): after its last commit. */
  offset: number | null = null;
  /** Rewound to `earliest` past retention: it reads the compacted state first (until its next commit). */
  rebuild = false;
  /** The reader of this sink's consumer group. */
  private consumer: StreamConsumer | null = null;
  /** The first entry of the batch being written, for `lagSeconds`. */
  private inflight: StreamEntry | null = null;
  /** The last event written, for `lagSeconds` while reading from disk. */
  private lastWritten: SinkEvent | null = null;
  instance!: SinkInstance;
  failed: Error | null = null;
  private readonly matches: (table: string) => boolean;
  private readonly ac = new AbortController();
  private loop?: Promise<void>;
  private closed?: Promise<void>;
  private deadLetterPath: string;
  /** Whether the most recent write succeeded (a healthy target). */
  private lastWriteOk = false;
  /** `lastWriteOk` as it was before the batch now being isolated. */
  private lastWriteOkBefore = false;
  private readonly labels: Record<string, string>;

  constructor(private readonly o: SinkRunnerOptions) {
    this.name = o.sink.base.name;
    this.matches = tableMatcher(o.sink.base.tables, o.sink.base.exclude);
    this.deadLetterPath = o.sink.base.dead_letter.path ?? join(o.stateDir, o.pipeline, `deadletter.${encodeURIComponent(this.name)}.jsonl`);
    this.labels = { pipeline: o.pipeline, sink: this.name };
  }

  /** The sink's resolved configuration. */
  get sink(): ResolvedSink {
    return this.o.sink;
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** Create and open the sink; returns the position it is durable at. */
  async open(stored: SinkCheckpointRecord | undefined): Promise<void> {
    const { sink, pipeline, logger, metrics } = this.o;
    const log = logger.child({ sink: this.name });
    this.instance = await sink.definition.create(sink.config as never, {
      logger: log,
      metrics: metrics.scoped(this.labels),
      signal: this.ac.signal,
      pipeline,
      sinkName: this.name,
      stateDir: join(this.o.stateDir, pipeline),
    });
    this.position = stored ? this.o.source.parsePosition(stored.position) : null;
    this.resume = stored ? this.o.source.parsePosition(stored.resume) : null;
    this.offset = stored?.offset ?? null;
    this.rebuild = stored?.rebuild === true;
    const r = await this.instance.open?.({ position: stored?.position ?? null, state: stored?.state });
    if (r && r.position) {
      // The target holds its own position (written in the same transaction as the data):
      // trust whichever is newer, so a batch that landed before the crash is skipped.
      const own = this.o.source.parsePosition(r.position);
      if (!this.position || own.compare(this.position) > 0) {
        this.position = own;
        // A transaction's own position is always a valid place to resume (that transaction
        // is received again and skipped), so it serves when no later resume point is known.
        this.resume ??= own;
      }
    }
  }

  /** Start consuming with this sink's consumer-group reader. */
  start(consumer: StreamConsumer): void {
    this.consumer = consumer;
    this.loop = this.run().catch((err) => {
      if (this.saveError) return; // reported by saveLoop, which stopped the loop
      // Stopped on purpose (close, a rewind): the write it cut short is no failure.
      if (this.ac.signal.aborted) return;
      this.failed = err as Error;
      this.o.logger.error({ sink: this.name, err }, `sink ${this.name} stopped: ${errorMessage(err)}`);
      this.o.onCommit();
    });
  }

  /** Events written durably by this attempt (for the console's throughput chart, runtime/lag-history.ts). */
  eventsOut = 0;
  /** Events this attempt parked in the dead-letter store. */
  deadLettered = 0;

  /** Events (and commit markers) in the stream that this sink has not taken yet. */
  get lagEvents(): number {
    return (this.consumer?.behind ?? 0) + this.pending.length;
  }

  /**
   * Seconds the sink is behind: age of the oldest entry it has not written, or 0. Reading
   * from disk (far behind), the next entry's time is not at hand: the last one written is
   * a lower bound.
   */
  lagSeconds(now = Date.now()): number {
    const e = this.inflight ?? this.pending[0];
    let t: number | null = e && e.kind === 'event' ? commitTime(e.event) : null;
    if (t === null && this.consumer && this.consumer.behind > 0) t = this.consumer.nextTime() ?? (this.lastWritten ? commitTime(this.lastWritten.event) : null);
    return t === null || t === 0 ? 0 : Math.max(0, (now - t) / 1000);
  }

  /** Entries taken from the stream but not yet part of a batch (after a batch's last commit). */
  private pending: StreamEntry[] = [];

  private async run(): Promise<void> {
    const { sink } = this.o;
    const consumer = this.consumer!;
    const { max_events, max_bytes, max_wait_ms } = sink.base.batch;
    const signal = this.ac.signal;
    while (!signal.aborted) {
      // Entries left over after the last batch's commit come first; top them up.
      let entries = this.pending;
      this.pending = [];
      const room = () => max_events - countEvents(entries);
      if (room() > 0) {
        const more = await consumer.next(room(), max_bytes, signal, entries.length === 0);
        entries = entries.length ? entries.concat(more) : more;
      }
      if (!entries.length) continue;
      if (max_wait_ms > 0 && room() > 0) {
        // Linger for a fuller batch (fewer, larger writes), then take what is there.
        await sleep(max_wait_ms, signal);
        const more = await consumer.next(room(), max_bytes, signal, false);
        if (more.length) entries = entries.concat(more);
      }
      // Cut right after the last commit: what follows waits for the next batch.
      let commit: StreamCommit | null = null;
      for (let i = entries.length - 1; i >= 0; i--) {
        const e = entries[i]!;
        if (e.kind === 'commit') {
          commit = e;
          this.pending = entries.slice(i + 1);
          entries = entries.slice(0, i + 1);
          break;
        }
      }
      const events: SinkEvent[] = [];
      const pos = this.position;
      const all = this.matches === matchAll;
      for (const e of entries) {
        if (e.kind !== 'event') continue;
        if (pos && e.txn.compare(pos) <= 0) continue; // already durable in this sink
        if (!all && !this.matches(e.table)) continue;
        events.push(e);
      }
      const fresh = commit && (!pos || commit.txn.compare(pos) > 0);
      // Entries were taken from the stream as they were read, not once written: the source
      // fills the stream again while the sink writes and fsyncs. Nothing is lost by it: a
      // failed write is retried from `events`; after a crash the sink reads again from its
      // checkpoint (the log) or the source sends again what no sink committed (memory).
      this.inflight = entries[0]!;
      if (events.length) {
        this.lastWriteOkBefore = this.lastWriteOk;
        await this.deliver(events, { signal, commit: fresh ? commit!.txn.serialize() : null });
        this.lastWritten = events[events.length - 1]!;
      }
      this.inflight = null;
      this.o.metrics.set('tributary_sink_lag_events', this.lagEvents, this.labels);
      if (fresh) await this.persist(commit!);
    }
    await this.saving;
    if (this.saveError) throw this.saveError;
  }

  /**
   * Checkpoint a commit. The sink's own `checkpoint()` runs now, before the next batch is
   * written, so the state it returns (the jsonl byte offset) describes exactly this batch.
   *
   * Writing the record to the state store (fsync, rename, directory fsync: several ms) does
   * not hold up the next batch. At most one record is being written at a time; commits that
   * arrive meanwhile only replace the record waiting behind it, so under load the store is
   * written as fast as it can take and the sink never waits on it, while an idle sink's last
   * commit is always written. A batch landing in the sink before its predecessor's record is
   * durable changes nothing after a crash: the stored position is older, and what follows it
   * is delivered again, as for any batch written after a checkpoint.
   */
  private async persist(commit: StreamCommit): Promise<void> {
    if (this.saveError) throw this.saveError;
    const position = commit.txn.serialize();
    const state = await this.instance.checkpoint?.(position);
    // The store keeps it as JSON: a Map would come back as {}, a BigInt cannot be stored.
    const problem = state === undefined ? null : plainJsonProblem(state);
    if (problem) {
      throw new TributaryError(ErrorCodes.SINK_STATE_NOT_JSON, `sink ${this.name} returned checkpoint state that is not plain JSON: ${problem}`, {
        fix: 'make the sink\'s checkpoint() return plain objects, arrays, strings, finite numbers, booleans and null (convert a Map to an object or an array of entries, a BigInt to a string); run the conformance kit (tributary/testing) on it',
      });
    }
    // With the log, the consumer group's offset: after this commit marker.
    const offset = this.o.stream.kind === 'log' && commit.offset >= 0 ? commit.offset + 1 : undefined;
    this.nextSave = { commit, rec: { position, resume: commit.resume.serialize(), state, at: Date.now(), ...(offset !== undefined ? { offset } : {}) } };
    this.saving ??= this.saveLoop();
  }

  /** Write the waiting checkpoint record, then the one that replaced it meanwhile, and so on. */
  private async saveLoop(): Promise<void> {
    try {
      for (let next = this.nextSave; next; next = this.nextSave) {
        this.nextSave = null;
        await this.o.store.saveSink(this.o.pipeline, this.name, next.rec);
        this.position = next.commit.txn;
        this.resume = next.commit.resume;
        if (next.rec.offset !== undefined) this.offset = next.rec.offset;
        this.rebuild = false;
        this.o.onCommit();
      }
    } catch (err) {
      // As when the write was awaited in the loop: the sink stops now, loudly, and the
      // pipeline fails (an idle sink would otherwise only notice at its next commit).
      this.saveError = err as Error;
      this.failed ??= this.saveError;
      this.o.logger.error({ sink: this.name, err }, `sink ${this.name} stopped: cannot store its checkpoint: ${errorMessage(err)}`);
      this.ac.abort();
      this.o.onCommit();
    } finally {
      this.saving = null;
    }
  }

  /** The record waiting to be written once the one in flight is durable. */
  private nextSave: { commit: StreamCommit; rec: SinkCheckpointRecord } | null = null;
  /** The record writer, while one runs. */
  private saving: Promise<void> | null = null;
  /** A failed record write: the runner stops with it. */
  private saveError: Error | null = null;

  /**
   * Write a batch. Unreachable targets are retried forever. A batch that keeps failing for
   * another reason is bisected to find the events the target rejects on their own; those are
   * parked in the dead-letter store and the rest are written. If nothing in the batch can be
   * written (a wrong password, a missing table), the fault is the target's, not the data's:
   * nothing is parked and the batch is retried with backoff, loudly, until it goes through.
   */
  private async deliver(events: SinkEvent[], wctx: WriteContext): Promise<void> {
    const { retry } = this.o.sink.base;
    for (let round = 1; ; round++) {
      const err = await this.writeWithRetries(events, wctx, retry.attempts);
      if (!err) return;
      const failed: { ev: SinkEvent; err: unknown }[] = [];
      const state = { succeeded: false, broken: false };
      await this.isolate(events, wctx, failed, state);
      const poisonOnly = failed.length > 0 && failed.every((f) => f.err instanceof PoisonEventError);
      if (!state.broken && (state.succeeded || poisonOnly || (events.length === 1 && this.lastWriteOkBefore))) {
        for (const f of failed) {
          // One more try before parking: the target may have recovered while the batch was
          // being bisected, and an event that goes through now was never poison.
          const again = f.err instanceof PoisonEventError ? f.err : await this.writeWithRetries([f.ev], { ...wctx, commit: null }, 1);
          if (again) await this.park(f.ev, again);
        }
        return;
      }
      if (wctx.signal.aborted) throw err;
      if (this.o.sink.base.dead_letter.policy === 'stop') await this.park(failed[0]?.ev ?? events[0]!, err);
      this.o.logger.error({ sink: this.name, round, err }, `sink ${this.name}: no event of the batch can be written (${errorMessage(err)}); the target looks broken, retrying the whole batch`);
      await sleep(backoffDelay(round, retry.backoff_ms * 5, retry.max_backoff_ms), wctx.signal);
    }
  }

  /** Try a write; retryable errors forever, others `attempts` times. Returns the last error, or null. */
  private async writeWithRetries(events: SinkEvent[], wctx: WriteContext, attempts: number): Promise<unknown> {
    const { retry } = this.o.sink.base;
    let attempt = 0;
    let transient = 0;
    for (;;) {
      try {
        await this.instance.write(events, wctx);
        this.lastWriteOk = true;
        this.eventsOut += events.length;
        this.o.metrics.inc('tributary_events_out_total', events.length, this.labels);
        this.o.metrics.inc('tributary_sink_batches_total', 1, this.labels);
        return null;
      } catch (err) {
        if (wctx.signal.aborted) throw err;
        this.o.metrics.inc('tributary_sink_retries_total', 1, this.labels);
        if (!(err instanceof PoisonEventError) && isRetryableError(err)) {
          transient++;
          this.o.logger.warn({ sink: this.name, attempt: transient, err }, `sink ${this.name}: target unavailable, retrying`);
          await sleep(backoffDelay(transient, retry.backoff_ms, retry.max_backoff_ms), wctx.signal);
          continue;
        }
        attempt++;
        if (err instanceof PoisonEventError || attempt >= attempts) {
          this.lastWriteOk = false;
          return err;
        }
        await sleep(backoffDelay(attempt, retry.backoff_ms, retry.max_backoff_ms), wctx.signal);
      }
    }
  }

  /** Bisect `events`, writing what can be written and collecting what cannot. */
  private async isolate(events: SinkEvent[], wctx: WriteContext, failed: { ev: SinkEvent; err: unknown }[], state: { succeeded: boolean; broken: boolean }): Promise<void> {
    if (state.broken) return;
    if (events.length === 1) {
      const err = await this.writeWithRetries(events, wctx, this.o.sink.base.retry.attempts);
      if (!err) {
        state.succeeded = true;
        return;
      }
      failed.push({ ev: events[0]!, err });
      // Two events failing on their own with nothing written at all: the target is broken,
      // not the data. Stop bisecting (it would cost a write per event) and say so.
      if (!state.succeeded && !(err instanceof PoisonEventError) && failed.length >= 2) state.broken = true;
      return;
    }
    const mid = events.length >> 1;
    for (const half of [events.slice(0, mid), events.slice(mid)]) {
      const err = await this.writeWithRetries(half, { ...wctx, commit: null }, 1);
      if (!err) state.succeeded = true;
      else await this.isolate(half, wctx, failed, state);
      if (state.broken) return;
    }
  }

  private async park(ev: SinkEvent, err: unknown): Promise<void> {
    const { dead_letter } = this.o.sink.base;
    if (dead_letter.policy === 'stop') {
      throw new TributaryError(ErrorCodes.DEAD_LETTER_STOP, `sink ${this.name} rejected an event of ${ev.table} at ${ev.position}: ${errorMessage(err)}`, {
        fix: 'fix the event or the target, or set dead_letter.policy: park to set such events aside',
        cause: err,
      });
    }
    const line = JSON.stringify({
      at: new Date().toISOString(),
      pipeline: this.o.pipeline,
      sink: this.name,
      position: ev.position,
      index: ev.index,
      error: { message: errorMessage(err), code: (err as { code?: string })?.code ?? null },
      event: ev.event,
    });
    try {
      await mkdir(dirname(this.deadLetterPath), { recursive: true });
      const fh = await openFile(this.deadLetterPath, 'a');
      try {
        await fh.write(line + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new TributaryError(ErrorCodes.DEAD_LETTER, `cannot write dead-letter file ${this.deadLetterPath}: ${(e as Error).message}`, {
        fix: 'make the dead-letter path writable; the event was not skipped and will be retried after restart',
        cause: e,
      });
    }
    this.deadLettered++;
    this.o.metrics.inc('tributary_dead_letter_total', 1, this.labels);
    this.o.logger.warn(
      { sink: this.name, table: ev.table, position: ev.position, deadLetter: this.deadLetterPath },
      `sink ${this.name} rejected an event; parked in the dead-letter file: ${errorMessage(err)}`,
    );
  }

  /** Stop reading; the current write finishes or aborts. */
  async stop(): Promise<void> {
    this.ac.abort();
    await this.loop;
  }

  /** Idempotent: stop, let the checkpoint record being written land, then close the sink. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      try {
        await this.stop();
        await this.saving;
      } finally {
        this.consumer?.close();
        try {
          await this.instance?.close();
        } catch (err) {
          this.o.logger.warn({ sink: this.name, err }, 'sink close failed');
        }
      }
    })());
  }

}

function countEvents(entries: StreamEntry[]): number {
  let n = 0;
  for (const e of entries) if (e.kind === 'event') n++;
  return n;
}
