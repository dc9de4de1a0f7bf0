import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStream } from '../../src/stream/memory-stream.js';
import type { StreamEntry, StreamConsumer } from '../../src/stream/types.js';
import { tableMatcher } from '../../src/runtime/table-filter.js';
import { backoffDelay, isRetryableError } from '../../src/runtime/retry.js';
import { redactUrl } from '../../src/core/log.js';
import { PgPosition } from '../../connectors/postgres/position.js';
import { PoisonEventError } from '../../src/core/errors.js';

const commit = (n: number, bytes = 100): StreamEntry => ({ kind: 'commit', txn: new PgPosition(BigInt(n)), resume: new PgPosition(BigInt(n + 1)), bytes, offset: -1 });

/** Take `n` entries for consumer `c` (what a sink runner does), without waiting. */
async function take(c: StreamConsumer, n: number): Promise<void> {
  const ac = new AbortController();
  let got = 0;
  while (got < n) got += (await c.next(1, 1, ac.signal, false)).length;
}

describe('memory stream', () => {
  it('refuses more once over its byte budget and drains when consumers take entries', async () => {
    const s = new MemoryStream(1000);
    const a = await s.consumer('a', null, 'latest');
    const b = await s.consumer('b', null, 'latest');
    const at = a.position;
    let ok = true;
    let n = 0;
    while (ok) ok = s.append(commit(n++));
    assert.equal(n, 10, 'append returns false at the budget');
    assert.equal(s.bytes, 1000);
    let drained = false;
    const d = s.drained().then(() => (drained = true));
    await take(a, 10);
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, false, 'one slow consumer keeps the data');
    await take(b, 5);
    await d;
    assert.equal(s.bytes, 500);
    assert.equal(s.read(at + 5, 100, 1 << 20).length, 5);
    assert.equal(s.read(at + 5, 100, 150).length, 2, 'reads stop at the byte limit (at least one entry)');
  });
  it('next() waits for an append, and resolves to nothing on abort', async () => {
    const s = new MemoryStream(1 << 20);
    const c = await s.consumer('a', null, 'latest');
    const ac = new AbortController();
    const w = c.next(10, 1 << 20, ac.signal);
    s.append(commit(1));
    assert.equal((await w).length, 1);
    const w2 = c.next(10, 1 << 20, ac.signal);
    ac.abort();
    assert.deepEqual(await w2, []);
  });
});

describe('table filters', () => {
  it('matches globs with include and exclude', () => {
    const m = tableMatcher(['public.order_*', 'public.customers', 'shop.*'], ['public.order_archive']);
    assert.equal(m('public.order_items'), true);
    assert.equal(m('public.order_archive'), false);
    assert.equal(m('public.customers'), true);
    assert.equal(m('public.customersx'), false);
    assert.equal(m('shop.anything'), true);
    assert.equal(tableMatcher(undefined, undefined)('x.y'), true);
  });
});

describe('retry classification', () => {
  it('network errors retry; poison and plain errors do not', () => {
    assert.equal(isRetryableError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), true);
    assert.equal(isRetryableError(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isRetryableError(new PoisonEventError('bad row')), false);
    assert.equal(isRetryableError(new TypeError('x is undefined')), false);
    for (let i = 1; i < 30; i++) assert.ok(backoffDelay(i, 100, 5000) <= 5000);
  });
});

describe('secret redaction', () => {
  it('removes URL passwords', () => {
    assert.equal(redactUrl('connect to postgres://cdc:s3cret@db:5432/shop failed'), 'connect to postgres://cdc:***@db:5432/shop failed');
    assert.equal(redactUrl('redis://:pw@127.0.0.1:6379'), 'redis://:***@127.0.0.1:6379');
  });
});

import { StreamEvent } from '../../src/stream/entries.js';
import { SinkRunner } from '../../src/runtime/sink-runner.js';
import { SinkBase } from '../../src/config/schema.js';
import { Metrics } from '../../src/runtime/metrics.js';
import { pino } from 'pino';
import { defineSink, type SinkEvent } from '../../src/sdk/index.js';
import { z } from 'zod';
import type { ChangeEvent } from '../../src/core/event.js';
import type { SinkCheckpointRecord, StateStore } from '../../src/state/store.js';

const ev = (txn: number, index: number): StreamEvent =>
  new StreamEvent({} as ChangeEvent, 'public.t', new PgPosition(BigInt(txn)), index, `{"n":${txn}}`, 100);

describe('memory stream reads', () => {
  it('counts events, not commit markers, against max_events', async () => {
    const s = new MemoryStream(1 << 20);
    const c = await s.consumer('a', null, 'latest');
    for (let t = 1; t <= 3; t++) {
      for (let i = 0; i < 2; i++) s.append(ev(t, i));
      s.append(commit(t));
    }
    const got = await c.next(4, 1 << 20, new AbortController().signal);
    assert.deepEqual(got.map((e) => e.kind), ['event', 'event', 'commit', 'event', 'event', 'commit'], 'two whole transactions, not one and a half');
  });
});

/** A runner for a `probe` sink: batches of 2 events, one attempt, poison events parked. */
function probeRunner(definition: unknown, stream: MemoryStream, store: StateStore, onCommit: () => void): SinkRunner {
  return new SinkRunner({
    pipeline: 'p',
    sink: { base: { ...SinkBase.parse({ name: 's', type: 'probe' }), batch: { max_events: 2, max_bytes: 1 << 20, max_wait_ms: 0 }, retry: { attempts: 1, backoff_ms: 1, max_backoff_ms: 1 }, dead_letter: { policy: 'park' } } as never, definition: definition as never, config: {} },
    stream,
    store,
    source: { parsePosition: (s: string) => PgPosition.parse(s) },
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
    stateDir: '/tmp',
    onCommit,
  });
}

describe('sink runner', () => {
  it('frees the stream while a batch is written, and coalesces checkpoints behind a slow store', async () => {
    const written: number[] = [];
    let release!: () => void;
    const slowWrite = new Promise<void>((r) => (release = r));
    const saves: SinkCheckpointRecord[] = [];
    let saving = 0;
    let maxSaving = 0;
    const store = {
      async saveSink(_p: string, _s: string, rec: SinkCheckpointRecord) {
        saving++;
        maxSaving = Math.max(maxSaving, saving);
        await new Promise((r) => setTimeout(r, 30));
        saves.push(rec);
        saving--;
      },
    } as unknown as StateStore;
    const definition = defineSink({
      type: 'probe',
      config: z.object({}),
      create: () => ({
        async write(events: readonly SinkEvent[]) {
          if (!written.length) await slowWrite; // the first batch hangs until released
          for (const e of events) written.push(Number(e.position.split('/')[1]));
        },
        async close() {},
      }),
    });
    const stream = new MemoryStream(1 << 20);
    let commits = 0;
    const runner = probeRunner(definition, stream, store, () => commits++);
    await runner.open(undefined);
    runner.start(await stream.consumer('s', null, 'latest'));
    for (let t = 1; t <= 20; t++) {
      stream.append(ev(t, 0));
      stream.append(ev(t, 1));
      stream.append(commit(t));
    }
    await new Promise((r) => setTimeout(r, 20));
    // The first batch (transaction 1) is being written and has already left the stream.
    assert.equal(stream.bytes, 19 * 300, 'a batch leaves the stream when it is taken');
    assert.equal(runner.position === null, true, 'but it is not counted as written');
    release();
    const deadline = Date.now() + 5000;
    while ((runner.position as PgPosition | null)?.serialize() !== new PgPosition(20n).serialize() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await runner.close();
    assert.equal(written.length, 40, 'every event written once');
    assert.equal(saves.at(-1)!.position, new PgPosition(20n).serialize(), 'the last commit is checkpointed');
    assert.ok(saves.length < 20, `checkpoint writes coalesce behind a slow store (${saves.length} for 20 commits)`);
    assert.equal(maxSaving, 1, 'one checkpoint write at a time');
    assert.equal(commits, saves.length);
  });
});

describe('sink runner, failing state store', () => {
  it('stops the sink at once when its checkpoint cannot be stored', async () => {
    const store = { async saveSink() { throw new Error('disk full'); } } as unknown as StateStore;
    const definition = defineSink({ type: 'probe', config: z.object({}), create: () => ({ async write() {}, async close() {} }) });
    const stream = new MemoryStream(1 << 20);
    let commits = 0;
    const runner = probeRunner(definition, stream, store, () => commits++);
    await runner.open(undefined);
    runner.start(await stream.consumer('s', null, 'latest'));
    stream.append(ev(1, 0));
    stream.append(commit(1));
    const deadline = Date.now() + 5000;
    while (!runner.failed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.match(String(runner.failed), /disk full/, 'the sink is marked failed without waiting for another commit');
    assert.ok(commits >= 1, 'the coordinator is told, so the pipeline fails');
    assert.equal(runner.position, null, 'no position is claimed');
    await runner.close();
  });
});
