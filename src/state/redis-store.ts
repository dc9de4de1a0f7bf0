import { Redis } from 'ioredis';
import type { SinkCheckpointRecord, StateStore } from './store.js';

/**
 * State in Redis hashes: `tributary:<pipeline>:sinks` (field per sink) and
 * `tributary:<pipeline>:state` (field per key). Writes wait for `WAIT 0`-free acknowledgement
 * of the primary only; run Redis with AOF (`appendfsync everysec` or `always`) for durability.
 */
export class RedisStateStore implements StateStore {
  private readonly redis: Redis;
  private closed?: Promise<void>;

  constructor(url: string, private readonly prefix = 'tributary') {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: null });
  }

  async loadSinks(pipeline: string): Promise<Record<string, SinkCheckpointRecord>> {
    const h = await this.redis.hgetall(`${this.prefix}:${pipeline}:sinks`);
    const out: Record<string, SinkCheckpointRecord> = {};
    for (const [k, v] of Object.entries(h)) out[k] = JSON.parse(v);
    return out;
  }

  async saveSink(pipeline: string, sink: string, rec: SinkCheckpointRecord): Promise<void> {
    await this.redis.hset(`${this.prefix}:${pipeline}:sinks`, sink, JSON.stringify(rec));
  }

  async get<T>(pipeline: string, key: string): Promise<T | undefined> {
    const v = await this.redis.hget(`${this.prefix}:${pipeline}:state`, key);
    return v == null ? undefined : (JSON.parse(v) as T);
  }

  async put(pipeline: string, key: string, value: unknown): Promise<void> {
    await this.redis.hset(`${this.prefix}:${pipeline}:state`, key, JSON.stringify(value));
  }

  async delete(pipeline: string, key: string): Promise<void> {
    await this.redis.hdel(`${this.prefix}:${pipeline}:state`, key);
  }

  close(): Promise<void> {
    return (this.closed ??= this.redis.quit().then(
      () => undefined,
      () => undefined,
    ));
  }
}
