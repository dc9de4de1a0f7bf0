/**
 * End to end: `tributary run` streams Postgres (and MariaDB) into a real clickhouse-server
 * through the clickhouse sink, is SIGKILLed mid-load and restarted; the mirror's
 * `FINAL WHERE _deleted = 0` rows must equal the source table.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ClickHouseServer } from '../helpers/servers/clickhouse.js';
import { runCrashE2E, type E2ERow } from '../helpers/servers/e2e.js';
import { mysqlSourceAvailable } from '../helpers/servers/mysql-source.js';

const ch = await ClickHouseServer.start();
const skipMysql = await mysqlSourceAvailable();
after(() => ch[Symbol.asyncDispose]());

function target(database: string) {
  return {
    sinkYaml: `name: warehouse\n    type: clickhouse\n    url: ${ch.url}\n    database: ${database}\n`,
    async readTarget(): Promise<E2ERow[]> {
      const rows = await ch.rows<Record<string, string>>(`SELECT id, name, n, price, meta FROM ${database}.items FINAL WHERE _deleted = 0`).catch(() => []);
      return rows.map((r) => ({ id: Number(r.id), name: r.name!, n: Number(r.n), price: r.price!, meta: JSON.parse(r.meta!) }));
    },
  };
}

describe('clickhouse sink end to end (SIGKILL and restart)', { concurrency: false }, () => {
  it('postgres → clickhouse: the mirror equals the source table', { timeout: 90_000 }, async () => {
    const r = await runCrashE2E({ source: 'postgres', ...target(`e2e_pg_${process.pid}`) });
    assert.ok(r.rows > 0);
  });

  it('mariadb → clickhouse: the mirror equals the source table', { timeout: 90_000, skip: skipMysql }, async () => {
    const r = await runCrashE2E({ source: 'mysql', ...target(`e2e_my_${process.pid}`) });
    assert.ok(r.rows > 0);
  });
});
