import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { describeHolder, holderState, markHeld, newHolder, parseHolder, type Holder } from './holder.js';
import type { SinkCheckpointRecord, StateStore } from './store.js';
import { byId, type DeadLetterQueue, type DeadLetterRemoval, type StoredDeadLetter } from './dead-letters.js';

/** How long a lease lives without renewal; renewed every third of it. */
export const LEASE_MS = 15_000;

// Fenced writes: applied only while KEYS[1] (the lease) holds ARGV[1] (our token).
const FENCED_HSET = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) return 1`;
const FENCED_HDEL = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2]) return 1`;
const RENEW = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1`;
// Replace a dead holder's lease, only if it is still that holder's.
const TAKE_OVER = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1`;
// Dead letters, fenced like the checkpoints (ARGV[1] '' when no lease is held: offline reads
// and tests). put: HSET pairs; remove: LPUSH the history entry (capped), then HDEL the ids.
const DLQ_WRITE = `if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'put' then
  for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
else
  if ARGV[3] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[3]) redis.call('LTRIM', KEYS[3], 0, 9999) end
  for i = 4, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
end
return 1`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1`;

/**
 * State in Redis hashes: `tributary:<pipeline>:sinks` (field per sink) and
 * `tributary:<pipeline>:state` (field per key).
 *
 * Durability: a checkpoint is acknowledged to the database once this store has it, so the
 * store must not lose an acknowledged write. `verifyDurable()` (run when a pipeline opens the
 * store) refuses a Redis that could: one without AOF, or with `appendfsync` other than
 * `always` (everysec loses up to a second of writes in a power loss or OS crash; the jsonl
 * sink would then truncate back to an older offset whose lines the database never sends again).
 *
 * Exclusivity: `lease()` takes `tributary:<pipeline>:lock` (SET NX PX, renewed every
 * LEASE_MS/3). While it is held, every write is fenced by it (a Lua script writes only if the
 * lease still holds our token), so a process that lost its lease cannot overwrite the
 * checkpoints of the one that took over; losing it stops the pipeline (TRB3012).
 */
export class RedisStateStore implements StateStore {
  private readonly redis: Redis;
  private closed?: Promise<void>;
  private holder: Holder | null = null;
  private renewTimer?: NodeJS.Timeout;
  private lost: TributaryError | null = null;
  private leasedKey: string | null = null;

  constructor(
    url: string,
    private readonly prefix = 'tributary',
  ) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: null });
  }

  private lockKey(pipeline: string): string {
    return `${this.prefix}:${pipeline}:lock`;
  }

  /**
   * Refuse (TRB3010) a Redis that may lose an acknowledged write: AOF off, or `appendfsync`
   * not `always`. `CONFIG GET` must be allowed; where a managed Redis forbids it, the check
   * can be turned off (`state.check_durability: false`) once the provider's settings are
   * known to be right.
   */
  async verifyDurable(): Promise<void> {
    let conf: string[];
    try {
      conf = (await this.redis.config('GET', 'append*')) as string[];
    } catch (err) {
      throw new TributaryError(ErrorCodes.STATE_NOT_DURABLE, `cannot check that the Redis state store is durable: CONFIG GET failed (${(err as Error).message})`, {
        fix: 'allow CONFIG GET for this user, or make sure Redis runs with `appendonly yes` and `appendfsync always` and set state.check_durability: false',
        cause: err,
      });
    }
    const get = (k: string) => conf[conf.indexOf(k) + 1];
    const problems: string[] = [];
    if (get('appendonly') !== 'yes') problems.push(`appendonly is ${get('appendonly') ?? 'unknown'}`);
    if (get('appendfsync') !== 'always') problems.push(`appendfsync is ${get('appendfsync') ?? 'unknown'}`);
    if (problems.length) {
      throw new TributaryError(
        ErrorCodes.STATE_NOT_DURABLE,
        `the Redis state store could lose acknowledged checkpoints (${problems.join(', ')}): after a Redis crash the pipeline would resume behind what the database was told is safe, and lose those changes`,
        { fix: 'run Redis with `appendonly yes` and `appendfsync always` (redis.conf, or CONFIG SET appendonly yes; CONFIG SET appendfsync always; CONFIG REWRITE), or use state: { type: file }' },
      );
    }
  }

  /**
   * Take the pipeline's lease, or throw TRB3011 naming its live holder. A lease left by a
   * holder on this host that is no longer running is taken over at once; one from another
   * host is free only when it expires (LEASE_MS after its holder stopped renewing it).
   * `onLost` is called once if the lease is lost later (Redis unreachable for longer than
   * the lease, or someone else took it): the pipeline must stop.
   */
  async lease(pipeline: string, logger: Logger | undefined, onLost: (err: TributaryError) => void): Promise<void> {
    const key = this.lockKey(pipeline);
    const me = newHolder();
    const value = JSON.stringify(me);
    for (let attempt = 0; ; attempt++) {
      if ((await this.redis.set(key, value, 'PX', LEASE_MS, 'NX')) === 'OK') break;
      const cur = await this.redis.get(key);
      if (cur === null) continue; // expired meanwhile
      const holder = parseHolder(cur);
      const state = holder ? holderState(holder) : 'unknown';
      if (state !== 'dead' || attempt >= 5) {
        const ttl = await this.redis.pttl(key);
        throw new TributaryError(ErrorCodes.STATE_LOCKED, `pipeline ${pipeline} is already running${holder ? ` (${describeHolder(holder)})` : ''}: Redis key ${key} holds its lease`, {
          fix: `stop the other \`tributary run\` of this pipeline first${ttl > 0 ? `; if it is gone, its lease expires in ${Math.ceil(ttl / 1000)} s` : ''}`,
        });
      }
      if ((await this.redis.eval(TAKE_OVER, 1, key, cur, value, LEASE_MS)) === 1) {
        logger?.warn({ key, stale: holder }, `lease of pipeline ${pipeline} was left by ${describeHolder(holder!)}, which is not running: taken over`);
        break;
      }
    }
    this.holder = me;
    this.leasedKey = key;
    markHeld(me, true);
    let validUntil = Date.now() + LEASE_MS;
    const loseWith = (why: string) => {
      if (this.lost) return;
      this.lost = new TributaryError(ErrorCodes.STATE_LEASE_LOST, `pipeline ${pipeline} lost its lease in the Redis state store (${why}); another process may run it now`, {
        fix: 'this process stops; check that only one `tributary run` serves the pipeline and that Redis stays reachable, then start it again',
      });
      clearInterval(this.renewTimer);
      onLost(this.lost);
    };
    let renewing = false;
    this.renewTimer = setInterval(() => {
      // Measured from when a renewal was sent: the lease is ours for LEASE_MS after that.
      if (Date.now() > validUntil) return loseWith('not renewed in time: Redis was unreachable');
      if (renewing) return;
      renewing = true;
      const sent = Date.now();
      this.redis.eval(RENEW, 1, key, value, LEASE_MS).then(
        (ok) => {
          renewing = false;
          if (ok === 1) validUntil = sent + LEASE_MS;
          else loseWith('it expired or another process holds it');
        },
        () => (renewing = false),
      );
    }, Math.floor(LEASE_MS / 6));
    this.renewTimer.unref();
  }

  private async fenced(script: string, pipeline: string, hash: string, ...args: string[]): Promise<void> {
    if (this.lost) throw this.lost;
    if (!this.holder) {
      if (args.length === 2) await this.redis.hset(hash, args[0]!, args[1]!);
      else await this.redis.hdel(hash, args[0]!);
      return;
    }
    if ((await this.redis.eval(script, 2, this.lockKey(pipeline), hash, JSON.stringify(this.holder), ...args)) !== 1) {
      throw (this.lost ??= new TributaryError(ErrorCodes.STATE_LEASE_LOST, `pipeline ${pipeline} lost its lease in the Redis state store; the write was refused`, {
        fix: 'this process stops; check that only one `tributary run` serves the pipeline, then start it again',
      }));
    }
  }

  async loadSinks(pipeline: string): Promise<Record<string, SinkCheckpointRecord>> {
    const h = await this.redis.hgetall(`${this.prefix}:${pipeline}:sinks`);
    const out: Record<string, SinkCheckpointRecord> = {};
    for (const [k, v] of Object.entries(h)) out[k] = JSON.parse(v);
    return out;
  }

  async saveSink(pipeline: string, sink: string, rec: SinkCheckpointRecord): Promise<void> {
    await this.fenced(FENCED_HSET, pipeline, `${this.prefix}:${pipeline}:sinks`, sink, JSON.stringify(rec));
  }

  async get<T>(pipeline: string, key: string): Promise<T | undefined> {
    const v = await this.redis.hget(`${this.prefix}:${pipeline}:state`, key);
    return v == null ? undefined : (JSON.parse(v) as T);
  }

  async put(pipeline: string, key: string, value: unknown): Promise<void> {
    await this.fenced(FENCED_HSET, pipeline, `${this.prefix}:${pipeline}:state`, key, JSON.stringify(value));
  }

  async delete(pipeline: string, key: string): Promise<void> {
    await this.fenced(FENCED_HDEL, pipeline, `${this.prefix}:${pipeline}:state`, key);
  }

  /**
   * A sink's dead letters: the hash `tributary:<pipeline>:dlq:<sink>` (id → dead letter) and
   * the capped list `…:history` of removals. Shared by every process of the deployment, and
   * written under the pipeline's lease like the checkpoints.
   */
  deadLetters(pipeline: string, sink: string): DeadLetterQueue {
    const hash = `${this.prefix}:${pipeline}:dlq:${sink}`;
    const hist = `${hash}:history`;
    const write = async (mode: 'put' | 'remove', entry: string, args: string[]) => {
      if (this.lost) throw this.lost;
      // In slices: a Lua call takes a bounded number of arguments.
      for (let i = 0; i < Math.max(args.length, 1); i += 2000) {
        const part = args.slice(i, i + 2000);
        const ok = await this.redis.eval(DLQ_WRITE, 3, this.lockKey(pipeline), hash, hist, this.holder ? JSON.stringify(this.holder) : '', mode, i === 0 ? entry : '', ...part);
        if (ok !== 1) {
          throw (this.lost ??= new TributaryError(ErrorCodes.STATE_LEASE_LOST, `pipeline ${pipeline} lost its lease in the Redis state store; the dead-letter write was refused`, {
            fix: 'this process stops; check that only one `tributary run` serves the pipeline, then start it again',
          }));
        }
        if (mode === 'remove') entry = '';
      }
    };
    return {
      list: async () => {
        const h = await this.redis.hgetall(hash);
        return Object.values(h)
          .map((v) => {
            try {
              return JSON.parse(v) as StoredDeadLetter;
            } catch {
              throw new TributaryError(ErrorCodes.DLQ_STORE, `Redis hash ${hash} holds a value that is not a dead letter`, { fix: `remove the damaged field from ${hash}` });
            }
          })
          .sort(byId);
      },
      put: async (items: StoredDeadLetter[]) => {
        if (items.length) await write('put', '', items.flatMap((it) => [it.id, JSON.stringify(it)]));
      },
      remove: async (items: StoredDeadLetter[], why: DeadLetterRemoval) => {
        if (!items.length) return;
        const ids = items.map((i) => i.id);
        await write('remove', JSON.stringify({ ...why, ids, ...(why.outcome === 'discarded' ? { items } : {}) }), ids);
      },
      history: async () =>
        (await this.redis.lrange(hist, 0, -1)).reverse().map((l) => {
          const { items: _items, ...rest } = JSON.parse(l) as DeadLetterRemoval & { ids: string[]; items?: unknown };
          return rest;
        }),
    };
  }

  /** Idempotent: release the lease (if still ours), then disconnect. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      clearInterval(this.renewTimer);
      const h = this.holder;
      if (h) {
        markHeld(h, false);
        this.holder = null;
        // Bounded: a Redis that is down must not hold up the shutdown (the lease then expires).
        const key = this.leasedKey;
        if (key) await Promise.race([this.redis.eval(RELEASE, 1, key, JSON.stringify(h)).catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
      }
      await Promise.race([this.redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
      this.redis.disconnect();
    })());
  }
}
