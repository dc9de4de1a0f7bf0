import { ErrorCodes, TributaryError } from '../core/errors.js';
import type { SegmentLog } from '../log/segment-log.js';
import { commitBefore, parseTarget, resolveTarget, transactionAt } from '../log/targets.js';
import { committedEnd, type LogView } from '../log/view.js';
import type { SinkCheckpointRecord } from '../state/store.js';
import type { PositionSupport } from './positions.js';
import { tableMatcher } from './table-filter.js';

/** The sink a rewind moves, as the config names it. */
export interface RewindSink {
  name: string;
  tables?: string[];
  exclude?: string[];
}

/**
 * A rewind: where the sink reads on, and the checkpoint record that makes it so. Field names
 * are an API (`POST /rewind`, `tributary rewind --json`).
 */
export interface RewindPlan {
  pipeline: string;
  sink: string;
  /** The target as given. */
  to: string;
  dryRun: boolean;
  /** The offset the sink reads on from: the first offset of a transaction. */
  offset: number;
  /** It reads the compacted state first (`earliest` on a log that retention trimmed). */
  rebuild: boolean;
  /** Its committed offset before the rewind, or null when it had none. */
  previousOffset: number | null;
  /**
   * What it receives again: events (those its `tables` let through) and transactions between
   * `offset` and `previousOffset`, and rows of the compacted state when it rebuilds. Null
   * when not counted.
   */
  events: number | null;
  transactions: number | null;
  compactedRows: number | null;
  /** Moving forward: events and transactions it will never receive. */
  skippedEvents: number | null;
  skippedTransactions: number | null;
  /** The stored record's position: the transaction before `offset`. */
  position: string;
}

/**
 * Plan a rewind of `sink` to `to`. The new checkpoint record keeps the sink's own `state`
 * (the jsonl sink's byte offset: it appends what it receives again instead of truncating),
 * sets the committed offset to the transaction start `to` resolves to, and sets the position
 * (and resume) to the transaction before it, so the runner's "already durable" filter lets
 * the replay through.
 *
 * Refuses (TRB5010) a target before the start of the log, other than `earliest` (which is the
 * compacted state, then the log), and a log with nothing committed.
 */
export async function planRewind(
  view: LogView,
  positions: PositionSupport,
  o: { pipeline: string; sink: RewindSink; stored: SinkCheckpointRecord | undefined; to: string; dryRun: boolean; count: boolean },
): Promise<{ plan: RewindPlan; record: SinkCheckpointRecord }> {
  const log = view.log;
  const target = parseTarget(o.to, positions, '--to');
  if (!log.lastCommit && !view.compacted) {
    throw new TributaryError(ErrorCodes.LOG_TARGET, `the log of pipeline ${o.pipeline} holds no committed transaction yet: there is nothing to rewind sink ${o.sink.name} to`, {
      fix: 'run the pipeline until it has streamed something',
    });
  }
  const r = await resolveTarget(view, target);
  if (r.beforeStart && target.kind !== 'earliest') {
    throw new TributaryError(ErrorCodes.LOG_TARGET, `--to ${o.to} is before the start of the log of pipeline ${o.pipeline} (offset ${log.start}): retention removed part of what it asks to re-read`, {
      fix: `rewind to earliest (the compacted state${view.compacted ? '' : ', when compaction is on'}, then the log), or to a time, offset or position at or after the log's start`,
    });
  }
  const c = view.compacted;
  const rebuild = target.kind === 'earliest' && log.start > 0 && c !== null && c.horizon >= log.start;
  // Rebuilding, the sink receives the compacted rows, whose transactions are older than any
  // in the log: its position must be below them all.
  const before = rebuild ? null : await commitBefore(view, r.offset);
  const firstAfter = before ? null : (await transactionAt(log, r.offset)).commit;
  const position = before?.txn ?? positions.zero;
  const record: SinkCheckpointRecord = {
    position,
    // Where the source would resume for this sink; only read when the log is empty.
    resume: before?.resume ?? firstAfter?.txn ?? o.stored?.resume ?? positions.zero,
    ...(o.stored?.state !== undefined ? { state: o.stored.state } : {}),
    at: Date.now(),
    offset: r.offset,
    ...(rebuild ? { rebuild: true } : {}),
  };
  const previousOffset = o.stored?.offset ?? null;
  const plan: RewindPlan = {
    pipeline: o.pipeline,
    sink: o.sink.name,
    to: o.to,
    dryRun: o.dryRun,
    offset: r.offset,
    rebuild,
    previousOffset,
    events: null,
    transactions: null,
    compactedRows: null,
    skippedEvents: null,
    skippedTransactions: null,
    position,
  };
  if (o.count) await countRewind(view, o.sink, plan);
  return { plan, record };
}

/** Fill in what a plan re-delivers (or skips): a read of the range between the two offsets. */
export async function countRewind(view: LogView, sink: RewindSink, plan: RewindPlan): Promise<void> {
  const match = tableMatcher(sink.tables, sink.exclude);
  const prev = plan.previousOffset ?? plan.offset;
  const again = await countRange(view.log, plan.offset, prev, match);
  plan.events = again.events;
  plan.transactions = again.transactions;
  plan.compactedRows = plan.rebuild && view.compacted ? (await countRange(view.compacted.log, 0, Infinity, match)).events : 0;
  const skipped = await countRange(view.log, prev, plan.offset, match);
  plan.skippedEvents = skipped.events;
  plan.skippedTransactions = skipped.transactions;
}

/** Events whose table `match` accepts, and commits, in [from, to) of the committed history. */
async function countRange(log: SegmentLog, from: number, to: number, match: (t: string) => boolean): Promise<{ events: number; transactions: number }> {
  let events = 0;
  let transactions = 0;
  const end = Math.min(to, committedEnd(log));
  for (let at = Math.max(from, log.start); at < end; ) {
    const r = await log.read(at, Math.min(8192, end - at), 4 << 20);
    if (!r.records.length) break;
    for (const rec of r.records) {
      if (rec.offset >= end) break;
      if (rec.kind === 'commit') transactions++;
      else if (match(rec.table)) events++;
    }
    at = r.next;
  }
  return { events, transactions };
}
