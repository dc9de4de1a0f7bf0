import type { PipelineConfig } from '../config/schema.js';
import { FileStateStore } from './file-store.js';
import type { StateStore } from './store.js';

/**
 * The state store a pipeline's `state:` block names. The Redis store is imported only when
 * it is used: ioredis costs about 40 ms of startup that a file-state pipeline never needs.
 */
export async function openStateStore(state: PipelineConfig['state']): Promise<StateStore> {
  if (state.type === 'file') return new FileStateStore(state.dir);
  const { RedisStateStore } = await import('./redis-store.js');
  return new RedisStateStore(state.url);
}
