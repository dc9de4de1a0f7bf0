import { readFile, readdir, rename, rm, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodedEvent } from './format.js';
import { KIND_DELETE, KIND_TRUNCATE, RunKeys, type KeyQueries } from './key-index.js';
import { mergeKeys, type RankedEntry } from './key-merge.js';
import { envelopeParts, keyRangeOf } from './json-scan.js';
import { wholeRow, type WholeRow } from './row-image.js';
import { SegmentLog, type SegmentLogOptions } from './segment-log.js';
import type { Segment } from './segment.js';
import { syncDir } from './sidecar.js';

/** Winners read and written per round: bounds memory whatever the number of keys. */
const CHUNK = 20_000;
const POINTER = 'compacted.json';
const R_HEAD = Buffer.from('{"op":"r","before":null,"after":');
const KEY = Buffer.from(',"key":');
const SOURCE = Buffer.from(',"source":');

/** The compacted state in force: the latest event of every key from before `horizon`. */
export interface CompactedState {
  gen: number;
  /** A log of its own (offsets 0..n), read-only once written. */
  log: SegmentLog;
  /** The first offset of the main log that the compacted state does not cover. */
  horizon: number;
  /** The latest commit time it covers: "the state at T" is exact only from here on. */
  horizonTs: number;
  /** Keys it holds (rows and tombstones). */
  records: number;
}

interface Pointer {
  gen: number;
  horizon: number;
  horizonTs: number;
  records: number;
}

/**
 * Compaction: what retention removes is first folded into the compacted state, which keeps,
 * per key, only its latest event. A late consumer, or one that fell off the start of the log,
 * reads the compacted state (rows as `r` events, truncates and recent deletes first) and
 * then the log from `horizon`.
 *
 * Each fold writes a new generation (`compacted-<n>/`, a log of its own) from the previous
 * generation and the removed segments, merging their sorted key indexes one key at a time,
 * then switches the `compacted.json` pointer atomically. A crash mid-fold leaves the old
 * generation in force and the segments in place (they are removed only after the switch).
 *
 * Tombstones: a delete or a truncate is kept for `tombstonesMs` after its commit, so that
 * consumers reading the compacted state soon after still see it; then it is dropped. A
 * truncate drops every older row of its table from the compacted state.
 */
export class Compactor {
  state: CompactedState | null = null;

  constructor(
    readonly root: string,
    private readonly opts: { tombstonesMs: number; log?: Partial<SegmentLogOptions>; readOnly?: boolean },
  ) {}

  /** Load the generation in force (if any), and remove leftovers of interrupted folds. */
  async load(): Promise<CompactedState | null> {
    let p: Pointer | null = null;
    try {
      p = JSON.parse(await readFile(join(this.root, POINTER), 'utf8')) as Pointer;
    } catch {
      p = null;
    }
    if (!this.opts.readOnly) {
      for (const name of await readdir(this.root).catch(() => [] as string[])) {
        const m = /^compacted-(\d+)$/.exec(name);
        // Keep the generation in force and the one before it (a reader may be on it).
        if (m && (!p || (Number(m[1]) !== p.gen && Number(m[1]) !== p.gen - 1))) await rm(join(this.root, name), { recursive: true, force: true });
      }
    }
    if (!p) return (this.state = null);
    const log = await SegmentLog.open(join(this.root, `compacted-${p.gen}`), { ...this.opts.log, readOnly: true });
    this.state = { gen: p.gen, log, horizon: p.horizon, horizonTs: p.horizonTs, records: p.records };
    return this.state;
  }

  /**
   * Fold `removed` (the oldest segments of `main`, about to be deleted by retention) into a
   * new generation. Resolves once the new generation is durable and in force.
   */
  async fold(main: SegmentLog, removed: Segment[], now: number): Promise<CompactedState> {
    const prev = this.state;
    const gen = (prev?.gen ?? 0) + 1;
    const dir = join(this.root, `compacted-${gen}`);
    await rm(dir, { recursive: true, force: true });
    const out = await SegmentLog.open(dir, { ...this.opts.log, segmentBytes: 1 << 30 });
    let records = 0;
    let lastTxn = '';
    const young = (ts: number) => now - ts < this.opts.tombstonesMs;

    // Sources in rank order: the previous generation's segments, then the removed ones.
    const sources: { keys: KeyQueries; log: SegmentLog; compacted: boolean }[] = [];
    // A generation is written in one go and only read after: its last segment's entries are
    // the reader's run.
    if (prev) for (const seg of prev.log.segmentList) sources.push({ keys: seg.keys ?? new RunKeys(prev.log.activeKeys(), prev.log.durableEnd), log: prev.log, compacted: true });
    for (const seg of removed) sources.push({ keys: seg.keys!, log: main, compacted: false });

    // Truncates first: each table's latest one drops the older rows, and is itself kept
    // (first in the new generation, so a reader applies it before any row) while young.
    const truncated = new Map<number, RankedEntry>();
    const tables = new Set<number>();
    for (const seg of removed) for (const th of seg.tables.keys()) tables.add(th);
    sources.forEach((s, i) => {
      if (s.compacted) return;
      for (const th of tables) for (const t of s.keys.truncates(th)) {
        const cur = truncated.get(th);
        if (!cur || i > cur.source || (i === cur.source && t.offset > cur.offset)) truncated.set(th, { ...t, source: i });
      }
    });
    const append = (ev: DecodedEvent, envelope: Buffer): boolean => {
      const [ks, ke] = keyRangeOf(envelope, 0, envelope.length);
      lastTxn = ev.txn;
      records++;
      return out.appendEvent(ev.txn, ev.index, ev.table, ev.tsMs, envelope[7]!, envelope, ks, ke, 0, envelope.length);
    };
    for (const t of truncated.values()) {
      const ev = await readEvent(sources[t.source]!.log, t.offset);
      if (young(ev.tsMs)) append(ev, Buffer.from(ev.buf.subarray(ev.envStart, ev.envEnd)));
    }
    // Then the latest event of every key, chunk by chunk, read in log order.
    const read = (e: RankedEntry) => readEvent(sources[e.source]!.log, e.offset);
    let round: RankedEntry[][] = [];
    const flush = async () => {
      const order = round.sort((a, b) => a[a.length - 1]!.source - b[b.length - 1]!.source || a[a.length - 1]!.offset - b[b.length - 1]!.offset);
      for (const versions of order) {
        const w = versions[versions.length - 1]!;
        if (w.kind === KIND_DELETE) {
          const ev = await read(w);
          if (young(ev.tsMs) && !append(ev, Buffer.from(ev.buf.subarray(ev.envStart, ev.envEnd)))) await out.drained();
          continue;
        }
        const t = truncated.get(w.table);
        const whole = await wholeRow(versions, read, (e) => !t || (!sources[e.source]!.compacted && (e.source > t.source || (e.source === t.source && e.offset > t.offset))));
        if (whole && !append(whole.event, asRead(whole))) await out.drained();
      }
      round = [];
    };
    for (const g of mergeKeys(sources.map((s) => s.keys.all()))) {
      if (!g.key.length) continue;
      const w = g.entries[g.entries.length - 1]!;
      if (w.kind === KIND_TRUNCATE) continue;
      const t = truncated.get(g.table);
      if (t && (sources[w.source]!.compacted || w.source < t.source || (w.source === t.source && w.offset < t.offset))) continue;
      round.push(g.entries);
      if (round.length >= CHUNK) await flush();
    }
    await flush();
    // The generation ends in one commit at the newest folded transaction: a reader that
    // checkpoints it holds everything up to the horizon, and its fence is above every row.
    const lastFolded = [...removed].reverse().find((s) => s.lastCommit)?.lastCommit;
    out.appendCommit(lastFolded?.txn ?? (lastTxn || '0/0'), now, lastFolded?.resume ?? lastFolded?.txn ?? '0/0');
    await out.sealActive();
    await out.close();

    let horizonTs = prev?.horizonTs ?? 0;
    for (const seg of removed) horizonTs = Math.max(horizonTs, seg.maxTs);
    const pointer: Pointer = { gen, horizon: removed[removed.length - 1]!.next, horizonTs, records };
    const tmp = join(this.root, `${POINTER}.tmp`);
    await writeFile(tmp, JSON.stringify(pointer));
    const fh = await open(tmp, 'r');
    await fh.sync();
    await fh.close();
    await rename(tmp, join(this.root, POINTER));
    await syncDir(this.root);
    const log = await SegmentLog.open(dir, { ...this.opts.log, readOnly: true });
    this.state = { gen, log, horizon: pointer.horizon, horizonTs, records };
    if (prev) {
      await prev.log.close();
      // The generation before the previous one has no reader left by now.
      await rm(join(this.root, `compacted-${prev.gen - 1}`), { recursive: true, force: true });
    }
    return this.state;
  }

  /** Idempotent. */
  async close(): Promise<void> {
    const s = this.state;
    this.state = null;
    await s?.log.close();
  }
}

async function readEvent(log: SegmentLog, offset: number): Promise<DecodedEvent> {
  const r = await log.readRecord(offset);
  if (!r || r.kind !== 'event') throw new Error(`compaction: offset ${offset} of ${log.dir} holds no event`);
  return r;
}

/**
 * The envelope of a key's latest row as a snapshot read: `op` "r", no before image, the
 * whole row (unchanged TOAST columns filled), its key, its source block and the rest.
 */
function asRead(w: WholeRow): Buffer {
  const ev = w.event;
  const b = ev.buf;
  const parts = envelopeParts(b, ev.envStart, ev.envEnd);
  return Buffer.concat([R_HEAD, w.row, KEY, b.subarray(parts.key[0], parts.key[1]), SOURCE, w.source, b.subarray(parts.source[1], ev.envEnd)]);
}
