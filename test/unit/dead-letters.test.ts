import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { z } from 'zod';
import { PgPosition } from '../../connectors/postgres/position.js';
import { SinkBase } from '../../src/config/schema.js';
import { SerializedChangeEvent } from '../../src/core/event.js';
import { Metrics } from '../../src/runtime/metrics.js';
import { SinkRunner } from '../../src/runtime/sink-runner.js';
import { deadLetterJson, pageOf } from '../../src/runtime/dead-letter-ops.js';
import { defineSink, type SinkEvent } from '../../src/sdk/index.js';
import { FileDeadLetters, type StoredDeadLetter } from '../../src/state/dead-letters.js';
import { FileStateStore } from '../../src/state/file-store.js';
import { MemoryStream } from '../../src/stream/memory-stream.js';
import { StreamEvent, type StreamEntry } from '../../src/stream/entries.js';
import { TempDir, waitFor } from '../helpers/context.js';

const letter = (id: string, extra: Partial<StoredDeadLetter> = {}): StoredDeadLetter => ({
  id,
  pipeline: 'p',
  sink: 's',
  table: 'public.t',
  key: { id: Number.parseInt(id, 16) },
  position: '0/1',
  index: 0,
  attempts: 1,
  error: { message: 'no' },
  first_failed_at: '2024-01-01T00:00:00.000Z',
  last_failed_at: '2024-01-01T00:00:00.000Z',
  envelope: '{"op":"c","after":{"id":1,"big":12345678901234567890},"key":{"id":1}}',
  ...extra,
});

describe('the file dead-letter store', () => {
  it('keeps dead letters in id order, replaces by id, removes with a recorded reason, and ignores a torn last line', async () => {
    await using dir = new TempDir();
    const q = new FileDeadLetters(dir.path, 'a/b');
    await q.put([letter('03'), letter('01')]);
    await q.put([letter('02'), letter('01', { attempts: 5 })]);
    assert.deepEqual((await q.list()).map((i) => [i.id, i.attempts]), [['01', 5], ['02', 1], ['03', 1]]);
    await q.remove([letter('02')], { outcome: 'discarded', reason: 'test row', at: '2024-01-02T00:00:00.000Z' });
    assert.deepEqual((await q.list()).map((i) => i.id), ['01', '03']);
    const h = await q.history();
    assert.deepEqual(h, [{ outcome: 'discarded', reason: 'test row', at: '2024-01-02T00:00:00.000Z', ids: ['02'] }]);
    // A crash half-way through an append leaves a line without its newline: ignored.
    appendFileSync(join(dir.path, 'dlq.a%2Fb.jsonl'), '{"put":[{"id":"09"');
    assert.deepEqual((await q.list()).map((i) => i.id), ['01', '03']);
    // The envelope is kept as text: a number beyond a double's precision survives.
    assert.match(deadLetterJson((await q.list())[0]!), /"big":12345678901234567890/);
  });

  it('rewrites the journal once removals outweigh what is parked', async () => {
    await using dir = new TempDir();
    const q = new FileDeadLetters(dir.path, 's');
    for (let i = 0; i < 100; i++) {
      const id = i.toString(16).padStart(4, '0');
      await q.put([letter(id)]);
      if (i !== 7) await q.remove([letter(id)], { outcome: 'delivered', at: 'now' });
    }
    assert.deepEqual((await q.list()).map((i) => i.id), ['0007']);
    const lines = readFileSync(join(dir.path, 'dlq.s.jsonl'), 'utf8').trim().split('\n').length;
    assert.ok(lines < 100, `the journal was compacted (${lines} lines for 100 puts and 99 removals)`);
    assert.equal(pageOf(await q.list(), undefined, 10).next, null);
  });
});

/**
 * A probe target: it rejects an event whose row has `bad: true` while `state.broken` holds,
 * and one with `flaky: n` for its first n writes; it records what it accepted, per key.
 */
function probe(state: { broken: boolean; writes: Map<string, number>; accepted: string[] }) {
  return defineSink({
    type: 'probe',
    config: z.object({}),
    create: () => ({
      async write(events: readonly SinkEvent[]) {
        for (const e of events) {
          const after = e.event.after as { id: number; v: number; bad?: boolean; flaky?: number };
          const n = (state.writes.get(e.fence) ?? 0) + 1;
          state.writes.set(e.fence, n);
          if (after.bad && state.broken) throw new Error(`row ${after.id} violates a constraint`);
          if (after.flaky !== undefined && n <= after.flaky) throw new Error(`row ${after.id} failed (${n})`);
        }
        for (const e of events) {
          const a = e.event.after as { id: number; v: number };
          state.accepted.push(`${a.id}:${a.v}`);
        }
      },
      async close() {},
    }),
  });
}

function row(txn: number, index: number, id: number, v: number, extra: Record<string, unknown> = {}): StreamEvent {
  const json = JSON.stringify({ op: 'u', before: null, after: { id, v, ...extra }, key: { id }, source: { schema: 'public', table: 't', ts_ms: 1 }, ts_ms: 1 });
  return new StreamEvent(new SerializedChangeEvent(json, 'public.t', 1), 'public.t', new PgPosition(BigInt(txn)), index, json, 200);
}
const commit = (n: number): StreamEntry => ({ kind: 'commit', txn: new PgPosition(BigInt(n)), resume: new PgPosition(BigInt(n + 1)), bytes: 64, offset: -1 });

async function runnerFor(dir: string, definition: unknown, maxAttempts: number, metrics: Metrics): Promise<{ runner: SinkRunner; stream: MemoryStream; store: FileStateStore }> {
  const store = new FileStateStore(dir);
  const stream = new MemoryStream(1 << 20);
  const runner = new SinkRunner({
    pipeline: 'p',
    sink: { base: { ...SinkBase.parse({ name: 's', type: 'probe', max_attempts: maxAttempts }), batch: { max_events: 100, max_bytes: 1 << 20, max_wait_ms: 0 }, retry: { attempts: 1, backoff_ms: 1, max_backoff_ms: 2 } } as never, definition: definition as never, config: {} },
    stream,
    store,
    source: { parsePosition: (s: string) => PgPosition.parse(s) },
    logger: pino({ level: 'silent' }),
    metrics,
    stateDir: dir,
    onCommit: () => undefined,
  });
  await runner.open(undefined);
  runner.start(await stream.consumer('s', null, 'latest'));
  return { runner, stream, store };
}

describe('dead letters in the sink runner', () => {
  it('parks a rejected event, parks later events of its key behind it while other keys flow, and a retry delivers the key in order', async () => {
    await using dir = new TempDir();
    const state = { broken: true, writes: new Map<string, number>(), accepted: [] as string[] };
    const metrics = new Metrics();
    const { runner, stream, store } = await runnerFor(dir.path, probe(state), 2, metrics);
    try {
      stream.append(row(10, 0, 1, 1));
      stream.append(row(10, 1, 2, 1, { bad: true }));
      stream.append(row(10, 2, 3, 1));
      stream.append(row(10, 3, 2, 2));
      stream.append(commit(10));
      stream.append(row(20, 0, 2, 3));
      stream.append(row(20, 1, 3, 2));
      stream.append(commit(20));
      await waitFor(() => runner.position?.serialize() === new PgPosition(20n).serialize(), { what: 'the second commit' });
      assert.deepEqual(state.accepted.filter((a) => !a.startsWith('2:')).sort(), ['1:1', '3:1', '3:2'], 'other keys flow');
      assert.ok(!state.accepted.some((a) => a.startsWith('2:')), 'nothing of key 2 reaches the target');
      const parked = await store.deadLetters('p', 's').list();
      assert.deepEqual(parked.map((p) => JSON.parse(p.envelope).after.v), [1, 2, 3], 'key 2: the rejected event and both later ones, in order');
      assert.equal(parked[0]!.attempts, 2, 'max_attempts writes of the event on its own');
      assert.match(parked[0]!.error.message, /violates a constraint/);
      assert.deepEqual(parked.slice(1).map((p) => [p.attempts, p.error.code]), [[0, 'TRB3030'], [0, 'TRB3030']]);
      assert.equal(metrics.get('tributary_dead_letter_depth', { pipeline: 'p', sink: 's' }), 3);
      assert.equal(metrics.get('tributary_dead_letter_total', { pipeline: 'p', sink: 's' }), 3);

      // A later one alone would overtake the first: refused.
      await assert.rejects(runner.retryDeadLetters({ ids: [parked[1]!.id] }), { code: 'TRB3033' });
      // Still broken: the retry fails again, attempts grow, the rest stays behind it.
      assert.deepEqual(await runner.retryDeadLetters({ all: true }), { retried: 3, delivered: 0, parked: 3 });
      const again = await store.deadLetters('p', 's').list();
      assert.equal(again[0]!.attempts, 3);
      assert.equal(again[1]!.attempts, 0, 'the held ones were not tried');
      // Fixed: delivered in order; new events of the key then flow straight through.
      state.broken = false;
      assert.deepEqual(await runner.retryDeadLetters({ all: true }), { retried: 3, delivered: 3, parked: 0 });
      assert.deepEqual(state.accepted.filter((a) => a.startsWith('2:')), ['2:1', '2:2', '2:3']);
      assert.equal(metrics.get('tributary_dead_letter_depth', { pipeline: 'p', sink: 's' }), 0);
      stream.append(row(30, 0, 2, 4));
      stream.append(commit(30));
      await waitFor(() => state.accepted.includes('2:4'), { what: 'a new event of the key' });
      assert.equal((await store.deadLetters('p', 's').list()).length, 0);
      assert.deepEqual((await store.deadLetters('p', 's').history()).map((h) => [h.outcome, h.ids.length]), [['delivered', 3]]);
    } finally {
      await runner.close();
    }
  });

  it('honours max_attempts: an event that fails fewer times is delivered, one that keeps failing parks after exactly max_attempts writes', async () => {
    await using dir = new TempDir();
    const state = { broken: false, writes: new Map<string, number>(), accepted: [] as string[] };
    const { runner, stream, store } = await runnerFor(dir.path, probe(state), 4, new Metrics());
    try {
      stream.append(row(10, 0, 1, 1));
      stream.append(commit(10));
      await waitFor(() => state.accepted.includes('1:1'), { what: 'a first write' });
      stream.append(row(20, 0, 5, 1, { flaky: 3 }));
      stream.append(row(20, 1, 6, 1, { flaky: 1000 }));
      stream.append(row(20, 2, 7, 1));
      stream.append(commit(20));
      await waitFor(() => runner.position?.serialize() === new PgPosition(20n).serialize(), { what: 'the commit' });
      assert.ok(state.accepted.includes('5:1'), 'failed 3 times of 4 allowed: delivered');
      assert.ok(state.accepted.includes('7:1'));
      const parked = await store.deadLetters('p', 's').list();
      assert.deepEqual(parked.map((p) => JSON.parse(p.envelope).after.id), [6]);
      assert.equal(parked[0]!.attempts, 4);
      assert.deepEqual(await runner.discardDeadLetters({ all: true }, 'never valid'), { discarded: 1 });
      assert.deepEqual((await store.deadLetters('p', 's').history()).map((h) => [h.outcome, h.reason]), [['discarded', 'never valid']]);
    } finally {
      await runner.close();
    }
  });

  it('imports the dead-letter file of earlier versions once, keeps it as *.imported, and holds its keys', async () => {
    await using dir = new TempDir();
    mkdirSync(join(dir.path, 'p'));
    const legacy = join(dir.path, 'p', 'deadletter.s.jsonl');
    const event = { op: 'c', before: null, after: { id: 9, v: 1 }, key: { id: 9 }, source: { schema: 'public', table: 't', ts_ms: 1 }, ts_ms: 1 };
    writeFileSync(legacy, JSON.stringify({ at: '2024-01-01T00:00:00.000Z', pipeline: 'p', sink: 's', position: '0/5', index: 1, error: { message: 'refused', code: null }, event }) + '\n{"torn');
    const state = { broken: false, writes: new Map<string, number>(), accepted: [] as string[] };
    const { runner, stream, store } = await runnerFor(dir.path, probe(state), 1, new Metrics());
    try {
      const parked = await store.deadLetters('p', 's').list();
      assert.equal(parked.length, 1);
      assert.equal(parked[0]!.id, new PgPosition(5n).fence() + '00000001', 'the id is the event\'s fence');
      assert.deepEqual([parked[0]!.table, parked[0]!.key, parked[0]!.error.message, parked[0]!.first_failed_at], ['public.t', { id: 9 }, 'refused', '2024-01-01T00:00:00.000Z']);
      assert.equal(existsSync(legacy), false);
      assert.equal(existsSync(legacy + '.imported'), true);
      stream.append(row(10, 0, 9, 2));
      stream.append(commit(10));
      await waitFor(async () => (await store.deadLetters('p', 's').list()).length === 2, { what: 'the later event of key 9 to park behind the imported one' });
      assert.deepEqual(state.accepted, []);
    } finally {
      await runner.close();
    }
  });

  it('refuses a retry or discard at once while the sink retries a batch against an unreachable target', async () => {
    await using dir = new TempDir();
    let down = true;
    const definition = defineSink({
      type: 'probe',
      config: z.object({}),
      create: () => ({
        async write() {
          if (down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
        },
        async close() {},
      }),
    });
    const { runner, stream } = await runnerFor(dir.path, definition, 1, new Metrics());
    try {
      stream.append(row(10, 0, 1, 1));
      stream.append(commit(10));
      await waitFor(async () => {
        try {
          await runner.discardDeadLetters({ all: true }, 'x');
          return false;
        } catch (err) {
          return (err as { code?: string }).code === 'TRB3032';
        }
      }, { what: 'TRB3032 while the target is down' });
      down = false;
      await waitFor(() => runner.position !== null, { what: 'the batch once the target is back' });
      assert.deepEqual(await runner.retryDeadLetters({ all: true }), { retried: 0, delivered: 0, parked: 0 });
    } finally {
      await runner.close();
    }
  });

  it('parks nothing twice when events are read again (a restart after a crash, a rewind): the first keeps its error', async () => {
    await using dir = new TempDir();
    const state = { broken: true, writes: new Map<string, number>(), accepted: [] as string[] };
    const feed = (stream: MemoryStream) => {
      stream.append(row(10, 0, 1, 1));
      stream.append(row(10, 1, 2, 1, { bad: true }));
      stream.append(row(10, 2, 2, 2));
      stream.append(commit(10));
    };
    const a = await runnerFor(dir.path, probe(state), 2, new Metrics());
    feed(a.stream);
    await waitFor(async () => (await a.store.deadLetters('p', 's').list()).length === 2, { what: 'two dead letters' });
    await a.runner.close();
    // The checkpoint is not kept: the same events come again, as after a crash before it.
    const metrics = new Metrics();
    const b = await runnerFor(dir.path, probe(state), 2, metrics);
    try {
      feed(b.stream);
      b.stream.append(row(20, 0, 2, 3));
      b.stream.append(commit(20));
      await waitFor(() => b.runner.position?.serialize() === new PgPosition(20n).serialize(), { what: 'the commit' });
      const parked = await b.store.deadLetters('p', 's').list();
      assert.deepEqual(parked.map((p) => JSON.parse(p.envelope).after.v), [1, 2, 3]);
      assert.match(parked[0]!.error.message, /violates a constraint/, 'not replaced by a "held behind itself"');
      assert.equal(parked[0]!.attempts, 2);
      assert.equal(metrics.get('tributary_dead_letter_depth', { pipeline: 'p', sink: 's' }), 3);
      assert.equal(metrics.get('tributary_dead_letter_total', { pipeline: 'p', sink: 's' }), 1, 'only the new one counts as parked');
    } finally {
      await b.runner.close();
    }
  });
});
