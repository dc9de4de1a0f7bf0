/**
 * The stream conformance suite, `describeStreamConformance` in `tributary/testing`: the
 * contract every backend of the internal stream (`src/stream/types.ts`) must keep, run the
 * same way against each one, as the sink kit is against each sink.
 *
 * ```ts
 * import { describeStreamConformance } from 'tributary/testing';
 *
 * describeStreamConformance('nats', {
 *   capabilities: { durable: true, replay: true, time: true, retention: true, compaction: false },
 *   open: (dir, o) => NatsStream.open({ subject: `kit.${basename(dir)}`, parse: o.parse, maxBytes: o.maxBytes, ... }),
 *   offsetAfterTime: (s, ts) => (s as NatsStream).offsetAfterTime(ts),
 *   retain: async (s, o) => { ...; return { start: first retained offset } },
 * });
 * ```
 *
 * It checks what the runtime relies on, backend by backend as its capabilities say:
 * - every consumer group reads every entry, in append order, with offsets that count up from
 *   where the stream was, in batches that keep to their limits;
 * - a consumer group starts from its committed offset, from `earliest` or from `latest`
 *   (`replay`), and from a commit time (`time`); a stream without replay starts every consumer
 *   at its end;
 * - what is durable survives a close and a reopen, a transaction whose commit was not appended
 *   does not, a consumer sees only what `onDurable` has reported, and appends go on at the old
 *   end (`durable`). A group's committed offset is kept by the runtime's state store, not by
 *   the stream (so it commits atomically with the sink's own checkpoint state): the suite keeps
 *   it as the store does, and checks that the reopened backend resumes the group exactly there;
 * - appends are bounded in bytes: `append` answers false past the budget, `drained()` resolves
 *   once a reader catches up, and a producer that waits for it never holds more than the
 *   budget and one entry;
 * - a closed consumer stops reading, and holds nothing back;
 * - retention trims the oldest history but never what a consumer group has not read, and a
 *   group behind the start gets `TRB5002` (`retention`); trimmed history is folded into the
 *   compacted state that an `earliest` reader gets first, and replaying it with the tail gives
 *   the same rows as the whole history (`compaction`);
 * - `close()` is idempotent.
 *
 * The suite drives the backend only through the `EventStream` interface, plus the few hooks a
 * capability needs (a time lookup, a retention pass), so a backend on a broker fits it as the
 * embedded log does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ChangeEvent, Row } from '../core/event.js';
import { ErrorCodes } from '../core/errors.js';
import type { Position } from '../core/source.js';
import { StreamEvent, type StreamCommit, type StreamEntry } from '../stream/entries.js';
import type { DurableCommit, EventStream, StreamConsumer } from '../stream/types.js';
import { CounterPosition } from './events.js';

/** What a backend can do beyond the core contract; the suite checks each claim, and only those. */
export interface StreamCapabilities {
  /** Entries survive close and reopen over the same storage; `onDurable` reports what is durable. */
  durable: boolean;
  /** History is kept after it is read: a consumer group starts from an offset, `earliest` or `latest`. */
  replay: boolean;
  /** The first transaction committed after a time is found ({@link StreamBackend.offsetAfterTime}). */
  time: boolean;
  /** Old history is trimmed by age ({@link StreamBackend.retain}), keeping what a group has not read. */
  retention: boolean;
  /** Trimmed history is folded into a compacted state (the latest event per key) that `earliest` readers get first. */
  compaction: boolean;
}

/** How the suite opens a backend. */
export interface StreamOpenOptions {
  /**
   * The byte budget: `append` answers false once this many bytes wait (to be written, or to be
   * read), and a producer that waits for `drained()` never makes the stream hold much more.
   */
  maxBytes: number;
  /** Parses the positions the suite appends (they are stored as strings). */
  parse(s: string): Position;
  /**
   * Retention by age to configure (`retention` backends): history older than this, that every
   * group has read, may go. The suite writes only about 100 KiB, so a backend that trims in
   * units (segments) should use small ones here, a few KiB.
   */
  maxAgeMs: number;
}

/** A stream backend under test. */
export interface StreamBackend {
  capabilities: StreamCapabilities;
  /**
   * Open the backend over storage `dir`: a new empty directory for each case, and the same one
   * again when a case reopens a durable backend. A backend on a server keys its subjects or
   * topics by `dir` (it is unique) and may ignore the directory itself.
   */
  open(dir: string, o: StreamOpenOptions): Promise<EventStream>;
  /** `time`: the first offset of the first transaction committed after `tsMs`; the end of the committed history when none is. */
  offsetAfterTime?(stream: EventStream, tsMs: number): Promise<number>;
  /**
   * `retention`: one retention pass at time `now`, keeping every offset at or after
   * `keepFrom` (the lowest committed offset of any group). Returns the first retained offset.
   */
  retain?(stream: EventStream, o: { keepFrom: number; now: number }): Promise<{ start: number }>;
}

/** One case of the suite, runnable on its own (the suite's own tests run cases directly). */
export interface StreamConformanceCase {
  name: string;
  /** Why the case does not apply to this backend (a capability it does not claim). */
  skip?: string;
  run(): Promise<void>;
}

const T0 = 1_700_000_000_000;
const BUDGET = 64 << 10;
const TABLE = 'public.kit';

/** The events the suite appends: transaction `t` commits at `T0 + 10 t`. */
function changeEvent(op: 'c' | 'u' | 'd', t: number, id: number, before: Row | null, after: Row | null, pad = 0): ChangeEvent {
  const ts = T0 + 10 * t;
  // `op` first: the log finds the op at a fixed place in the envelope, as sources write it.
  return {
    op,
    before,
    after: after && pad ? { ...after, pad: 'x'.repeat(pad) } : after,
    key: { id },
    source: { connector: 'postgresql', name: 'kit', db: 'kit', schema: 'public', table: 'kit', ts_ms: ts, snapshot: 'false' },
    ts_ms: ts,
  };
}

/** Builds transactions of change events over a small set of keys, and remembers the rows they leave. */
class TxnMaker {
  t = 1;
  readonly rows = new Map<number, Row>();
  constructor(private readonly keys = 12) {}

  /** Transaction `this.t`: `n` changes (insert, update or delete of a key), then its commit. */
  next(n = 3, pad = 0): StreamEntry[] {
    const t = this.t++;
    const pos = new CounterPosition(t);
    const out: StreamEntry[] = [];
    for (let i = 0; i < n; i++) {
      const id = (t * 7 + i * 5) % this.keys;
      const before = this.rows.get(id) ?? null;
      let ev: ChangeEvent;
      if (!before) {
        const after = { id, v: t, note: `t${t}` };
        this.rows.set(id, after);
        ev = changeEvent('c', t, id, null, after, pad);
      } else if ((t + i) % 4 === 0) {
        this.rows.delete(id);
        ev = changeEvent('d', t, id, before, null);
      } else {
        const after = { id, v: t, note: `t${t}` };
        this.rows.set(id, after);
        ev = changeEvent('u', t, id, before, after, pad);
      }
      const json = JSON.stringify(ev);
      out.push(new StreamEvent(ev, TABLE, pos, i, json, json.length + 64));
    }
    const commit: StreamCommit = { kind: 'commit', txn: pos, resume: new CounterPosition(t), bytes: 64, offset: -1 };
    out.push(commit);
    return out;
  }
}

/** What identifies an entry across a reopen: kind, offset, transaction, index and envelope. */
function ident(e: StreamEntry): string {
  if (e.kind === 'commit') return `${e.offset} commit ${e.txn.serialize()} resume ${e.resume.serialize()}`;
  return `${e.offset} event ${e.txn.serialize()}#${e.index} ${e.json}`;
}

/** Append entries, waiting for `drained()` whenever the stream asks. */
async function appendAll(s: EventStream, entries: StreamEntry[]): Promise<void> {
  for (const e of entries) if (!s.append(e)) await s.drained();
}

/** Read `n` entries from `c` in batches of at most `maxEvents` events, checking each batch's limits. */
async function readN(c: StreamConsumer, n: number, maxEvents = 1000, maxBytes = 1 << 20, what = 'entries'): Promise<StreamEntry[]> {
  const out: StreamEntry[] = [];
  // A timer that keeps the event loop alive (AbortSignal.timeout's does not): a backend that
  // never delivers fails here, with a count, rather than ending the test run.
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 20_000);
  try {
    while (out.length < n) {
      const got = await c.next(maxEvents, maxBytes, ac.signal);
      if (!got.length) assert.fail(`timed out reading ${what}: ${out.length} of ${n} came (the consumer is at ${c.position})`);
      const events = got.filter((e) => e.kind === 'event').length;
      assert.ok(events <= maxEvents, `next(${maxEvents}) returned ${events} events`);
      out.push(...got);
    }
  } finally {
    clearTimeout(timer);
  }
  assert.equal(out.length, n, `read exactly ${n} ${what}, not more`);
  return out;
}

/** The rows a sequence of change events leaves (compacted `r` events included), keyed by id. */
function rowsOf(entries: readonly StreamEntry[]): Map<number, Row> {
  const m = new Map<number, Row>();
  for (const e of entries) {
    if (e.kind !== 'event') continue;
    const ev = JSON.parse(e.json) as ChangeEvent;
    const id = Number((ev.key as Row).id);
    if (ev.op === 'd') m.delete(id);
    else {
      const { pad: _pad, ...row } = ev.after as Row;
      m.set(id, row);
    }
  }
  return new Map([...m].sort((a, b) => a[0] - b[0]));
}

function sorted(m: Map<number, Row>): Map<number, Row> {
  return new Map([...m].sort((a, b) => a[0] - b[0]));
}

/** Resolves true when `p` settles within `ms`, false otherwise. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  // The timer is not unref'd: a promise that never settles must not let the event loop end the test.
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() => clearTimeout(timer));
}

const parse = (s: string): Position => new CounterPosition(Number(s));

/** The suite's cases for `backend`, named `name` in messages. */
export function streamConformanceCases(name: string, backend: StreamBackend): StreamConformanceCase[] {
  const caps = backend.capabilities;
  const opts: StreamOpenOptions = { maxBytes: BUDGET, parse, maxAgeMs: 1000 };

  /** A fresh storage directory per case, removed after it; `open` reopens the same one. */
  async function withStream(fn: (s: EventStream, reopen: () => Promise<EventStream>) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), `tributary-stream-kit-${name}-`));
    const opened: EventStream[] = [];
    const open = async () => {
      const s = await backend.open(dir, opts);
      opened.push(s);
      return s;
    };
    try {
      await fn(await open(), open);
    } finally {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const need = (cap: keyof StreamCapabilities, what: string) => (caps[cap] ? undefined : `${name} does not claim ${cap} (${what})`);

  return [
    {
      name: 'every consumer group reads every entry in append order, offsets counting up, batches within their limits',
      async run() {
        await withStream(async (s) => {
          const base = s.end;
          let reports = 0;
          s.onDurable(() => reports++);
          const small = await s.consumer('small', null, 'latest');
          const large = await s.consumer('large', null, 'latest');
          assert.equal(small.position, base, 'a new consumer at latest starts at the end');
          const mk = new TxnMaker();
          const entries: StreamEntry[] = [];
          for (let i = 0; i < 40; i++) entries.push(...mk.next(1 + (i % 4)));
          await appendAll(s, entries);
          assert.equal(s.end, base + entries.length, 'end moves by one per appended entry');
          entries.forEach((e, i) => assert.equal(e.offset, base + i, 'append sets each entry\'s offset, one after the other'));
          const a = await readN(small, entries.length, 3, 1 << 20, 'entries in batches of 3 events');
          const b = await readN(large, entries.length, 1000, 1 << 20, 'entries in large batches');
          assert.deepEqual(a.map(ident), entries.map(ident), 'small batches: every entry once, in order');
          assert.deepEqual(b.map(ident), entries.map(ident), 'large batches: every entry once, in order');
          assert.equal(small.position, s.end, 'the consumer\'s position is after what it read');
          assert.equal(small.behind, 0, 'nothing is left behind it');
          // With nothing more to read: wait=false answers at once, an aborted signal ends a wait.
          assert.deepEqual(await small.next(10, 1 << 20, new AbortController().signal, false), []);
          const ac = new AbortController();
          const waiting = small.next(10, 1 << 20, ac.signal);
          ac.abort();
          assert.deepEqual(await waiting, [], 'next() on an aborted signal resolves to nothing');
          // A waiting reader wakes up for the next transaction.
          const woken = small.next(10, 1 << 20, AbortSignal.timeout(20_000));
          const more = mk.next(2);
          await appendAll(s, more);
          const got = await woken;
          assert.ok(got.length > 0, 'a waiting next() resolves with what is appended afterwards');
          assert.equal(ident(got[0]!), ident(more[0]!));
          if (caps.durable) assert.ok(reports > 0, 'a durable stream reports its durable commits to onDurable');
          else assert.equal(reports, 0, 'a stream that is not durable never calls onDurable (each sink\'s checkpoint is what is durable)');
        });
      },
    },
    {
      name: 'a consumer group starts from its committed offset, from earliest, or from latest',
      skip: need('replay', 'history kept after it is read'),
      async run() {
        await withStream(async (s) => {
          const mk = new TxnMaker();
          const entries: StreamEntry[] = [];
          for (let i = 0; i < 20; i++) entries.push(...mk.next(3));
          await appendAll(s, entries);
          const reader = await s.consumer('first', null, 'earliest');
          assert.deepEqual((await readN(reader, entries.length)).map(ident), entries.map(ident), 'earliest: the whole history');
          const commit = entries.findIndex((e, i) => e.kind === 'commit' && i > entries.length / 2);
          const from = entries[commit]!.offset + 1;
          const resumed = await s.consumer('resumed', from, 'latest');
          assert.equal(resumed.position, from, 'a committed offset wins over start');
          assert.deepEqual((await readN(resumed, entries.length - commit - 1)).map(ident), entries.slice(commit + 1).map(ident), 'from the committed offset on');
          const late = await s.consumer('late', null, 'latest');
          const more = mk.next(2);
          await appendAll(s, more);
          assert.deepEqual((await readN(late, more.length)).map(ident), more.map(ident), 'latest: only what comes after');
          // Reading does not consume: the first group reads the same history again.
          const again = await s.consumer('first', null, 'earliest');
          const all = [...entries, ...more];
          assert.deepEqual((await readN(again, all.length)).map(ident), all.map(ident), 'history is kept after it is read');
        });
      },
    },
    {
      name: 'without replay, every consumer starts at the end whatever it asks (nothing is retained)',
      skip: caps.replay ? `${name} keeps history (the replay case covers it)` : undefined,
      async run() {
        await withStream(async (s) => {
          const mk = new TxnMaker();
          const first = mk.next(3);
          const early = await s.consumer('early', null, 'earliest');
          await appendAll(s, first);
          await readN(early, first.length);
          const late = await s.consumer('late', 0, 'earliest');
          assert.equal(late.position, s.end, 'a consumer made after appends starts at the end');
          const more = mk.next(2);
          await appendAll(s, more);
          assert.deepEqual((await readN(late, more.length)).map(ident), more.map(ident));
        });
      },
    },
    {
      name: 'a reader starts from a commit time: the first transaction committed after it',
      skip: need('time', 'a time lookup'),
      async run() {
        await withStream(async (s) => {
          assert.ok(backend.offsetAfterTime, `${name} claims time: give offsetAfterTime`);
          const mk = new TxnMaker();
          const txns: StreamEntry[][] = [];
          for (let i = 0; i < 30; i++) txns.push(mk.next(1 + (i % 3)));
          await appendAll(s, txns.flat());
          await readN(await s.consumer('durable', null, 'earliest'), txns.flat().length);
          // Transaction t (1-based) commits at T0 + 10 t.
          for (const k of [0, 1, 7, 15, 29]) {
            const at = await backend.offsetAfterTime!(s, T0 + 10 * k + 5);
            assert.equal(at, txns[k]!.length ? txns[k]![0]!.offset : -1, `after the commit time of transaction ${k}: transaction ${k + 1} starts`);
            const c = await s.consumer(`t${k}`, at, 'earliest');
            const [first] = await c.next(1, 1 << 20, AbortSignal.timeout(20_000));
            assert.ok(first, `a reader from offset ${at} gets an entry`);
            assert.equal(ident(first), ident(txns[k]![0]!));
          }
          assert.equal(await backend.offsetAfterTime!(s, T0 + 10 * 1 - 1), txns[0]![0]!.offset, 'before the first commit: the first transaction');
          assert.equal(await backend.offsetAfterTime!(s, T0 + 10 * 31), s.end, 'after the last commit: the end');
          assert.equal(await backend.offsetAfterTime!(s, T0 + 10 * 3), txns[3]![0]!.offset, 'a transaction committed exactly at the time is before it');
        });
      },
    },
    {
      name: 'what is durable survives close and reopen; an unfinished transaction does not; readers see only what onDurable reported',
      skip: need('durable', 'storage that outlives the process'),
      async run() {
        await withStream(async (s, reopen) => {
          const durable: DurableCommit[] = [];
          s.onDurable((c) => durable.push(c));
          const mk = new TxnMaker();
          const entries: StreamEntry[] = [];
          for (let i = 0; i < 25; i++) entries.push(...mk.next(3));
          const c = await s.consumer('g', null, 'earliest');
          const appending = appendAll(s, entries);
          // Every entry a reader gets has been reported durable (its commit, or a later one) by then.
          let seen = 0;
          const signal = AbortSignal.timeout(20_000);
          while (seen < entries.length) {
            const got = await c.next(7, 1 << 20, signal);
            if (!got.length) assert.fail(`timed out: ${seen} of ${entries.length} read`);
            const reported = durable.at(-1)?.offset ?? -1;
            for (const e of got) assert.ok(e.kind === 'event' ? e.offset < reported : e.offset <= reported, `entry ${e.offset} was read before onDurable reported it (reported up to ${reported})`);
            seen += got.length;
          }
          await appending;
          const last = durable.at(-1)!;
          assert.equal(last.offset, entries.at(-1)!.offset, 'onDurable reports the last commit');
          assert.equal(last.txn, '25');
          assert.equal(last.resume, '25');
          assert.equal(last.tsMs, T0 + 250, 'with its commit time');
          // A group committed in the middle of the history (as the state store keeps it).
          const committed = entries.findIndex((e, i) => e.kind === 'commit' && i >= entries.length / 2) + 1;
          const committedOffset = entries[committed - 1]!.offset + 1;
          // An unfinished transaction at the close: its commit never came.
          const unfinished = mk.next(4).slice(0, 3);
          await appendAll(s, unfinished);
          const end = entries.at(-1)!.offset + 1;
          await s.close();

          const r = await reopen();
          assert.equal(r.end, end, 'reopened: the end is after the last durable commit (the unfinished transaction is gone)');
          const resumed = await r.consumer('g', committedOffset, 'earliest');
          assert.deepEqual((await readN(resumed, entries.length - committed)).map(ident), entries.slice(committed).map(ident), 'the committed group resumes where it was, the entries as they were');
          assert.deepEqual(await resumed.next(10, 1 << 20, new AbortController().signal, false), [], 'nothing of the unfinished transaction');
          // Appends go on at the old end; the source sends the unfinished transaction again.
          mk.t--;
          const again = mk.next(4);
          await appendAll(r, again);
          assert.equal(again[0]!.offset, end);
          assert.deepEqual((await readN(resumed, again.length)).map(ident), again.map(ident));
        });
      },
    },
    {
      name: 'appends are bounded in bytes: append answers false past the budget, and drained() resolves once a reader catches up',
      async run() {
        await withStream(async (s) => {
          const c = await s.consumer('reader', null, 'latest');
          const mk = new TxnMaker(200);
          // Synchronous appends with no reader: the stream must say stop before twice its budget.
          let appended = 0;
          let refused = false;
          const first: StreamEntry[] = [];
          while (appended < 4 * BUDGET) {
            const txn = mk.next(4, 200);
            for (const e of txn) {
              first.push(e);
              appended += e.bytes;
              if (!s.append(e)) refused = true;
            }
            if (refused) break;
          }
          assert.ok(refused, `append never answered false over ${appended} bytes (budget ${BUDGET})`);
          assert.ok(appended <= 2 * BUDGET + (8 << 10), `append answered false only after ${appended} bytes (budget ${BUDGET})`);
          // A reader catches up; drained() resolves.
          const reading = readN(c, first.length, 50);
          assert.ok(await settlesWithin(s.drained(), 20_000), 'drained() resolved once the reader caught up');
          await reading;
          // A producer that waits for drained(), a slow reader: held bytes stay within budget and an entry.
          let maxHeld = 0;
          let maxEntry = 0;
          const entries: StreamEntry[] = [];
          for (let i = 0; i < 150; i++) entries.push(...mk.next(3, 300));
          const producing = (async () => {
            for (const e of entries) {
              maxEntry = Math.max(maxEntry, e.bytes);
              const ok = s.append(e);
              maxHeld = Math.max(maxHeld, s.bytes);
              if (!ok) await s.drained();
            }
          })();
          const got: StreamEntry[] = [];
          const signal = AbortSignal.timeout(30_000);
          while (got.length < entries.length) {
            const b = await c.next(5, 4096, signal);
            if (!b.length) assert.fail(`timed out: ${got.length} of ${entries.length} read`);
            got.push(...b);
            maxHeld = Math.max(maxHeld, s.bytes);
            await new Promise((r) => setTimeout(r, 1));
          }
          await producing;
          assert.deepEqual(got.map(ident), entries.map(ident), 'every entry once, in order, through backpressure');
          assert.ok(maxHeld <= BUDGET + maxEntry, `the stream held ${maxHeld} bytes in memory (budget ${BUDGET}, largest entry ${maxEntry})`);
        });
      },
    },
    {
      name: 'a closed consumer stops reading and holds nothing back; close() is idempotent',
      async run() {
        await withStream(async (s) => {
          const idle = await s.consumer('idle', null, 'latest');
          const active = await s.consumer('active', null, 'latest');
          const mk = new TxnMaker(200);
          const entries: StreamEntry[] = [];
          let full = false;
          for (let i = 0; i < 1000 && !full; i++) {
            for (const e of mk.next(4, 400)) {
              entries.push(e);
              if (!s.append(e)) full = true;
            }
          }
          assert.ok(full, 'the stream filled its budget');
          await readN(active, entries.length, 1000, 1 << 30);
          const drained = s.drained();
          if (caps.durable) {
            // The database is acknowledged at durability: a group that does not read holds nothing back.
            assert.ok(await settlesWithin(drained, 20_000), 'drained() resolved though one group does not read');
          } else {
            // Acknowledged at the slowest group: the idle one holds the stream until it lets go.
            assert.equal(await settlesWithin(drained, 300), false, 'a group that has not read holds the entries (and the source) back');
          }
          idle.close();
          idle.close();
          assert.ok(await settlesWithin(drained, 20_000), 'drained() resolves once the idle group is closed');
          assert.deepEqual(await idle.next(10, 1 << 20, AbortSignal.timeout(5000)), [], 'a closed consumer reads nothing');
          active.close();
          const a = s.close();
          const b = s.close();
          await Promise.all([a, b]);
          await s.close();
        });
      },
    },
    {
      name: 'retention trims old history but never what a group has not read; a group behind the start gets TRB5002',
      skip: need('retention', 'trimming by age'),
      async run() {
        await withStream(async (s) => {
          assert.ok(backend.retain, `${name} claims retention: give retain`);
          const mk = new TxnMaker(50);
          const entries: StreamEntry[] = [];
          for (let i = 0; i < 150; i++) entries.push(...mk.next(3, 200));
          await appendAll(s, entries);
          await readN(await s.consumer('all', null, 'earliest'), entries.length);
          const now = T0 + 10 * 1000 + 10_000;
          const half = entries[Math.floor(entries.length / 2)]!.offset;
          const kept = await backend.retain!(s, { keepFrom: 0, now });
          assert.equal(kept.start, entries[0]!.offset, 'a group that has read nothing keeps everything, however old');
          const trimmed = await backend.retain!(s, { keepFrom: half, now });
          assert.ok(trimmed.start > entries[0]!.offset, `old history that every group read is trimmed (start ${trimmed.start})`);
          assert.ok(trimmed.start <= half, `nothing at or after the lowest committed offset goes (start ${trimmed.start}, kept from ${half})`);
          await assert.rejects(s.consumer('behind', entries[0]!.offset, 'earliest'), (e: Error & { code?: string }) => e.code === ErrorCodes.LOG_GAP, 'a group committed before the start gets TRB5002');
          const from = await s.consumer('kept', half, 'earliest');
          const rest = entries.filter((e) => e.offset >= half);
          assert.deepEqual((await readN(from, rest.length)).map(ident), rest.map(ident), 'what is kept is intact');
        });
      },
    },
    {
      name: 'trimmed history is folded into the compacted state: an earliest reader gets each key\'s latest row, then the tail, and the rows equal the whole history\'s',
      skip: need('compaction', 'a compacted state beyond retention'),
      async run() {
        await withStream(async (s) => {
          assert.ok(backend.retain, `${name} claims compaction: give retain`);
          const mk = new TxnMaker(40);
          const entries: StreamEntry[] = [];
          for (let i = 0; i < 150; i++) entries.push(...mk.next(3, 200));
          await appendAll(s, entries);
          await readN(await s.consumer('all', null, 'earliest'), entries.length);
          const { start } = await backend.retain!(s, { keepFrom: s.end, now: T0 + 10 * 1000 + 10 * 86_400_000 });
          assert.ok(start > entries[0]!.offset, 'retention trimmed something');
          const tail = entries.filter((e) => e.offset >= start);
          const late = await s.consumer('late', null, 'earliest');
          const got: StreamEntry[] = [];
          const signal = AbortSignal.timeout(20_000);
          while (got.length === 0 || got.at(-1)!.offset !== entries.at(-1)!.offset) {
            const b = await late.next(100, 1 << 20, signal);
            if (!b.length) assert.fail(`timed out reading the compacted state and the tail (${got.length} entries)`);
            got.push(...b);
          }
          const firstTail = got.findIndex((e) => e.offset === start);
          assert.ok(firstTail > 0, 'the compacted state comes first, then the tail from the start of the log');
          const compacted = got.slice(0, firstTail).filter((e) => e.kind === 'event').map((e) => JSON.parse((e as StreamEvent).json) as ChangeEvent);
          const ids = compacted.map((e) => Number((e.key as Row).id));
          assert.equal(new Set(ids).size, ids.length, 'one event per key in the compacted state');
          assert.ok(compacted.every((e) => e.op === 'r' || e.op === 'd'), 'rows as reads (and young deletes)');
          assert.deepEqual(got.slice(firstTail).map(ident), tail.map(ident), 'then the tail, every entry once, in order');
          assert.deepEqual(rowsOf(got), sorted(mk.rows), 'compacted state + tail = the rows of the whole history');
          assert.deepEqual(rowsOf(got), rowsOf(entries));
        });
      },
    },
  ];
}

/**
 * Run the stream conformance suite for one backend with `node:test`: one `describe` named
 * after it, one `it` per case (cases for capabilities it does not claim are skipped, saying
 * why).
 */
export function describeStreamConformance(name: string, backend: StreamBackend): void {
  describe(`stream conformance: ${name}`, { concurrency: false }, () => {
    for (const c of streamConformanceCases(name, backend)) it(c.name, { skip: c.skip }, () => c.run());
  });
}
