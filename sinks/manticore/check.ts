import type { SinkCheckContext, SinkProblem } from '../../src/sdk/index.js';
import { connect } from './sphinxql.js';

/** Preflight: searchd answers SphinxQL at `url` (`SHOW TABLES`). Reads only. */
export async function checkManticore(config: { url: string; timeout_ms: number }, ctx: SinkCheckContext): Promise<SinkProblem[]> {
  const u = new URL(config.url);
  u.password = '';
  try {
    const c = await connect(config.url, Math.min(config.timeout_ms, 10_000));
    const onAbort = () => c.destroy();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await c.query('SHOW TABLES');
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      c.destroy();
    }
    return [];
  } catch (err) {
    return [{ message: `searchd at ${u.toString()}: ${(err as Error).message}`, fix: 'check that searchd runs with a mysql41 listener at the configured url' }];
  }
}
