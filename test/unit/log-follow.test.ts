import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { LogStream } from '../../src/stream/log-stream.js';
import { StreamEvent, type StreamCommit, type StreamEntry } from '../../src/stream/entries.js';
import { CounterPosition } from '../../src/testing/events.js';
import type { ChangeEvent } from '../../src/core/event.js';
import { TempDir } from '../helpers/context.js';

/**
 * A sink that reads the in-memory tail holds the source back briefly (`stream.follow`)
 * rather than fall to disk reads; one that makes no room is left behind after that time.
 */
const silent = pino({ level: 'silent' });
const BUDGET = 1 << 20;

/** Transaction `t`: one ~4 KB insert of key `t`, then its commit. */
function txn(t: number): StreamEntry[] {
  const pos = new CounterPosition(t);
  const ev: ChangeEvent = { op: 'c', before: null, after: { id: t, pad: 'x'.repeat(4000) }, key: { id: t }, source: { connector: 'postgresql', name: 'f', db: 'f', schema: 'public', table: 't', ts_ms: 1_700_000_000_000 + t, snapshot: 'false' }, ts_ms: 1_700_000_000_000 + t };
  const json = JSON.stringify(ev);
  const commit: StreamCommit = { kind: 'commit', txn: pos, resume: pos, bytes: 64, offset: -1 };
  return [new StreamEvent(ev, 'public.t', pos, 0, json, json.length + 200), commit];
}

const settles = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

/** Append transactions from `t` until the stream asks the source to wait; returns the next `t`. */
function fill(s: LogStream, t: number): number {
  for (;;) {
    let ok = true;
    for (const e of txn(t)) ok = s.append(e) && ok;
    t++;
    if (!ok) return t;
    assert.ok(t < 5000, 'the stream never asked the source to wait');
  }
}

async function readAll(s: LogStream, c: Awaited<ReturnType<LogStream['consumer']>>, upTo: number): Promise<number[]> {
  const ids: number[] = [];
  const ac = new AbortController();
  while (c.position < upTo) {
    for (const e of await c.next(1000, 64 << 20, ac.signal)) if (e.kind === 'event') ids.push((e.event.after as { id: number }).id);
  }
  return ids;
}

describe('log stream: a sink that follows the tail', () => {
  it('holds the source until it reads, at most `follow`; then it reads from disk, nothing lost or repeated', async () => {
    await using dir = new TempDir();
    const s = await LogStream.open({ dir: dir.path, parse: (x) => new CounterPosition(Number(x)), logger: silent, tailBytes: BUDGET, followMs: 300 });
    try {
      const c = await s.consumer('sink', null, 'earliest');
      // The tail fills with entries the sink has not read: the source is asked to wait.
      let t = fill(s, 1);
      const perTxn = txn(1).reduce((n, e) => n + e.bytes, 0);
      assert.ok((t - 1) * perTxn > BUDGET && (t - 2) * perTxn <= BUDGET, `asked to wait once the tail is full (${t - 1} transactions of ${perTxn} bytes)`);
      await s.log.flush();
      const waiting = s.drained();
      assert.equal(await settles(waiting, 100), false, 'the source waits while the sink has not read');
      // The sink reads: room, and the source goes on at once.
      const first = await c.next(50, 64 << 20, new AbortController().signal);
      assert.ok(first.length > 0);
      assert.equal(await settles(waiting, 50), true, 'the source goes on as soon as the sink makes room');

      // Filled again, and the sink does not read: the source waits `follow`, no longer.
      t = fill(s, t);
      const started = Date.now();
      await s.drained();
      const waited = Date.now() - started;
      assert.ok(waited >= 200 && waited < 2000, `waited ${waited} ms for a sink that made no room`);
      // Left behind, the sink reads the rest (part of it from disk) in order, once each.
      for (let i = 0; i < 20; i++) for (const e of txn(t++)) s.append(e);
      await s.log.flush();
      const ids = [...first.filter((e) => e.kind === 'event').map((e) => (e.event.after as { id: number }).id), ...(await readAll(s, c, s.durableEnd))];
      assert.deepEqual(ids, Array.from({ length: t - 1 }, (_, i) => i + 1), 'every transaction once, in order');
    } finally {
      await s.close();
    }
  });

  it('with `follow: 0ms` the source never waits for a sink', async () => {
    await using dir = new TempDir();
    const s = await LogStream.open({ dir: dir.path, parse: (x) => new CounterPosition(Number(x)), logger: silent, tailBytes: BUDGET, followMs: 0, log: { maxPendingBytes: 64 << 20 } });
    try {
      await s.consumer('sink', null, 'earliest');
      for (let t = 1; t < 1000; t++) for (const e of txn(t)) assert.equal(s.append(e), true, `transaction ${t}`);
      assert.equal(await settles(s.drained(), 5000), true);
    } finally {
      await s.close();
    }
  });
  it('lets go of what every sink here has read at once; a reader that starts later reads it from disk', async () => {
    await using dir = new TempDir();
    const s = await LogStream.open({ dir: dir.path, parse: (x) => new CounterPosition(Number(x)), logger: silent, tailBytes: BUDGET, followMs: 300 });
    try {
      const fast = await s.consumer('fast', null, 'earliest');
      const slow = await s.consumer('slow', null, 'earliest');
      for (let t = 1; t <= 50; t++) for (const e of txn(t)) s.append(e);
      await s.log.flush();
      const held = s.bytes;
      assert.ok(held > 0 && held < BUDGET);
      const all = Array.from({ length: 50 }, (_, i) => i + 1);
      assert.deepEqual(await readAll(s, fast, s.durableEnd), all);
      assert.equal(s.bytes, held, 'a sink that has not read keeps the entries in memory');
      const first = await slow.next(20, 64 << 20, new AbortController().signal);
      assert.ok(s.bytes > 0 && s.bytes < held, `what both have read is let go (${s.bytes} of ${held} bytes held)`);
      const rest = await readAll(s, slow, s.durableEnd);
      assert.deepEqual([...first.filter((e) => e.kind === 'event').map((e) => (e.event.after as { id: number }).id), ...rest], all);
      assert.equal(s.bytes, 0, 'both have read everything: nothing is held');
      // A sink that starts now (a rewind, a late sink) gets the same events, from disk.
      const late = await s.consumer('late', null, 'earliest');
      assert.equal(s.at(0), undefined, 'not in memory any more');
      assert.deepEqual(await readAll(s, late, s.durableEnd), all);
    } finally {
      await s.close();
    }
  });
});
