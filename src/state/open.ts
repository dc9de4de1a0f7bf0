import type { Logger } from 'pino';
import type { PipelineConfig } from '../config/schema.js';
import { ErrorCodes, type TributaryError } from '../core/errors.js';
import { FileStateStore } from './file-store.js';
import type { StateStore } from './store.js';

/** What a pipeline that will write checkpoints asks of its store (only `tributary run` does). */
export interface StateLockOptions {
  pipeline: string;
  logger?: Logger;
  /** Called once if the Redis lease is lost while the pipeline runs: the pipeline must stop. */
  onLost?(err: TributaryError): void;
  /**
   * One of several processes that run parts of the pipeline (`run --role source|sinks`): no
   * pipeline lock or lease (each part has its own lock beside the log, src/runtime/roles.ts),
   * but the store must still be one that cannot lose an acknowledged checkpoint.
   */
  shared?: boolean;
}

/**
 * The state store a pipeline's `state:` block names. The Redis store is imported only when
 * it is used: ioredis costs about 40 ms of startup that a file-state pipeline never needs.
 *
 * With `lock`, the store is opened for writing by one running pipeline: it takes that
 * pipeline's exclusive lock (file: `<dir>/<pipeline>/pipeline.lock`; Redis: a renewed lease),
 * refusing with TRB3011 while another live process holds it, and the Redis store first
 * checks that it cannot lose an acknowledged checkpoint (TRB3010). `close()` releases it.
 * Readers (`status`, `validate`) open it without a lock.
 */
export async function openStateStore(state: PipelineConfig['state'], lock?: StateLockOptions): Promise<StateStore> {
  if (state.type === 'file') {
    const store = new FileStateStore(state.dir);
    if (lock && !lock.shared) await store.lock(lock.pipeline, lock.logger);
    return store;
  }
  const { RedisStateStore } = await import('./redis-store.js');
  const store = new RedisStateStore(state.url);
  if (!lock) return store;
  try {
    if (state.check_durability) await store.verifyDurable();
    else lock.logger?.warn('state.check_durability is off: the Redis state store is trusted to keep every acknowledged checkpoint (AOF with appendfsync always)');
    if (!lock.shared) await store.lease(lock.pipeline, lock.logger, (err) => (lock.onLost ? lock.onLost(err) : lock.logger?.error({ err }, err.message)));
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/**
 * {@link openStateStore} with the pipeline's lock, or null while a running `tributary run`
 * holds it (TRB3011): the caller then asks that process over HTTP instead.
 */
export async function openStateStoreUnlessLocked(state: PipelineConfig['state'], lock: StateLockOptions): Promise<StateStore | null> {
  try {
    return await openStateStore(state, lock);
  } catch (err) {
    if ((err as { code?: string }).code === ErrorCodes.STATE_LOCKED) return null;
    throw err;
  }
}
