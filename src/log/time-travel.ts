import { ConfigError, ErrorCodes, TributaryError } from '../core/errors.js';
import type { DecodedEvent } from './format.js';
import { RunKeys, tableHash, type KeyEntry, type KeyQueries } from './key-index.js';
import { mergeKeys, type RankedEntry } from './key-merge.js';
import { wholeRow } from './row-image.js';
import type { SegmentLog } from './segment-log.js';
import type { CompactedState } from './compaction.js';

/** Winners read per round of a whole-table answer: bounds memory whatever the table's size. */
const CHUNK = 20_000;

/**
 * "The rows as they were at time T": the result of every transaction committed at or before
 * T, answered from the key index (a key's versions, not the whole log) and, for history that
 * retention removed, from the compacted state.
 */
export class TimeTravel {
  constructor(
    private readonly log: SegmentLog,
    private readonly compacted: CompactedState | null,
  ) {}

  /**
   * The log offset that ends "the state at `ts`" (exclusive), after checking that the
   * retained history covers `ts`. Before the start of the history it says so, with a coded
   * error, rather than guess.
   */
  async cutAt(ts: number): Promise<number> {
    const log = this.log;
    if (log.start > 0) {
      const c = this.compacted;
      if (!c || c.horizon < log.start) {
        throw new TributaryError(ErrorCodes.LOG_BEFORE_HISTORY, `the log starts at offset ${log.start}: retention removed what came before, and there is no compacted state to stand in for it`, {
          fix: 'turn on stream.compaction (it keeps the latest row of every key beyond retention), or raise stream.retention',
        });
      }
      if (ts < c.horizonTs) {
        throw new TributaryError(ErrorCodes.LOG_BEFORE_HISTORY, `${new Date(ts).toISOString()} is before the start of the retained history (${new Date(c.horizonTs).toISOString()}); only the latest row per key is kept from before it`, {
          fix: `ask for a time at or after ${new Date(c.horizonTs).toISOString()}`,
        });
      }
    } else {
      const first = await log.firstCommitTime();
      if (first === null || ts < first) {
        throw new TributaryError(ErrorCodes.LOG_BEFORE_HISTORY, first === null ? 'the log holds no committed transaction yet' : `${new Date(ts).toISOString()} is before the first transaction in the log (${new Date(first).toISOString()})`, {
          fix: first === null ? 'wait for the pipeline to commit something' : `ask for a time at or after ${new Date(first).toISOString()}`,
        });
      }
    }
    return log.offsetAfterTime(ts);
  }

  /** Key-index sources in rank order: the compacted state's segments, then the log's. */
  private sources(cut: number): { keys: KeyQueries; compacted: boolean }[] {
    const out: { keys: KeyQueries; compacted: boolean }[] = [];
    const add = (log: SegmentLog, compacted: boolean, below: number) => {
      for (const seg of log.segmentList) {
        if (seg.base >= below) break;
        if (seg.keys) out.push({ keys: seg.keys, compacted });
        else out.push({ keys: new RunKeys(log.activeKeys(), Math.min(below, log.durableEnd)), compacted });
      }
    };
    if (this.compacted) add(this.compacted.log, true, Infinity);
    add(this.log, false, cut);
    return out;
  }

  /**
   * The row of `table` with key `keyJson` (the key as events show it, columns in the
   * table's key order) as it was before log offset `cut`: its JSON bytes, or null when the
   * row did not exist.
   */
  async rowAt(table: string, keyJson: Buffer, cut: number): Promise<Buffer | null> {
    const th = tableHash(table);
    const key = this.canonicalKey(th, keyJson);
    const sources = this.sources(cut);
    const versions: RankedEntry[] = [];
    let truncatedAt = -1;
    sources.forEach((s, i) => {
      for (const e of s.keys.lookup(th, key)) if (s.compacted || e.offset < cut) versions.push({ ...e, source: i });
      if (!s.compacted) for (const t of s.keys.truncates(th)) if (t.offset < cut && t.offset > truncatedAt) truncatedAt = t.offset;
    });
    return this.resolve(versions, truncatedAt, sources);
  }

  /**
   * Every row of `table` as it was before offset `cut`, as JSON bytes. Streams in bounded
   * memory: the key index is merged one key at a time, and rows are read in rounds of
   * {@link CHUNK}, in log order within a round. Rows come in no particular order.
   */
  async *tableAt(table: string, cut: number): AsyncGenerator<Buffer> {
    const th = tableHash(table);
    const sources = this.sources(cut);
    let truncatedAt = -1;
    for (const s of sources) if (!s.compacted) for (const t of s.keys.truncates(th)) if (t.offset < cut && t.offset > truncatedAt) truncatedAt = t.offset;
    const streams = sources.map((s) => filterEntries(s.keys.ofTable(th), s.compacted ? Infinity : cut));
    let round: RankedEntry[][] = [];
    const flush = async function* (this: TimeTravel): AsyncGenerator<Buffer> {
      // Read the winners in (source, offset) order: sequential reads of each segment.
      const order = round.map((v, i) => ({ w: v[v.length - 1]!, i })).sort((a, b) => a.w.source - b.w.source || a.w.offset - b.w.offset);
      for (const { i } of order) {
        const row = await this.resolve(round[i]!, truncatedAt, sources);
        if (row) yield row;
      }
      round = [];
    }.bind(this);
    for (const g of mergeKeys(streams)) {
      if (!g.key.length) continue; // truncates: handled above
      round.push(g.entries);
      if (round.length >= CHUNK) yield* flush();
    }
    if (round.length) yield* flush();
  }

  /**
   * Every event of one key of `table` in the log from offset `from` to `to` (exclusive), in
   * log order, found through the key index: the key's own versions are read, not the log.
   * Memory holds one segment's versions of the key at a time.
   */
  async *keyHistory(table: string, keyJson: Buffer, from: number, to: number): AsyncGenerator<DecodedEvent> {
    const log = this.log;
    const th = tableHash(table);
    const key = this.canonicalKey(th, keyJson);
    for (const seg of log.segmentList) {
      if (seg.base >= to) break;
      if (seg.next <= from) continue;
      const keys = seg.keys ?? new RunKeys(log.activeKeys(), Math.min(to, log.durableEnd));
      const hits = keys.lookup(th, key).filter((e) => e.offset >= from && e.offset < to);
      hits.sort((a, b) => a.offset - b.offset);
      for (const e of hits) yield await this.readFrom(log, e);
    }
  }

  /** The row that a key's versions amount to, given the latest truncate. */
  private async resolve(versions: RankedEntry[], truncatedAt: number, sources: { compacted: boolean }[]): Promise<Buffer | null> {
    if (!versions.length) return null;
    versions.sort((a, b) => a.source - b.source || a.offset - b.offset);
    // A truncate removes every version before it, and all of the compacted state's.
    const alive = (e: RankedEntry) => truncatedAt < 0 || (!sources[e.source]!.compacted && e.offset > truncatedAt);
    if (!alive(versions[versions.length - 1]!)) return null;
    const r = await wholeRow(versions, (e) => this.read(e, sources), alive);
    return r ? Buffer.from(r.row) : null;
  }

  private read(e: RankedEntry, sources: { compacted: boolean }[]): Promise<DecodedEvent> {
    return this.readFrom(sources[e.source]!.compacted ? this.compacted!.log : this.log, e);
  }

  private async readFrom(log: SegmentLog, e: KeyEntry): Promise<DecodedEvent> {
    const r = await log.readRecord(e.offset);
    // The index is checked against the record it points at (a lookup does not read the
    // whole index to verify its checksum).
    if (!r || r.kind !== 'event' || (e.key.length > 0 && !r.buf.subarray(r.keyStart, r.keyEnd).equals(e.key))) {
      throw new TributaryError(ErrorCodes.LOG_CORRUPT, `the key index of ${log.dir} points at offset ${e.offset}, which does not hold that key`, {
        fix: 'delete the segment sidecars (*.idx) there: they are rebuilt from the log at the next start',
      });
    }
    return r;
  }

  /**
   * The key bytes as the source writes them: the same columns in the table's key order
   * (taken from a key the index has seen), each value compact JSON. A user may give the
   * columns in any order.
   */
  private canonicalKey(th: number, keyJson: Buffer): Buffer {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(keyJson.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new ConfigError(ErrorCodes.USAGE, `--key is not JSON: ${keyJson.toString('utf8')}`, { fix: 'give the key as events show it, e.g. --key \'{"id":7}\'' });
    }
    const sample = this.sampleKey(th);
    const order = sample ? Object.keys(JSON.parse(sample) as object) : Object.keys(parsed);
    const missing = order.filter((k) => !(k in parsed));
    if (missing.length) {
      throw new ConfigError(ErrorCodes.USAGE, `--key lacks the key column(s) ${missing.join(', ')}`, { fix: `give every key column: ${order.join(', ')}` });
    }
    // Values are copied as the user wrote them, re-serialized compactly (key values are
    // integers within 2^53, strings and booleans: exact through JSON).
    return Buffer.from(`{${order.map((k) => `${JSON.stringify(k)}:${JSON.stringify(parsed[k])}`).join(',')}}`);
  }

  private sampleKey(th: number): string | null {
    const look = (log: SegmentLog): string | null => {
      for (const seg of log.segmentList) {
        const t = seg.tables.get(th);
        if (t?.sampleKey) return t.sampleKey;
      }
      return log.activeKeys().tables.get(th)?.sampleKey ?? null;
    };
    return look(this.log) ?? (this.compacted ? look(this.compacted.log) : null);
  }
}

function* filterEntries(it: Iterable<KeyEntry>, below: number): Generator<KeyEntry> {
  for (const e of it) if (e.offset < below) yield e;
}
