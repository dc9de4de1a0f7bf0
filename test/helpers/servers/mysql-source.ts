/**
 * Whether the MariaDB e2e variants can run: the MySQL source connector must be registered
 * and MariaDB must answer. Returns false when they can run, or the reason to skip them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { REPO } from '../context.js';
import { MYSQL_URL } from '../env.js';

export async function mysqlSourceAvailable(): Promise<false | string> {
  if (!existsSync(join(REPO, 'dist', 'connectors', 'mysql', 'source.js'))) return 'the MySQL source connector is not built';
  try {
    const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
    await c.end();
  } catch (err) {
    return `MariaDB is not reachable at ${MYSQL_URL}: ${(err as Error).message}`;
  }
  return false;
}
