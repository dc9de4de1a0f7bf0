import { after } from 'node:test';
import { Redis } from 'ioredis';
import type { Row } from '../../src/core/event.js';
import { describeSinkConformance } from '../../src/testing/index.js';
import redisSink from '../../sinks/redis/index.js';
import { REDIS_URL } from '../helpers/env.js';

const redis = new Redis(REDIS_URL);
const prefix = `conf${process.pid}`;
after(async () => {
  // Leave nothing behind on the shared server.
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

describeSinkConformance({
  definition: redisSink,
  module: new URL('../../sinks/redis/index.js', import.meta.url),
  config: { url: REDIS_URL, key: `${prefix}:{table}:{key}`, fence_key: `${prefix}:fences` },
  kind: 'keyed',
  noPoison: 'a Redis string takes any JSON row; an event without a key is skipped with a warning (a table without a key cannot be cached by key), not rejected',
  async reset() {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  },
  async readState() {
    const keys = (await redis.keys(`${prefix}:conformance:*`)).sort();
    const m = new Map<string, Row>();
    for (const k of keys) {
      const v = await redis.get(k);
      if (v) m.set(JSON.stringify({ id: Number(k.split(':').pop()) }), JSON.parse(v));
    }
    return m;
  },
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeSinkEvent } from '../../src/testing/index.js';
import type { ChangeEvent } from '../../src/core/event.js';

function ev(op: ChangeEvent['op'], id: number, name: string): ChangeEvent {
  const row = { id, name };
  return {
    op,
    before: op === 'c' ? null : row,
    after: op === 'd' ? null : row,
    key: { id },
    source: { connector: 'postgresql', name: 'p', db: 'd', schema: 'public', table: 'things', ts_ms: 1, snapshot: 'false' },
    ts_ms: 1,
  };
}

describe('redis sink options', () => {
  it('ttl_seconds expires keys; the default key template is {schema}.{table}:{key}', async () => {
    const fence = `${prefix}:ttlf`;
    const sink = await redisSink.create(redisSink.config.parse({ url: REDIS_URL, ttl_seconds: 100, fence_key: fence }), { logger: undefined as never, metrics: { inc() {}, set() {} }, signal: new AbortController().signal, pipeline: 'p', sinkName: 's', stateDir: '/tmp' });
    try {
      await sink.open?.({ position: null, state: undefined });
      await sink.write([makeSinkEvent(ev('c', 424242, 'a'), 1, 0)], { signal: new AbortController().signal, commit: '1' });
      assert.deepEqual(JSON.parse((await redis.get('public.things:424242'))!), { id: 424242, name: 'a' });
      const ttl = await redis.ttl('public.things:424242');
      assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
    } finally {
      await redis.del('public.things:424242', fence);
      await sink.close();
    }
  });

  it('mode invalidate only deletes keys', async () => {
    const fence = `${prefix}:invf`;
    const key = `${prefix}:inv:{key}`;
    await redis.set(`${prefix}:inv:7`, 'cached');
    const sink = await redisSink.create(redisSink.config.parse({ url: REDIS_URL, key, mode: 'invalidate', fence_key: fence }), { logger: undefined as never, metrics: { inc() {}, set() {} }, signal: new AbortController().signal, pipeline: 'p', sinkName: 's', stateDir: '/tmp' });
    try {
      await sink.open?.({ position: null, state: undefined });
      await sink.write([makeSinkEvent(ev('u', 7, 'b'), 2, 0), makeSinkEvent(ev('c', 8, 'c'), 2, 1)], { signal: new AbortController().signal, commit: '2' });
      assert.equal(await redis.get(`${prefix}:inv:7`), null, 'an update invalidates');
      assert.equal(await redis.get(`${prefix}:inv:8`), null, 'an insert does not populate');
    } finally {
      await redis.del(fence);
      await sink.close();
    }
  });
});
