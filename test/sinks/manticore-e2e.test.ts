/**
 * End to end: `tributary run` streams Postgres (and MariaDB) into a real Sphinx searchd
 * through the manticore sink, is SIGKILLed mid-load and restarted; the index's attributes
 * must equal the source table, and full-text MATCH must agree with the source's text.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { SearchdServer } from '../helpers/servers/searchd.js';
import { runCrashE2E, type E2ERow } from '../helpers/servers/e2e.js';
import { mysqlSourceAvailable } from '../helpers/servers/mysql-source.js';

const schema = ['rt_field = name', 'rt_attr_string = name_s', 'rt_attr_bigint = n', 'rt_attr_string = price', 'rt_attr_json = meta'];
const sd = await SearchdServer.start({ indexes: { pg_items: schema, my_items: schema } });
const skipMysql = await mysqlSourceAvailable();
after(() => sd[Symbol.asyncDispose]());

function target(index: string) {
  return {
    sinkYaml: `name: search\n    type: manticore\n    url: ${sd.url}\n    index: ${index}\n    fields: [name]\n    attributes: { name: name_s, n: n, price: price, meta: meta }\n`,
    async readTarget(): Promise<E2ERow[]> {
      const rows = await sd.all<Record<string, string>>(index, 'id, name_s, n, price, meta');
      return rows.map((r) => ({ id: Number(r.id), name: r.name_s!, n: Number(r.n), price: r.price!, meta: JSON.parse(r.meta!) }));
    },
  };
}

async function assertMatchAgrees(index: string, rows: E2ERow[]): Promise<void> {
  // Every word the writer uses: the full-text index must find exactly the rows whose current
  // name holds it (so updated text is found, replaced text and deleted rows are not).
  for (const word of ['alpha', 'bravo', 'updated', 'seed']) {
    const want = rows.filter((r) => r.name.split(' ').includes(word)).map((r) => r.id);
    const got = (await sd.all<{ id: string }>(index, 'id', `MATCH('${word}')`)).map((r) => Number(r.id));
    assert.deepEqual(got, want, `MATCH('${word}')`);
  }
}

describe('manticore sink end to end against real searchd (SIGKILL and restart)', { concurrency: false }, () => {
  it('postgres → searchd: the index equals the source table and MATCH agrees', { timeout: 90_000 }, async () => {
    const r = await runCrashE2E({ source: 'postgres', ...target('pg_items') });
    assert.ok(r.rows > 0);
    await assertMatchAgrees('pg_items', await target('pg_items').readTarget());
  });

  it('mariadb → searchd: the index equals the source table', { timeout: 90_000, skip: skipMysql }, async () => {
    const r = await runCrashE2E({ source: 'mysql', ...target('my_items') });
    assert.ok(r.rows > 0);
    await assertMatchAgrees('my_items', await target('my_items').readTarget());
  });
});
