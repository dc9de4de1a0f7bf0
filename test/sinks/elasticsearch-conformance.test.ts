/**
 * The elasticsearch sink against the in-process ES stub (no real cluster runs here): the SDK
 * conformance kit, plus bulk-item handling (409 replays, 429 retries of only the failed
 * items, mapping errors as poison), auth headers and TOAST filling.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { int64Version, PoisonEventError, type SinkEvent, type SinkInstance } from '../../src/sdk/index.js';
import { describeSinkConformance, makeSinkEvent } from '../../src/testing/index.js';
import elasticsearch from '../../sinks/elasticsearch/index.js';
import { EsStub } from '../helpers/servers/es-stub.js';

const es = await EsStub.start();
after(() => es[Symbol.asyncDispose]());

describeSinkConformance({
  definition: elasticsearch,
  module: new URL('../../sinks/elasticsearch/index.js', import.meta.url),
  kind: 'keyed',
  config: { url: es.url, index: 'conf_{table}' },
  async reset() {
    es.reset();
  },
  async readState() {
    const m = new Map<string, Row>();
    for (const [id, src] of es.docs('conf_conformance')) m.set(JSON.stringify({ id: Number(id) }), src as Row);
    return m;
  },
  // A row with a column named like a metadata field: Elasticsearch refuses such a document.
  poison: (base: ChangeEvent): ChangeEvent => ({ ...base, key: { id: 999 }, after: { ...base.after, id: 999, _id: 'x' } }),
});

function ev(op: ChangeEvent['op'], key: Row | null, after: Row | null, extra: Partial<ChangeEvent['source']> = {}): ChangeEvent {
  return { op, before: null, after, key, source: { connector: 'postgresql', name: 'p', db: 'd', schema: 'public', table: 'Items', ts_ms: 1, snapshot: 'false', ...extra }, ts_ms: 1 };
}

async function sinkFor(cfg: Record<string, unknown> = {}): Promise<SinkInstance> {
  const s = await elasticsearch.create(elasticsearch.config.parse({ url: es.url, backoff_ms: 5, ...cfg }), {
    logger: pino({ level: 'silent' }),
    metrics: { inc() {}, set() {} },
    signal: new AbortController().signal,
    pipeline: 'p',
    sinkName: 'es',
    stateDir: tmpdir(),
  });
  await s.open?.({ position: null, state: undefined });
  return s;
}
const w = (s: SinkInstance, evs: SinkEvent[]) => s.write(evs, { signal: new AbortController().signal, commit: null });

describe('elasticsearch bulk behaviour (stub)', { concurrency: false }, () => {
  it('writes external versions exactly (int64) and to a lower-cased index; one bulk request per batch', async () => {
    es.reset();
    const s = await sinkFor();
    try {
      const big = makeSinkEvent(ev('c', { id: 1, region: 'eu' }, { id: 1, region: 'eu', v: 1 }), 2 ** 40, 3);
      await w(s, [big, makeSinkEvent(ev('c', { id: 2, region: 'us' }, { id: 2, region: 'us' }), 2 ** 40, 4)]);
      assert.equal(es.version('items', '1:eu'), int64Version(big).version, 'the int64 version is kept exactly');
      assert.deepEqual([...es.docs('items').keys()].sort(), ['1:eu', '2:us']);
      assert.equal(es.requests.filter((r) => r.path === '/_bulk').length, 1);
    } finally {
      await s.close();
    }
  });

  it('a replayed older event is a 409 (success) and does not overwrite; a replayed insert does not resurrect a delete', async () => {
    es.reset();
    const s = await sinkFor();
    try {
      const c1 = makeSinkEvent(ev('c', { id: 1 }, { id: 1, v: 'old' }), 1, 0);
      const c2 = makeSinkEvent(ev('c', { id: 2 }, { id: 2, v: 'old' }), 1, 1);
      const u1 = makeSinkEvent(ev('u', { id: 1 }, { id: 1, v: 'new' }), 2, 0);
      const d2 = makeSinkEvent(ev('d', { id: 2 }, null), 2, 1);
      await w(s, [c1, c2]);
      await w(s, [u1, d2]);
      await w(s, [c1, c2]); // replay of the older batch
      assert.deepEqual(Object.fromEntries(es.docs('items')), { '1': { id: 1, v: 'new' } });
    } finally {
      await s.close();
    }
  });

  it('collapses a batch to the last event per document', async () => {
    es.reset();
    const s = await sinkFor();
    try {
      const evs = Array.from({ length: 50 }, (_, i) => makeSinkEvent(ev('u', { id: 1 }, { id: 1, n: i }), 1, i));
      await w(s, evs);
      const bulk = es.requests.find((r) => r.path === '/_bulk')!;
      assert.equal(bulk.items, 1);
      assert.deepEqual(es.docs('items').get('1'), { id: 1, n: 49 });
    } finally {
      await s.close();
    }
  });

  it('resends only the items rejected with 429, with backoff, and the batch lands', async () => {
    es.reset();
    const s = await sinkFor();
    try {
      es.rejectNext(3, 429);
      const evs = Array.from({ length: 10 }, (_, i) => makeSinkEvent(ev('c', { id: i }, { id: i }), 1, i));
      await w(s, evs);
      const bulks = es.requests.filter((r) => r.path === '/_bulk');
      assert.deepEqual(bulks.map((b) => b.items), [10, 3], 'the second request carries only the 3 rejected items');
      assert.equal(es.docs('items').size, 10);
    } finally {
      await s.close();
    }
  });

  it('a whole-request 503 is retryable; items still rejected after item_retries make a retryable error', async () => {
    es.reset();
    const s = await sinkFor({ item_retries: 1 });
    try {
      es.failRequests(1, 503);
      await assert.rejects(() => w(s, [makeSinkEvent(ev('c', { id: 1 }, { id: 1 }), 1, 0)]), (err: unknown) => (err as { retryable?: boolean }).retryable === true && !(err instanceof PoisonEventError));
      es.rejectNext(5, 429);
      await assert.rejects(() => w(s, [makeSinkEvent(ev('c', { id: 1 }, { id: 1 }), 1, 0)]), (err: unknown) => (err as { retryable?: boolean }).retryable === true && !(err instanceof PoisonEventError));
    } finally {
      await s.close();
    }
  });

  it('a mapping error is a PoisonEventError naming the item, after the good items landed', async () => {
    es.reset();
    const s = await sinkFor();
    try {
      es.poisonWhen((_i, id) => id === '2');
      const evs = [1, 2, 3].map((i) => makeSinkEvent(ev('c', { id: i }, { id: i }), 1, i));
      await assert.rejects(() => w(s, evs), (err: unknown) => err instanceof PoisonEventError && /index items id 2 \(event at 1#2/.test(err.message) && /mapper_parsing_exception/.test(err.message));
      assert.deepEqual([...es.docs('items').keys()].sort(), ['1', '3']);
    } finally {
      await s.close();
    }
  });

  it('sends basic auth or the API key, and never puts secrets in the URL', async () => {
    await using secured = await EsStub.start({ auth: `ApiKey c2VjcmV0` });
    const mk = (cfg: Record<string, unknown>) =>
      elasticsearch.create(elasticsearch.config.parse({ url: secured.url, ...cfg }), { logger: pino({ level: 'silent' }), metrics: { inc() {}, set() {} }, signal: new AbortController().signal, pipeline: 'p', sinkName: 'es', stateDir: tmpdir() });
    const ok = await mk({ api_key: 'c2VjcmV0' });
    await ok.open?.({ position: null, state: undefined });
    await w(ok, [makeSinkEvent(ev('c', { id: 1 }, { id: 1 }), 1, 0)]);
    assert.equal(secured.docs('items').size, 1);
    await ok.close();
    const bad = await mk({ username: 'elastic', password: 'wrong' });
    await assert.rejects(() => bad.open!({ position: null, state: undefined }), (err: unknown) => (err as { status?: number }).status === 401 && !/wrong/.test((err as Error).message));
    await bad.close();
    assert.ok(secured.requests.every((r) => !r.path.includes('c2VjcmV0')));
  });

  it('keeps unchanged TOAST columns from the stored document', async () => {
    es.reset();
    const s = await sinkFor();
    try {
      await w(s, [makeSinkEvent(ev('c', { id: 1 }, { id: 1, big: 'B', n: 1 }), 1, 0)]);
      await w(s, [makeSinkEvent(ev('u', { id: 1 }, { id: 1, n: 2 }, { unchanged: ['big'] }), 2, 0)]);
      assert.deepEqual(es.docs('items').get('1'), { id: 1, big: 'B', n: 2 });
    } finally {
      await s.close();
    }
  });
});
