import type { SinkCheckpointRecord } from '../state/store.js';
import type { SegmentLog } from '../log/segment-log.js';
import { committedEnd, type LogView } from '../log/view.js';

/** How far a consumer group is behind the end of the committed history. */
export interface Lag {
  /** Log entries (events and commit markers) from its offset to the end. */
  events: number;
  /** Bytes of log from its offset to the end (to within one index interval, 4 KiB). */
  bytes: number;
  /** Seconds since the source committed the first transaction it has not read (0 when caught up). */
  seconds: number;
}

/** One sink as `log info` shows it. */
export interface SinkLogInfo {
  name: string;
  /** Its committed offset (where it reads on), or null before its first commit on the log. */
  offset: number | null;
  /** The last transaction durable in it (the source's serialized position). */
  position: string | null;
  committedAt: string | null;
  /** Rewound to `earliest` past retention: it reads the compacted state first. */
  rebuild: boolean;
  lag: Lag;
}

/**
 * What `tributary log info`, `GET /log` and `/status` report. Field names are an API: the
 * console reads them.
 */
export interface LogInfo {
  dir: string;
  offsets: {
    /** First retained offset. */
    first: number;
    /** Last durable record, or null when the log is empty. */
    last: number | null;
    /** Offset after the last durable record. */
    durableEnd: number;
    /** Offset after the last durable commit (records past it belong to a transaction being appended). */
    committedEnd: number;
  };
  /** Source commit times of the first and last transactions in the log (ISO-8601). */
  times: { firstCommit: string | null; lastCommit: string | null };
  /** The last durable transaction's position and where the source resumes after it. */
  lastCommit: { offset: number; position: string; resume: string } | null;
  bytes: number;
  segments: number;
  /**
   * The retention horizon: the compacted state stands for everything before `offset` (each
   * key's latest row), up to commit time `time`. Null while retention has removed nothing,
   * or when compaction is off.
   */
  horizon: { offset: number; time: string | null; records: number } | null;
  sinks: SinkLogInfo[];
}

/** A sink of the config and what the state store holds for it. */
export interface SinkRecord {
  name: string;
  start: 'earliest' | 'latest';
  record: SinkCheckpointRecord | undefined;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined || !Number.isFinite(ms) || ms <= 0 ? null : new Date(ms).toISOString());

/** The log's facts and each sink's offset and lag. */
export async function logInfo(view: LogView, sinks: SinkRecord[], now = Date.now()): Promise<LogInfo> {
  const log = view.log;
  const c = view.compacted;
  const last = log.lastCommit;
  const out: LogInfo = {
    dir: log.dir,
    offsets: { first: log.start, last: log.durableEnd > log.start ? log.durableEnd - 1 : null, durableEnd: log.durableEnd, committedEnd: committedEnd(log) },
    times: { firstCommit: iso(await firstCommitTime(log)), lastCommit: iso(last?.tsMs) },
    lastCommit: last ? { offset: last.offset, position: last.txn, resume: last.resume } : null,
    bytes: log.bytes,
    segments: log.segmentList.length,
    horizon: c ? { offset: c.horizon, time: iso(c.horizonTs), records: c.records } : null,
    sinks: [],
  };
  for (const s of sinks) {
    const rec = s.record;
    const from = effectiveOffset(log, s.start, rec);
    out.sinks.push({
      name: s.name,
      offset: rec?.offset ?? null,
      position: rec?.position ?? null,
      committedAt: iso(rec?.at),
      rebuild: rec?.rebuild === true,
      lag: await lagOf(log, from, now),
    });
  }
  return out;
}

/** Where a sink reads on: its committed offset, or where a sink without one starts. */
export function effectiveOffset(log: SegmentLog, start: 'earliest' | 'latest', rec: SinkCheckpointRecord | undefined): number {
  if (rec?.rebuild) return log.start;
  if (rec?.offset !== undefined) return rec.offset;
  return startOffset(log, start, rec !== undefined);
}

/**
 * Where a sink with no committed offset starts: at the start of the log for `earliest`, or
 * when it holds a checkpoint from before the log (it skips what it holds); else at the end.
 */
export function startOffset(log: SegmentLog, start: 'earliest' | 'latest', checkpointed: boolean): number {
  return checkpointed || start === 'earliest' ? log.start : committedEnd(log);
}

/** A consumer at `offset`: entries, bytes and seconds behind the committed end. */
export async function lagOf(log: SegmentLog, offset: number, now = Date.now()): Promise<Lag> {
  const end = committedEnd(log);
  if (offset >= end) return { events: 0, bytes: 0, seconds: 0 };
  const at = Math.max(offset, log.start);
  const rec = await log.readRecord(at);
  const ts = rec ? rec.tsMs : null;
  return { events: end - offset, bytes: bytesFrom(log, offset), seconds: ts ? Math.max(0, (now - ts) / 1000) : 0 };
}

/** Bytes of log from `offset` to the durable end (from the indexed batch at or before it). */
export function bytesFrom(log: SegmentLog, offset: number): number {
  if (offset <= log.start) return log.bytes;
  let n = 0;
  for (const seg of log.segmentList) {
    if (seg.next <= offset) continue;
    n += seg.base >= offset ? seg.size : seg.size - seg.positionFor(offset);
  }
  return n;
}

/** The first commit time, remembered while the log's start does not move (it costs a read). */
const firstTimes = new WeakMap<SegmentLog, { start: number; ts: number | null }>();
export async function firstCommitTime(log: SegmentLog): Promise<number | null> {
  const c = firstTimes.get(log);
  if (c && c.start === log.start && c.ts !== null) return c.ts;
  const ts = await log.firstCommitTime();
  firstTimes.set(log, { start: log.start, ts });
  return ts;
}
