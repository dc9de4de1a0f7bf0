/**
 * The manticore sink against a real Sphinx searchd (Debian's sphinxsearch 2.2) started for
 * this file: the SDK conformance kit, full-text MATCH after updates and deletes, id hashing,
 * value conversion, the high-water mark, and poison values.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { PoisonEventError, type SinkEvent, type SinkInstance } from '../../src/sdk/index.js';
import { describeSinkConformance, makeSinkEvent } from '../../src/testing/index.js';
import manticore from '../../sinks/manticore/index.js';
import { hashId } from '../../sinks/manticore/docid.js';
import { SearchdServer } from '../helpers/servers/searchd.js';

const sd = await SearchdServer.start({
  indexes: {
    conformance: ['rt_field = name', 'rt_attr_string = name_s', 'rt_attr_string = amount', 'rt_attr_json = tags'],
    docs: ['rt_field = title', 'rt_field = body', 'rt_attr_string = title_s', 'rt_attr_bigint = n', 'rt_attr_float = price', 'rt_attr_timestamp = at', 'rt_attr_bool = flag', 'rt_attr_json = meta', 'rt_attr_multi = tags'],
    things: ['rt_field = label', 'rt_attr_string = code'],
  },
});
after(() => sd[Symbol.asyncDispose]());

describeSinkConformance({
  definition: manticore,
  module: new URL('../../sinks/manticore/index.js', import.meta.url),
  kind: 'keyed',
  config: { url: sd.url, fields: ['name'], attributes: { name: 'name_s', amount: 'amount', tags: 'tags' } },
  async reset() {
    await sd.query('TRUNCATE RTINDEX conformance');
  },
  async readState() {
    const m = new Map<string, Row>();
    for (const r of await sd.all<{ id: string; name_s: string; amount: string; tags: string }>('conformance')) {
      const id = Number(r.id);
      m.set(JSON.stringify({ id }), { id, name: r.name_s, amount: r.amount, tags: JSON.parse(r.tags) });
    }
    return m;
  },
  poison: (base: ChangeEvent): ChangeEvent => ({ ...base, key: null }),
});

function ev(op: ChangeEvent['op'], table: string, key: Row | null, after: Row | null): ChangeEvent {
  return { op, before: null, after, key, source: { connector: 'postgresql', name: 'p', db: 'd', schema: 'public', table, ts_ms: 1, snapshot: 'false' }, ts_ms: 1 };
}

async function sinkFor(cfg: Record<string, unknown> = {}, stateDir = mkdtempSync(join(tmpdir(), 'trb-mc-'))): Promise<SinkInstance> {
  const s = await manticore.create(manticore.config.parse({ url: sd.url, ...cfg }), {
    logger: pino({ level: 'silent' }),
    metrics: { inc() {}, set() {} },
    signal: new AbortController().signal,
    pipeline: 'p',
    sinkName: 'mc',
    stateDir,
  });
  await s.open?.({ position: null, state: undefined });
  return s;
}
const w = (s: SinkInstance, evs: SinkEvent[], commit: string | null = null) => s.write(evs, { signal: new AbortController().signal, commit });

describe('manticore index behaviour (real searchd)', { concurrency: false }, () => {
  it('MATCH finds updated text and no longer finds deleted documents', async () => {
    await sd.query('TRUNCATE RTINDEX docs');
    const s = await sinkFor({ fields: ['title', 'body'], attributes: { title: 'title_s', n: 'n' } });
    try {
      await w(s, [
        makeSinkEvent(ev('c', 'docs', { id: 1 }, { id: 1, title: 'red bicycle', body: 'fast and light', n: 1 }), 1, 0),
        makeSinkEvent(ev('c', 'docs', { id: 2 }, { id: 2, title: 'blue kayak', body: 'stable boat', n: 2 }), 1, 1),
        makeSinkEvent(ev('c', 'docs', { id: 3 }, { id: 3, title: 'green tent', body: 'sleeps four', n: 3 }), 1, 2),
      ], '1');
      await w(s, [
        makeSinkEvent(ev('u', 'docs', { id: 1 }, { id: 1, title: 'orange tandem', body: 'fast and light', n: 10 }), 2, 0),
        makeSinkEvent(ev('d', 'docs', { id: 2 }, null), 2, 1),
      ], '2');
      const ids = async (q: string) => (await sd.all<{ id: string }>('docs', 'id', `MATCH('${q}')`)).map((r) => Number(r.id));
      assert.deepEqual(await ids('tandem'), [1], 'the updated text is searchable');
      assert.deepEqual(await ids('bicycle'), [], 'the old text is gone');
      assert.deepEqual(await ids('kayak'), [], 'a deleted document is not found');
      assert.deepEqual(await ids('tent'), [3]);
      assert.deepEqual(await sd.all('docs', 'id, title_s, n'), [
        { id: '1', title_s: 'orange tandem', n: '10' },
        { id: '3', title_s: 'green tent', n: '3' },
      ]);
    } finally {
      await s.close();
    }
  });

  it('converts values by attribute type (float, timestamp, bool, json, multi)', async () => {
    await sd.query('TRUNCATE RTINDEX docs');
    const s = await sinkFor();
    try {
      await w(s, [makeSinkEvent(ev('c', 'docs', { id: 5 }, { id: 5, title: "it's \\ quoted", price: '12.50', at: '2024-01-15T10:30:00.123456Z', flag: true, meta: { a: [1, 'x'] }, tags: [3, 1, 2] }), 1, 0)]);
      const [r] = await sd.all<Record<string, unknown>>('docs', 'id, price, at, flag, meta, tags', "MATCH('quoted')");
      assert.equal(Number(r!.price), 12.5);
      assert.equal(Number(r!.at), Math.floor(Date.parse('2024-01-15T10:30:00Z') / 1000));
      assert.equal(Number(r!.flag), 1);
      assert.deepEqual(JSON.parse(r!.meta as string), { a: [1, 'x'] });
      assert.equal(r!.tags, '1,2,3');
    } finally {
      await s.close();
    }
  });

  it('hashes non-integer keys to stable 63-bit ids', async () => {
    await sd.query('TRUNCATE RTINDEX things');
    const s = await sinkFor();
    try {
      await w(s, [
        makeSinkEvent(ev('c', 'things', { code: 'abc' }, { code: 'abc', label: 'alpha' }), 1, 0),
        makeSinkEvent(ev('c', 'things', { a: 1, b: 2 }, { a: 1, b: 2, code: 'ab', label: 'beta' }), 1, 1),
      ]);
      const rows = await sd.all<{ id: string; code: string }>('things', 'id, code');
      const want = [hashId({ code: 'abc' }), hashId({ a: 1, b: 2 })];
      assert.deepEqual(new Set(rows.map((r) => BigInt(r.id))), new Set(want));
      for (const id of want) assert.ok(id > 0n && id < 2n ** 63n);
      assert.equal(hashId({ code: 'abc' }), hashId({ code: 'abc' }));
    } finally {
      await s.close();
    }
  });

  it('keeps a high-water mark: open() returns the committed position and older events are skipped', async () => {
    await sd.query('TRUNCATE RTINDEX things');
    const dir = mkdtempSync(join(tmpdir(), 'trb-mc-'));
    const s = await sinkFor({}, dir);
    await w(s, [makeSinkEvent(ev('c', 'things', { code: 'k' }, { code: 'k', label: 'new' }), 5, 0)], '5');
    await s.close();
    const s2 = await manticore.create(manticore.config.parse({ url: sd.url }), { logger: pino({ level: 'silent' }), metrics: { inc() {}, set() {} }, signal: new AbortController().signal, pipeline: 'p', sinkName: 'mc', stateDir: dir });
    try {
      assert.deepEqual(await s2.open?.({ position: '1', state: undefined }), { position: '5' });
      await w(s2, [makeSinkEvent(ev('u', 'things', { code: 'k' }, { code: 'k', label: 'old' }), 3, 0)]);
      assert.deepEqual((await sd.all<{ id: string }>('things', 'id', "MATCH('new')")).length, 1, 'an older event did not overwrite');
    } finally {
      await s2.close();
    }
  });

  it('a value that cannot fit its attribute is a PoisonEventError and nothing of the batch is half-written', async () => {
    await sd.query('TRUNCATE RTINDEX docs');
    const s = await sinkFor();
    try {
      const good = makeSinkEvent(ev('c', 'docs', { id: 1 }, { id: 1, title: 'one', n: 1 }), 1, 0);
      const bad = makeSinkEvent(ev('c', 'docs', { id: 2 }, { id: 2, title: 'two', n: 'not a number' }), 1, 1);
      await assert.rejects(() => w(s, [good, bad]), (err: unknown) => err instanceof PoisonEventError && /column n → docs\.n \(bigint\)/.test(err.message));
      assert.equal((await sd.all('docs')).length, 0);
    } finally {
      await s.close();
    }
  });

  it('a missing index is a retryable configuration error naming the fix', async () => {
    const s = await sinkFor();
    try {
      await assert.rejects(
        () => w(s, [makeSinkEvent(ev('c', 'nosuch', { id: 1 }, { id: 1 }), 1, 0)]),
        (err: unknown) => (err as { retryable?: boolean }).retryable === true && /no index nosuch/.test((err as Error).message) && !(err instanceof PoisonEventError),
      );
    } finally {
      await s.close();
    }
  });
});
