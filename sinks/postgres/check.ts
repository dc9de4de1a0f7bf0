import pg from 'pg';
import type { SinkCheckContext, SinkProblem } from '../../src/sdk/index.js';
import { connectionString, type PostgresSinkConfig } from './config.js';

/**
 * Preflight: the target database accepts the connection, and the user may create the sink's
 * bookkeeping tables in `meta_schema` (or the schema in the database). Reads only.
 */
export async function checkPostgresSink(config: PostgresSinkConfig, ctx: SinkCheckContext): Promise<SinkProblem[]> {
  const c = new pg.Client({ connectionString: connectionString(config), connectionTimeoutMillis: 10_000, application_name: `tributary:${ctx.pipeline}:${ctx.sinkName}:check` });
  c.on('error', () => undefined);
  try {
    await c.connect();
  } catch (err) {
    return [{ message: `cannot connect to the target Postgres: ${(err as Error).message}`, fix: 'check the sink url (host, port, user, password, database) and that the server accepts connections' }];
  }
  try {
    const r = await c.query<{ schema_exists: boolean; can_create: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema_exists,
              CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) THEN has_schema_privilege($1, 'CREATE')
                   ELSE has_database_privilege(current_database(), 'CREATE') END AS can_create`,
      [config.meta_schema],
    );
    const row = r.rows[0]!;
    if (row.can_create) return [];
    return [
      {
        message: row.schema_exists ? `the user may not create tables in schema ${config.meta_schema}` : `schema ${config.meta_schema} does not exist and the user may not create it`,
        fix: row.schema_exists ? `GRANT CREATE ON SCHEMA ${config.meta_schema} TO <user>;` : `GRANT CREATE ON DATABASE <db> TO <user>; (or create schema ${config.meta_schema})`,
      },
    ];
  } catch (err) {
    return [{ message: `the target Postgres: ${(err as Error).message}`, fix: 'see the message' }];
  } finally {
    await c.end().catch(() => undefined);
  }
}
