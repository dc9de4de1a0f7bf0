import { ErrorCodes, TributaryError } from '../core/errors.js';
import type { PositionTarget, TxnBounds } from '../core/source.js';
import type { SegmentLog } from './segment-log.js';
import { scanSegment, type CommitInfo } from './segment.js';
import { committedEnd, type LogView } from './view.js';

/**
 * A place in the log as a user names it (`--from`, `--to`, `rewind --to`, `?from=`):
 * `earliest`, `latest`, an ISO-8601 time (a source commit time), a log offset, or a source
 * position in the source's own form.
 */
export type LogTarget =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'time'; ts: number }
  | { kind: 'offset'; offset: number }
  | { kind: 'position'; text: string; after: PositionTarget };

/** What reads a source's positions (runtime/positions.ts), as far as targets need it. */
export interface TargetPositions {
  target(text: string): PositionTarget | null;
  forms: string;
}

/** `2024-01-15`, `2024-01-15T10:45:00Z`, `2024-01-15 10:45:00.123+02:00`, … */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Read a target. Throws TRB5005 (naming the forms it takes) for anything else. A date-shaped
 * text is a time: a MariaDB GTID position that looks like a date is written `gtid:…`.
 */
export function parseTarget(text: string, positions: TargetPositions, what = 'the target'): LogTarget {
  const t = text.trim();
  const lower = t.toLowerCase();
  if (lower === 'earliest') return { kind: 'earliest' };
  if (lower === 'latest') return { kind: 'latest' };
  if (/^\d+$/.test(t)) return { kind: 'offset', offset: Number(t) };
  if (ISO_TIME.test(t)) {
    const ts = Date.parse(t);
    if (Number.isFinite(ts)) return { kind: 'time', ts };
  }
  const after = positions.target(t);
  if (after) return { kind: 'position', text: t, after };
  throw new TributaryError(ErrorCodes.LOG_POSITION, `${what} "${text}" is not earliest, latest, an ISO-8601 time, a log offset or a source position`, {
    fix: `give earliest, latest, a time such as 2024-01-15T10:45:00Z (the source commit time), a log offset such as 1200, or a position: ${positions.forms}`,
  });
}

/** An ISO-8601 time (or `now`) as epoch ms; TRB5005 otherwise. */
export function parseTime(text: string, what = '--at'): number {
  const t = text.trim();
  if (t.toLowerCase() === 'now') return Date.now();
  const ts = ISO_TIME.test(t) ? Date.parse(t) : NaN;
  if (!Number.isFinite(ts)) {
    throw new TributaryError(ErrorCodes.LOG_POSITION, `${what} "${text}" is not an ISO-8601 time`, {
      fix: 'give a time such as 2024-01-15T10:45:00Z or 2024-01-15T10:45:00.250+01:00 (without a zone it is local time), or now',
    });
  }
  return ts;
}

/** Where a target falls in the log. */
export interface ResolvedTarget {
  /**
   * The offset a reader starts from (a `--from`) or stops before (a `--to`): the first offset
   * of a transaction (or an exact offset, see resolveTarget), or the end of the committed
   * history.
   */
  offset: number;
  /**
   * Part of what the target asks for is no longer in the log (retention removed it): a time
   * or position before the first retained transaction, or an offset before the start.
   * `earliest` is never before the start: it is the start (and the compacted state).
   */
  beforeStart: boolean;
}

/**
 * Resolve a target against the log's committed history (never past its last durable commit:
 * records of a transaction still being appended are not history yet, and their offsets may
 * be cut at the next recovery). An offset inside a transaction stands for its start (a
 * rewind re-delivers whole transactions), unless `exactOffsets` (a reader paging by offset).
 */
export async function resolveTarget(view: LogView, target: LogTarget, exactOffsets = false): Promise<ResolvedTarget> {
  const log = view.log;
  const end = committedEnd(log);
  switch (target.kind) {
    case 'earliest':
      return { offset: log.start, beforeStart: false };
    case 'latest':
      return { offset: end, beforeStart: false };
    case 'offset':
      if (target.offset < log.start) return { offset: log.start, beforeStart: true };
      if (target.offset >= end) return { offset: end, beforeStart: false };
      return { offset: exactOffsets ? target.offset : (await transactionAt(log, target.offset)).start, beforeStart: false };
    case 'time': {
      const offset = Math.min(await log.offsetAfterTime(target.ts), end);
      return { offset, beforeStart: offset === log.start && (await timeBeforeStart(view, target.ts)) };
    }
    case 'position': {
      const found = await firstTransactionWhere(log, target.after);
      const offset = found ? found.start : end;
      let beforeStart = false;
      if (offset === log.start && log.start > 0) {
        // The log's first transaction is not covered by the position: was the last one
        // retention removed covered by it? The compacted state ends with that one's commit.
        const last = view.compacted?.horizon === log.start ? view.compacted.log.lastCommit : null;
        beforeStart = !last || last.offset < 0 || target.after(last) || !startsTransaction(log);
      }
      return { offset, beforeStart };
    }
  }
}

/** Whether `ts` asks for transactions that retention removed (some were committed after it). */
async function timeBeforeStart(view: LogView, ts: number): Promise<boolean> {
  const log = view.log;
  if (log.start === 0) return false;
  const c = view.compacted;
  if (c && c.horizon === log.start) return ts < c.horizonTs;
  // No record of what was removed: safe only if it all came before the first retained commit.
  const first = await log.firstCommitTime();
  return first === null || ts < first || !startsTransaction(log);
}

/** Whether the first retained record starts a transaction (a segment may roll inside one). */
function startsTransaction(log: SegmentLog): boolean {
  const s = log.segmentList[0];
  return !s || s.timeOffset[0] === s.base;
}

/**
 * The transaction that holds `offset`: its first offset (or the log's start when it began in
 * a removed segment) and its commit, or the commit null when it has none yet.
 */
export async function transactionAt(log: SegmentLog, offset: number): Promise<{ start: number; commit: CommitInfo | null }> {
  const found = await firstTransactionWhere(log, () => true, offset);
  return found ?? { start: committedEnd(log), commit: null };
}

/**
 * The first committed transaction, in log order, for which `test` holds (a monotone test,
 * see {@link PositionTarget}), with `atOrAfter` its commit's offset at least that: its first
 * offset and its commit. Whole segments whose last commit fails the test are skipped, so only
 * the segment holding the answer is read.
 */
export async function firstTransactionWhere(log: SegmentLog, test: (t: TxnBounds) => boolean, atOrAfter = -1): Promise<{ start: number; commit: CommitInfo } | null> {
  const ok = (c: CommitInfo) => c.offset >= atOrAfter && test(c);
  let start = log.start;
  for (const seg of log.segmentList) {
    if (seg.base >= log.durableEnd) break;
    if (!seg.lastCommit) continue; // the segment lies inside one transaction
    if (!ok(seg.lastCommit)) {
      start = seg.lastCommit.offset + 1;
      continue;
    }
    let found: { start: number; commit: CommitInfo } | null = null;
    const r = await scanSegment(seg, { limit: seg.lastCommitEnd }, (b) => {
      for (const rec of b.records) {
        if (rec.kind !== 'commit') continue;
        const c: CommitInfo = { offset: rec.offset, txn: rec.txn, resume: rec.resume, tsMs: rec.tsMs };
        if (ok(c)) {
          found = { start, commit: c };
          return false;
        }
        start = rec.offset + 1;
      }
      return true;
    });
    if (found) return found;
    if (r.stop) throw new TributaryError(ErrorCodes.LOG_CORRUPT, `the log is damaged: segment ${seg.path}, at file position ${r.stop.pos}: ${r.stop.problem}`, { fix: 'see TRB5001 in docs/errors.md' });
  }
  return null;
}

/**
 * The commit just before `start` (a transaction's first offset): where a consumer that is to
 * read on from `start` stands. From the log, or, at the start of a trimmed log, the compacted
 * state's last commit (the last transaction retention removed); null when there is none.
 */
export async function commitBefore(view: LogView, start: number): Promise<CommitInfo | null> {
  const log = view.log;
  if (start > log.start) {
    const r = await log.readRecord(start - 1);
    return r && r.kind === 'commit' ? { offset: r.offset, txn: r.txn, resume: r.resume, tsMs: r.tsMs } : null;
  }
  const c = view.compacted;
  return c && c.horizon === start && c.log.lastCommit ? c.log.lastCommit : null;
}
