import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/**
 * The binlog test vectors, kept in the repository (test/fixtures/mysql-binlog, with their
 * README, provenance and licences), so a fresh clone runs every test. Found from this file's
 * location, which is test/helpers/ in the sources and dist/test/helpers/ once compiled.
 */
export function vectorsDir(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (d !== dirname(d) && !existsSync(join(d, 'bin', 'tributary.js'))) d = dirname(d);
  return join(d, 'test', 'fixtures', 'mysql-binlog');
}

/** The binlog files among the vectors (not the README or the licence texts), sorted. */
export function vectorFiles(): string[] {
  return readdirSync(vectorsDir())
    .filter((f) => !f.endsWith('.md') && !f.startsWith('LICENSE'))
    .sort();
}
