import type { SinkCheckContext, SinkProblem } from '../../src/sdk/index.js';
import { ClickHouseClient } from './client.js';
import type { ClickHouseSinkConfig } from './index.js';

/**
 * Preflight: ClickHouse answers at `url`, accepts the credentials, and lets this user read
 * the catalog the sink plans its tables from. Reads only. (The database and tables are
 * created on first write when missing.)
 */
export async function checkClickHouse(config: ClickHouseSinkConfig, ctx: SinkCheckContext): Promise<SinkProblem[]> {
  const client = new ClickHouseClient({ url: config.url, username: config.username, password: config.password, timeoutMs: Math.min(config.timeout_ms, 10_000) });
  try {
    await client.rows('SELECT name FROM system.databases LIMIT 1', ctx.signal);
    return [];
  } catch (err) {
    return [{ message: (err as Error).message, fix: `check that ClickHouse's HTTP interface runs at ${client.safeUrl}, that username/password are right, and that the user may read system tables` }];
  }
}
