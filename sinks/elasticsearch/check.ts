import type { SinkCheckContext, SinkProblem } from '../../src/sdk/index.js';
import { EsClient } from './client.js';
import type { ElasticsearchSinkConfig } from './index.js';

/** Preflight: the cluster answers at `url` and accepts the credentials (GET /). Reads only. */
export async function checkElasticsearch(config: ElasticsearchSinkConfig, ctx: SinkCheckContext): Promise<SinkProblem[]> {
  const client = new EsClient({ url: config.url, username: config.username, password: config.password, apiKey: config.api_key, timeoutMs: Math.min(config.timeout_ms, 10_000) });
  try {
    await client.request('GET', '/', undefined, ctx.signal);
    return [];
  } catch (err) {
    const status = (err as { status?: number | null }).status;
    const fix = status === 401 || status === 403 ? 'check username/password or api_key, and the role\'s cluster monitor and index privileges' : `check that the cluster answers at ${client.safeUrl}`;
    return [{ message: (err as Error).message, fix }];
  }
}
