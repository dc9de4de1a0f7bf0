/** Connection settings for the real servers the tests use, with loopback defaults. */
export const PG_URL = process.env.TRIBUTARY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const MYSQL_URL = process.env.TRIBUTARY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';
export const REDIS_URL = process.env.TRIBUTARY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The Postgres URL for another database on the same server. */
export function pgUrlFor(db: string): string {
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The shared binlog test vectors: $TRIBUTARY_BINLOG_VECTORS, else `shared/` beside the
 * repository (how CI lays a clone out), else the workplace's copy.
 */
export function vectorsDir(): string {
  if (process.env.TRIBUTARY_BINLOG_VECTORS) return process.env.TRIBUTARY_BINLOG_VECTORS;
  let d = dirname(fileURLToPath(import.meta.url));
  while (d !== dirname(d) && !existsSync(join(d, 'bin', 'tributary.js'))) d = dirname(d);
  const beside = join(d, '..', 'shared', 'vectors', 'mysql-binlog');
  return existsSync(beside) ? beside : '/work/shared/vectors/mysql-binlog';
}
