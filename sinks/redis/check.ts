import { Redis } from 'ioredis';
import type { SinkCheckContext, SinkProblem } from '../../src/sdk/index.js';

/** Preflight: Redis answers PING at `url` with these credentials. Reads only. */
export async function checkRedis(config: { url: string; password?: string }, ctx: SinkCheckContext): Promise<SinkProblem[]> {
  const redis = new Redis(config.url, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // one attempt: a preflight reports, it does not wait
    ...(config.password ? { password: config.password } : {}),
  });
  // A refused AUTH closes the connection: the command then fails with "Connection is closed",
  // and the reason arrives only as an 'error' event.
  let reason: Error | undefined;
  redis.on('error', (err: Error) => (reason ??= err));
  const onAbort = () => redis.disconnect();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await redis.connect();
    await redis.ping();
    return [];
  } catch (err) {
    const msg = (reason ?? (err as Error)).message;
    const auth = /NOAUTH|WRONGPASS|invalid password|invalid username/i.test(msg);
    return [{ message: `Redis: ${msg}`, fix: auth ? 'check the password (`password`, `password_file`, or the url)' : 'check that Redis runs at the configured url' }];
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    redis.disconnect();
  }
}
