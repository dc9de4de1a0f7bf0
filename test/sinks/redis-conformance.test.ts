import { after } from 'node:test';
import { Redis } from 'ioredis';
import type { Row } from '../../src/core/event.js';
import { describeSinkConformance } from '../../src/testing/index.js';
import redisSink from '../../sinks/redis/index.js';
import { REDIS_URL } from '../helpers/env.js';

const redis = new Redis(REDIS_URL);
const prefix = `conf${process.pid}`;
after(() => redis.quit());

describeSinkConformance({
  definition: redisSink,
  config: { url: REDIS_URL, key: `${prefix}:{table}:{key}`, fence_key: `${prefix}:fences` },
  kind: 'keyed',
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
