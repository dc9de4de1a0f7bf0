import { Redis } from 'ioredis';
import { z } from 'zod';
import { defineSink, once, renderTemplate, type SinkEvent } from '../../src/sdk/index.js';
import { checkRedis } from './check.js';

export const RedisSinkConfig = z.object({
  url: z.string().default('redis://127.0.0.1:6379').describe('Redis URL; the password is redacted from logs. A password inside it must be percent-encoded; or use `password`.'),
  password: z.string().optional().describe('Redis password (AUTH), instead of writing it into `url`; never logged.'),
  password_file: z.string().optional().describe('A file holding the password (a mounted Secret), read at start instead of `password`. Relative to the config file.'),
  key: z.string().default('{schema}.{table}:{key}').describe('Key template: {schema} {db} {table} {key} (primary-key values joined by ":").'),
  ttl_seconds: z.number().int().min(1).optional().describe('Expire cached rows after this many seconds.'),
  mode: z.enum(['upsert', 'invalidate']).default('upsert').describe('upsert: SET key JSON(after) on c/u/r and DEL on d. invalidate: DEL on every change.'),
  fence_key: z.string().optional().describe('Hash holding the last applied fence per key. Default `tributary:fence:<pipeline>:<sink>`.'),
});

/**
 * Applies a batch in one round trip. Each key is written only when the event's fence is
 * greater than the fence stored for that key, so a replay after a crash (or any older event)
 * never overwrites newer state. Deletes keep their fence as a tombstone, so a replayed
 * insert cannot resurrect a deleted row.
 */
const APPLY = `
local h = KEYS[1]
local n = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local applied = 0
local i = 3
for _ = 1, n do
  local k, f, op, v = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  local cur = redis.call('HGET', h, k)
  if (not cur) or f > cur then
    if op == 's' then
      if ttl > 0 then redis.call('SET', k, v, 'EX', ttl) else redis.call('SET', k, v) end
    else
      redis.call('DEL', k)
    end
    redis.call('HSET', h, k, f)
    applied = applied + 1
  end
end
return applied
`;

type Cmd = Redis & { tributaryApply(hash: string, ...args: (string | number)[]): Promise<number> };

export default defineSink({
  type: 'redis',
  description: 'A cache: SET key JSON(after) on insert/update/read, DEL on delete, fenced on the source position so replays never regress a key.',
  config: RedisSinkConfig,
  check: checkRedis,
  create(config, ctx) {
    // An explicit password wins over one in the URL (ioredis merges the options over it).
    const redis = new Redis(config.url, { maxRetriesPerRequest: null, lazyConnect: true, ...(config.password ? { password: config.password } : {}) }) as Cmd;
    redis.defineCommand('tributaryApply', { numberOfKeys: 1, lua: APPLY });
    redis.on('error', () => undefined); // surfaced through the failing command instead
    const fenceKey = config.fence_key ?? `tributary:fence:${ctx.pipeline}:${ctx.sinkName}`;
    const ttl = config.ttl_seconds ?? 0;
    const keyless = new Set<string>();

    async function truncate(e: SinkEvent): Promise<void> {
      // Delete every key of the table (the template with {key} = *), fenced like a delete.
      const pattern = renderTemplate(config.key, { ...e.event, key: null }).replace(/[*?[\]]/g, '\\$&') + (config.key.includes('{key}') ? '*' : '');
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length) {
          const args: (string | number)[] = [keys.length, ttl];
          for (const k of keys) args.push(k, e.fence, 'd', '');
          await redis.tributaryApply(fenceKey, ...args);
        }
      } while (cursor !== '0');
    }

    return {
      async open() {
        await redis.connect().catch((err: Error) => {
          if (!/already connect/i.test(err.message)) throw err;
        });
      },
      async write(events: readonly SinkEvent[]) {
        let args: (string | number)[] = [];
        let n = 0;
        const flush = async () => {
          if (!n) return;
          await redis.tributaryApply(fenceKey, n, ttl, ...args);
          args = [];
          n = 0;
        };
        for (const e of events) {
          const ev = e.event;
          if (ev.op === 't') {
            await flush();
            await truncate(e);
            continue;
          }
          if (!ev.key) {
            // A table without a key cannot be cached by key: say so once per table.
            if (!keyless.has(e.table)) {
              keyless.add(e.table);
              ctx.logger.warn({ table: e.table }, 'redis: events of a table without a primary key are not cached; give it a primary key or REPLICA IDENTITY FULL');
            }
            continue;
          }
          const key = renderTemplate(config.key, ev);
          if (config.mode === 'invalidate' || ev.op === 'd') args.push(key, e.fence, 'd', '');
          else args.push(key, e.fence, 's', JSON.stringify(ev.after));
          n++;
        }
        await flush();
      },
      close: once(async () => {
        await redis.quit().catch(() => redis.disconnect());
      }),
    };
  },
});
