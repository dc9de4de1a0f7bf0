import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCodes, PoisonEventError, TributaryError, errorMessage } from '../core/errors.js';
import type { Position, Source } from '../core/source.js';
import type { SinkEvent, SinkInstance, WriteContext } from '../sdk/index.js';
import type { ResolvedSink } from '../config/load.js';
import type { SinkCheckpointRecord, StateStore } from '../state/store.js';
import type { EventStream, StreamCommit, StreamConsumer, StreamEntry } from '../stream/types.js';
import { StreamEvent } from '../stream/entries.js';
import { MemoryDeadLetters, type DeadLetterQueue, type StoredDeadLetter } from '../state/dead-letters.js';
import { SerializedChangeEvent, qualifiedTable, type ChangeEvent } from '../core/event.js';
import type { Metrics } from './metrics.js';
import { matchAll, tableMatcher } from './table-filter.js';
import type { TargetedRows } from './targeted-rows.js';
import { sleep, backoffDelay, isRetryableError } from './retry.js';
import { commitTime } from '../core/event.js';
import { plainJsonProblem } from '../core/plain-json.js';

export interface SinkRunnerOptions {
  pipeline: string;
  sink: ResolvedSink;
  /** Absent for a runner opened only to retry dead letters (`tributary dlq retry` offline). */
  stream?: EventStream;
  store: StateStore;
  source: Pick<Source, 'parsePosition'>;
  logger: Logger;
  metrics: Metrics;
  stateDir: string;
  /** Called after every persisted checkpoint, so the coordinator can acknowledge. */
  onCommit(): void;
  /** The log's targeted snapshot rows: this sink skips those read for another sink alone. */
  targeted?: TargetedRows;
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
  /** The legacy dead-letter file (earlier versions), imported into the store at open. */
  private readonly legacyPath: string;
  /** This sink's dead letters, in the state store. */
  readonly deadLetters: DeadLetterQueue;
  /**
   * Keys (table + key JSON) with a parked event, and the id of the first: later events of
   * such a key are parked behind it, so the key's changes reach the sink in order.
   */
  private readonly held = new Map<string, { first: string; count: number }>();
  /** The tables of `held`: only their events need their key read (which parses the envelope). */
  private readonly heldTables = new Set<string>();
  /** Ids in the store: an event read again (a restart after a crash, a rewind) is not parked twice. */
  private readonly parkedIds = new Set<string>();
  private depth = 0;
  /** Events in this sink's dead-letter store now (what `tributary_dead_letter_depth` shows). */
  get deadLetterDepth(): number {
    return this.depth;
  }
  /** Serializes batch delivery with dead-letter retries and discards (see exclusive). */
  private gate: Promise<unknown> = Promise.resolve();
  /** The checkpoint record last stored or queued (a retry re-checkpoints the sink's state with it). */
  private lastRec: SinkCheckpointRecord | null = null;
  /** Set while writes fail because the target is unreachable (they are retried until it is back). */
  private unreachable = false;
  /** Whether the most recent write succeeded (a healthy target). */
  private lastWriteOk = false;
  /** `lastWriteOk` as it was before the batch now being isolated. */
  private lastWriteOkBefore = false;
  private readonly labels: Record<string, string>;

  constructor(private readonly o: SinkRunnerOptions) {
    this.name = o.sink.base.name;
    this.matches = tableMatcher(o.sink.base.tables, o.sink.base.exclude);
    this.legacyPath = o.sink.base.dead_letter.path ?? join(o.stateDir, o.pipeline, `deadletter.${encodeURIComponent(this.name)}.jsonl`);
    this.labels = { pipeline: o.pipeline, sink: this.name };
    this.deadLetters = o.store.deadLetters?.(o.pipeline, this.name) ?? new MemoryDeadLetters();
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
    this.lastRec = stored ?? null;
    await this.importLegacyDeadLetters();
    this.track(await this.deadLetters.list());
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
      this.o.targeted?.refresh();
      const targeted = this.o.targeted && !this.o.targeted.empty ? this.o.targeted : null;
      for (const e of entries) {
        if (e.kind !== 'event') continue;
        if (pos && e.txn.compare(pos) <= 0) continue; // already durable in this sink
        if (!all && !this.matches(e.table)) continue;
        if (targeted && targeted.skips(e.offset, this.name, e.txn)) continue; // another sink's own snapshot rows
        events.push(e);
      }
      const fresh = commit && (!pos || commit.txn.compare(pos) > 0);
      // Entries were taken from the stream as they were read, not once written: the source
      // fills the stream again while the sink writes and fsyncs. Nothing is lost by it: a
      // failed write is retried from `events`; after a crash the sink reads again from its
      // checkpoint (the log) or the source sends again what no sink committed (memory).
      this.inflight = entries[0]!;
      await this.exclusive(async () => {
        if (events.length) {
          const last = events[events.length - 1]!;
          // A key with a parked event: its later events park behind it (per-key order).
          const behind = this.held.size ? this.divert(events, this.held, this.heldTables) : [];
          // One read again (after a crash, a rewind) is parked already: left as it is, its error kept.
          const again = behind.filter((ev) => !this.parkedIds.has(ev.fence));
          if (again.length) await this.park(again.map((ev) => this.heldLetter(ev)));
          if (events.length) {
            this.lastWriteOkBefore = this.lastWriteOk;
            await this.deliver(events, { signal, commit: fresh ? commit!.txn.serialize() : null });
          }
          this.lastWritten = last;
        }
        this.inflight = null;
        this.o.metrics.set('tributary_sink_lag_events', this.lagEvents, this.labels);
        if (fresh) await this.persist(commit!);
      });
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
    const offset = this.o.stream?.kind === 'log' && commit.offset >= 0 ? commit.offset + 1 : undefined;
    this.nextSave = { commit, rec: { position, resume: commit.resume.serialize(), state, at: Date.now(), ...(offset !== undefined ? { offset } : {}) } };
    this.lastRec = this.nextSave.rec;
    this.saving ??= this.saveLoop();
  }

  /** Write the waiting checkpoint record, then the one that replaced it meanwhile, and so on. */
  private async saveLoop(): Promise<void> {
    try {
      for (let next = this.nextSave; next; next = this.nextSave) {
        this.nextSave = null;
        await this.o.store.saveSink(this.o.pipeline, this.name, next.rec);
        if (next.commit) {
          this.position = next.commit.txn;
          this.resume = next.commit.resume;
          if (next.rec.offset !== undefined) this.offset = next.rec.offset;
          this.rebuild = false;
          this.o.onCommit();
        }
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
  private nextSave: { commit: StreamCommit | null; rec: SinkCheckpointRecord } | null = null;
  /** The record writer, while one runs. */
  private saving: Promise<void> | null = null;
  /** A failed record write: the runner stops with it. */
  private saveError: Error | null = null;

  /**
   * Write a batch. Unreachable targets are retried forever. A batch that keeps failing for
   * another reason (`max_attempts` tries) is bisected to find the events the target rejects on
   * their own; those are parked in the dead-letter store, later events of their keys are parked
   * behind them (per-key order), and the rest are written. If nothing in the batch can be
   * written (a wrong password, a missing table), the fault is the target's, not the data's:
   * nothing is parked and the batch is retried with backoff, loudly, until it goes through.
   */
  private async deliver(events: SinkEvent[], wctx: WriteContext): Promise<void> {
    const { retry } = this.o.sink.base;
    const attempts = this.maxAttempts;
    for (let round = 1; ; round++) {
      const tally = { n: 0 };
      const err = await this.writeWithRetries(events, wctx, attempts, tally);
      if (!err) return;
      const failed: Failure[] = [];
      const state = { succeeded: false, broken: false };
      const blocked = new Map<string, { first: string; count: number }>();
      const behind: SinkEvent[] = [];
      // One event alone has had its max_attempts already; a batch is bisected.
      if (events.length === 1) failed.push({ ev: events[0]!, err, attempts: tally.n });
      else await this.isolate(events, wctx, failed, state, blocked, behind);
      const poisonOnly = failed.length > 0 && failed.every((f) => f.err instanceof PoisonEventError);
      if (!state.broken && (state.succeeded || poisonOnly || (events.length === 1 && this.lastWriteOkBefore))) {
        await this.settle(failed, behind, wctx);
        return;
      }
      if (wctx.signal.aborted) throw err;
      if (this.o.sink.base.dead_letter.policy === 'stop') await this.park([this.letter(failed[0]?.ev ?? events[0]!, err, failed[0]?.attempts ?? attempts)]);
      this.o.logger.error({ sink: this.name, round, err }, `sink ${this.name}: no event of the batch can be written (${errorMessage(err)}); the target looks broken, retrying the whole batch`);
      await sleep(backoffDelay(round, retry.backoff_ms * 5, retry.max_backoff_ms), wctx.signal);
    }
  }

  /** Writes an event may fail (not counting an unreachable target) before it is parked. */
  get maxAttempts(): number {
    const b = this.o.sink.base as ResolvedSink['base'] & { max_attempts?: number };
    return b.max_attempts ?? b.retry.attempts;
  }

  /**
   * What bisection left, in stream order. Each event the target rejected on its own gets its
   * last write now, after the bisection (the target may have recovered meanwhile: an event
   * that goes through now was never poison; bisection gave it `max_attempts - 1`), and parks if
   * that fails too; every later event of a parked key parks behind it, and one set aside
   * behind an event that went through is written in its place.
   */
  private async settle(failed: Failure[], behind: SinkEvent[], wctx: WriteContext): Promise<void> {
    const all: { ev: SinkEvent; f?: Failure }[] = [...failed.map((f) => ({ ev: f.ev, f })), ...behind.map((ev) => ({ ev }))];
    all.sort((a, b) => (a.ev.fence < b.ev.fence ? -1 : a.ev.fence > b.ev.fence ? 1 : 0));
    const parked = new Map<string, { first: string; count: number }>();
    const out: StoredDeadLetter[] = [];
    const one = { ...wctx, commit: null };
    for (const { ev, f } of all) {
      const k = keyOf(ev);
      const h = k === null ? undefined : (this.held.get(k) ?? parked.get(k));
      if (h) {
        out.push(this.heldLetter(ev, h.first));
        continue;
      }
      const tally = { n: 0 };
      const done = f && (f.err instanceof PoisonEventError || f.attempts >= this.maxAttempts);
      const err = done ? f.err : await this.writeWithRetries([ev], one, f ? 1 : this.maxAttempts, tally);
      if (!err) continue;
      out.push(this.letter(ev, err, (f?.attempts ?? 0) + tally.n));
      if (k !== null) parked.set(k, { first: ev.fence, count: 1 });
    }
    await this.park(out);
  }

  /** Try a write; retryable errors forever, others `attempts` times (counted in `tally`). Returns the last error, or null. */
  private async writeWithRetries(events: SinkEvent[], wctx: WriteContext, attempts: number, tally?: { n: number }): Promise<unknown> {
    const { retry } = this.o.sink.base;
    let attempt = 0;
    let transient = 0;
    for (;;) {
      try {
        await this.instance.write(events, wctx);
        this.unreachable = false;
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
          this.unreachable = true;
          this.o.logger.warn({ sink: this.name, attempt: transient, err }, `sink ${this.name}: target unavailable, retrying`);
          await sleep(backoffDelay(transient, retry.backoff_ms, retry.max_backoff_ms), wctx.signal);
          continue;
        }
        attempt++;
        if (tally) tally.n++;
        if (err instanceof PoisonEventError || attempt >= attempts) {
          this.lastWriteOk = false;
          return err;
        }
        await sleep(backoffDelay(attempt, retry.backoff_ms, retry.max_backoff_ms), wctx.signal);
      }
    }
  }

  /**
   * Bisect `events`, writing what can be written and collecting what cannot. Once an event
   * fails on its own, later events of its key are not written but set aside (`behind`), so
   * nothing of that key overtakes it.
   */
  private async isolate(events: SinkEvent[], wctx: WriteContext, failed: Failure[], state: { succeeded: boolean; broken: boolean }, blocked: Map<string, { first: string; count: number }>, behind: SinkEvent[]): Promise<void> {
    if (state.broken) return;
    if (events.length === 1) {
      const tally = { n: 0 };
      // The last of its max_attempts comes after the bisection (settle).
      const err = await this.writeWithRetries(events, wctx, Math.max(1, this.maxAttempts - 1), tally);
      if (!err) {
        state.succeeded = true;
        return;
      }
      failed.push({ ev: events[0]!, err, attempts: tally.n });
      const k = keyOf(events[0]!);
      if (k !== null) blocked.set(k, { first: events[0]!.fence, count: 1 });
      // Two events failing on their own with nothing written at all: the target is broken,
      // not the data. Stop bisecting (it would cost a write per event) and say so.
      if (!state.succeeded && !(err instanceof PoisonEventError) && failed.length >= 2) state.broken = true;
      return;
    }
    const mid = events.length >> 1;
    for (let half of [events.slice(0, mid), events.slice(mid)]) {
      if (blocked.size) {
        const h = half.slice();
        behind.push(...this.divert(h, blocked));
        half = h;
        if (!half.length) continue;
      }
      const err = await this.writeWithRetries(half, { ...wctx, commit: null }, 1);
      if (!err) state.succeeded = true;
      else await this.isolate(half, wctx, failed, state, blocked, behind);
      if (state.broken) return;
    }
  }

  /** Remove from `events` (in place) those whose key is in `keys` (of `tables`, when given), and return them. */
  private divert(events: SinkEvent[], keys: Map<string, unknown>, tables?: Set<string>): SinkEvent[] {
    const out: SinkEvent[] = [];
    let j = 0;
    for (const ev of events) {
      const k = tables && !tables.has(ev.table) ? null : keyOf(ev);
      if (k !== null && keys.has(k)) out.push(ev);
      else events[j++] = ev;
    }
    events.length = j;
    return out;
  }

  /** A dead letter for `ev`, which failed with `err` after `attempts` writes. */
  private letter(ev: SinkEvent, err: unknown, attempts: number): StoredDeadLetter {
    const now = new Date().toISOString();
    const code = (err as { code?: unknown })?.code;
    const offset = (ev as { offset?: number }).offset;
    return {
      id: ev.fence,
      pipeline: this.o.pipeline,
      sink: this.name,
      table: ev.table,
      key: ev.event.key ?? null,
      position: ev.position,
      index: ev.index,
      ...(typeof offset === 'number' && offset >= 0 ? { offset } : {}),
      attempts,
      error: { ...(typeof code === 'string' ? { code } : {}), message: errorMessage(err) },
      first_failed_at: now,
      last_failed_at: now,
      envelope: ev.json,
    };
  }

  /** A dead letter for an event parked behind an earlier one of its key. */
  private heldLetter(ev: SinkEvent, first?: string): StoredDeadLetter {
    const k = keyOf(ev);
    const f = first ?? (k === null ? undefined : this.held.get(k)?.first) ?? '?';
    return this.letter(ev, new TributaryError(ErrorCodes.DLQ_HELD, `parked behind dead letter ${f} of the same key, to keep the key's changes in order`), 0);
  }

  /**
   * Put dead letters in the store, durably, before the checkpoint can move past them (the
   * caller persists after this resolves). Under `dead_letter.policy: stop` the first one stops
   * the pipeline instead.
   */
  private async park(items: StoredDeadLetter[]): Promise<void> {
    if (!items.length) return;
    const first = items[0]!;
    if (this.o.sink.base.dead_letter.policy === 'stop') {
      throw new TributaryError(ErrorCodes.DEAD_LETTER_STOP, `sink ${this.name} rejected an event of ${first.table} at ${first.position}: ${first.error.message}`, {
        fix: 'fix the event or the target, or set dead_letter.policy: park to set such events aside',
      });
    }
    await this.deadLetters.put(items);
    const fresh = items.filter((i) => i.error.code !== ErrorCodes.DLQ_HELD);
    this.track(items, true);
    this.deadLettered += items.length;
    this.o.metrics.inc('tributary_dead_letter_total', items.length, this.labels);
    if (fresh.length) {
      const f = fresh[0]!;
      this.o.logger.warn(
        { sink: this.name, table: f.table, position: f.position, id: f.id, parked: items.length, attempts: f.attempts, depth: this.depth },
        `sink ${this.name} rejected ${fresh.length === 1 ? 'an event' : `${fresh.length} events`}; parked in the dead-letter store (tributary dlq list --sink ${this.name}): ${f.error.message}`,
      );
    }
    const heldCount = items.length - fresh.length;
    if (heldCount) this.o.logger.info({ sink: this.name, parked: heldCount, depth: this.depth }, `sink ${this.name}: ${heldCount} later event(s) of keys with a dead letter parked behind it (per-key order)`);
  }

  /** Count dead letters into `held` and the depth gauge: all of them (`add` false), or newly parked ones. */
  private track(items: StoredDeadLetter[], add = false): void {
    if (!add) {
      this.held.clear();
      this.heldTables.clear();
      this.parkedIds.clear();
      this.depth = 0;
    }
    for (const it of items) {
      if (!this.parkedIds.has(it.id)) this.depth++;
      this.parkedIds.add(it.id);
      const k = itemKey(it);
      if (k === null) continue;
      this.heldTables.add(it.table);
      const h = this.held.get(k);
      if (h) h.count++;
      else this.held.set(k, { first: it.id, count: 1 });
    }
    this.o.metrics.set('tributary_dead_letter_depth', this.depth, this.labels);
  }

  /**
   * Run `fn` alone: batch delivery and dead-letter retries and discards never overlap, so a
   * retried event cannot interleave with a batch, and a key's held events are either parked
   * (batch first) or delivered after its retried ones (retry first).
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.gate.then(fn, fn);
    this.gate = p.catch(() => undefined);
    return p;
  }

  /**
   * Retry dead letters (`ids`, or all) through the sink's normal write path, in stream order,
   * each one alone. One that fails again stays parked with its attempts incremented and its
   * new error, and the later ones of its key stay parked behind it. Delivered ones leave the
   * store once the sink's checkpoint state covering them is stored (the jsonl sink's offset).
   * Refuses (TRB3033) to deliver a later dead letter of a key while an earlier one stays.
   */
  retryDeadLetters(sel: { ids?: string[]; all?: boolean }): Promise<{ retried: number; delivered: number; parked: number }> {
    this.refuseWhileUnreachable('retried');
    return this.exclusive(async () => {
      const items = await this.deadLetters.list();
      const chosen = selectLetters(items, sel, this.name);
      const ids = new Set(chosen.map((c) => c.id));
      const firstLeft = new Map<string, string>();
      for (const it of items) {
        const k = itemKey(it);
        if (k === null) continue;
        if (!ids.has(it.id)) {
          if (!firstLeft.has(k)) firstLeft.set(k, it.id);
        } else if (firstLeft.has(k)) {
          throw new TributaryError(ErrorCodes.DLQ_ORDER, `dead letter ${it.id} of sink ${this.name} comes after ${firstLeft.get(k)} of the same key (${it.table} ${JSON.stringify(it.key)}), which stays parked: delivering it first would apply the key's changes out of order`, {
            fix: `retry ${firstLeft.get(k)} too (or --all), or discard it first`,
          });
        }
      }
      const delivered: StoredDeadLetter[] = [];
      const again: StoredDeadLetter[] = [];
      const blocked = new Set<string>();
      for (const it of chosen) {
        const k = itemKey(it);
        if (k !== null && blocked.has(k)) continue;
        try {
          await this.instance.write([this.eventOf(it)], { signal: this.ac.signal, commit: null });
          // The target took a write: a lone event it rejects next is poison, not an outage
          // (without this, the failed write before the retry made the next poison event
          // look like a broken target, retried for ever instead of parked).
          this.lastWriteOk = true;
          this.o.metrics.inc('tributary_events_out_total', 1, this.labels);
          delivered.push(it);
        } catch (err) {
          if (this.ac.signal.aborted) throw err;
          const code = (err as { code?: unknown })?.code;
          again.push({ ...it, attempts: it.attempts + 1, error: { ...(typeof code === 'string' ? { code } : {}), message: errorMessage(err) }, last_failed_at: new Date().toISOString() });
          if (k !== null) blocked.add(k);
        }
      }
      if (delivered.length) {
        await this.recheckpoint();
        await this.deadLetters.remove(delivered, { outcome: 'delivered', at: new Date().toISOString() });
      }
      if (again.length) await this.deadLetters.put(again);
      this.track(await this.deadLetters.list());
      const r = { retried: chosen.length, delivered: delivered.length, parked: chosen.length - delivered.length };
      this.o.logger.info({ sink: this.name, ...r, depth: this.depth }, `sink ${this.name}: retried ${r.retried} dead letter(s): ${r.delivered} delivered, ${r.parked} still parked${again.length ? ` (${again[0]!.error.message})` : ''}`);
      return r;
    });
  }

  /** Discard dead letters (`ids`, or all), recording `reason` in the sink's dead-letter history and the log. */
  discardDeadLetters(sel: { ids?: string[]; all?: boolean }, reason: string): Promise<{ discarded: number }> {
    this.refuseWhileUnreachable('discarded');
    return this.exclusive(async () => {
      const chosen = selectLetters(await this.deadLetters.list(), sel, this.name);
      await this.deadLetters.remove(chosen, { outcome: 'discarded', reason, at: new Date().toISOString() });
      this.track(await this.deadLetters.list());
      this.o.logger.warn({ sink: this.name, discarded: chosen.length, ids: chosen.slice(0, 20).map((c) => c.id), reason, depth: this.depth }, `sink ${this.name}: discarded ${chosen.length} dead letter(s): ${reason}`);
      return { discarded: chosen.length };
    });
  }

  /**
   * While the sink retries a batch against an unreachable target, a retry or discard would
   * wait behind it for as long as the target stays away: refuse at once instead (TRB3032).
   */
  private refuseWhileUnreachable(what: string): void {
    if (!this.unreachable) return;
    throw new TributaryError(ErrorCodes.DLQ_LIVE, `sink ${this.name} cannot reach its target and is retrying a batch; its dead letters cannot be ${what} until that batch goes through`, {
      fix: 'wait until the target is back (the sink logs it and its lag falls), or stop the pipeline and run tributary dlq again',
    });
  }

  /** A stored dead letter as the event the sink receives. */
  private eventOf(it: StoredDeadLetter): SinkEvent {
    let ts = 0;
    try {
      ts = (JSON.parse(it.envelope) as ChangeEvent).source?.ts_ms ?? 0;
    } catch {
      /* the envelope is what the source wrote; a sink will say if it cannot read it */
    }
    return new StreamEvent(new SerializedChangeEvent(it.envelope, it.table, ts), it.table, this.o.source.parsePosition(it.position), it.index, it.envelope, it.envelope.length);
  }

  /**
   * After a retry wrote events outside a batch: take the sink's checkpoint state again at the
   * same position (the jsonl sink's byte offset now covers the retried lines and is fsynced)
   * and store it before the dead letters leave the store, so a crash cannot truncate them away.
   */
  private async recheckpoint(): Promise<void> {
    const rec = this.lastRec;
    if (!rec || !this.instance.checkpoint) return;
    const state = await this.instance.checkpoint(rec.position);
    const problem = state === undefined ? null : plainJsonProblem(state);
    if (problem) throw new TributaryError(ErrorCodes.SINK_STATE_NOT_JSON, `sink ${this.name} returned checkpoint state that is not plain JSON: ${problem}`, { fix: 'make the sink\'s checkpoint() return plain JSON' });
    const next = { commit: this.nextSave?.commit ?? null, rec: { ...rec, ...(state !== undefined ? { state } : {}), at: Date.now() } };
    this.nextSave = next;
    this.lastRec = next.rec;
    const saving = (this.saving ??= this.saveLoop());
    await saving;
    if (this.saveError) throw this.saveError;
  }

  /**
   * Earlier versions parked events in `deadletter.<sink>.jsonl` (or `dead_letter.path`): import
   * them into the store once, then rename the file `*.imported` (kept, not deleted).
   */
  private async importLegacyDeadLetters(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.legacyPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const items: StoredDeadLetter[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let old: { at?: string; position: string; index: number; error?: { message?: string; code?: string | null }; event: ChangeEvent };
      try {
        old = JSON.parse(line);
      } catch {
        continue; // a torn last line: that event was never parked (it was retried after restart)
      }
      const at = old.at ?? new Date().toISOString();
      const table = qualifiedTable(old.event);
      items.push({
        id: this.o.source.parsePosition(old.position).fence() + old.index.toString(16).padStart(8, '0'),
        pipeline: this.o.pipeline,
        sink: this.name,
        table,
        key: old.event.key ?? null,
        position: old.position,
        index: old.index,
        attempts: 1,
        error: { ...(old.error?.code ? { code: old.error.code } : {}), message: old.error?.message ?? 'unknown (imported from the dead-letter file)' },
        first_failed_at: at,
        last_failed_at: at,
        envelope: JSON.stringify(old.event),
      });
    }
    await this.deadLetters.put(items);
    await rename(this.legacyPath, `${this.legacyPath}.imported`);
    this.o.logger.warn({ sink: this.name, file: this.legacyPath, imported: items.length }, `sink ${this.name}: imported ${items.length} dead letter(s) from ${this.legacyPath} into the dead-letter store (the file is kept as ${this.legacyPath}.imported); see tributary dlq list`);
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

/** A failed write of one event: its error and how many times it failed. */
interface Failure {
  ev: SinkEvent;
  err: unknown;
  attempts: number;
}

/** The per-key identity events are held by: table and key JSON; null for events without a key. */
function keyOf(ev: SinkEvent): string | null {
  const key = ev.event.key;
  return key === null || key === undefined ? null : `${ev.table} ${JSON.stringify(key)}`;
}

function itemKey(it: StoredDeadLetter): string | null {
  return it.key === null || it.key === undefined ? null : `${it.table} ${JSON.stringify(it.key)}`;
}

/** The dead letters `sel` names (all, or by id, in store order); TRB3031 for an id the store lacks. */
export function selectLetters(items: StoredDeadLetter[], sel: { ids?: string[]; all?: boolean }, sink: string): StoredDeadLetter[] {
  if (sel.all) return items;
  const want = new Set(sel.ids ?? []);
  const missing = [...want].filter((id) => !items.some((i) => i.id === id));
  if (missing.length) {
    throw new TributaryError(ErrorCodes.DLQ_UNKNOWN_ID, `sink ${sink} has no dead letter ${missing.join(', ')}`, { fix: `list them with tributary dlq list --sink ${sink}` });
  }
  return items.filter((i) => want.has(i.id));
}
