/**
 * End to end against the ES stub (no real cluster runs here): `tributary run` streams
 * Postgres (and MariaDB) into the stub through the elasticsearch sink with basic auth, is
 * SIGKILLed mid-load and restarted, while the stub rejects some bulk items with 429; the
 * stub's documents must equal the source table, and no request may carry the password in
 * its URL.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EsStub } from '../helpers/servers/es-stub.js';
import { runCrashE2E, type E2ERow } from '../helpers/servers/e2e.js';
import { mysqlSourceAvailable } from '../helpers/servers/mysql-source.js';

const es = await EsStub.start({ auth: 'Basic ' + Buffer.from('writer:s3cret-pass').toString('base64') });
const skipMysql = await mysqlSourceAvailable();
after(() => es[Symbol.asyncDispose]());

function target(index: string) {
  return {
    sinkYaml: `name: search\n    type: elasticsearch\n    url: ${es.url}\n    index: ${index}\n    username: writer\n    password: s3cret-pass\n    backoff_ms: 10\n`,
    async readTarget(): Promise<E2ERow[]> {
      return [...es.docs(index).values()].map((d) => ({ id: Number(d.id), name: String(d.name), n: Number(d.n), price: String(d.price), meta: typeof d.meta === 'string' ? JSON.parse(d.meta) : d.meta }));
    },
  };
}

describe('elasticsearch sink end to end against the stub (SIGKILL and restart)', { concurrency: false }, () => {
  it('postgres → elasticsearch: the documents equal the source table', { timeout: 90_000 }, async () => {
    const timer = setInterval(() => es.rejectNext(2, 429), 700);
    try {
      const r = await runCrashE2E({ source: 'postgres', ...target('pg_items') });
      assert.ok(r.rows > 0);
    } finally {
      clearInterval(timer);
    }
    assert.ok(es.requests.filter((q) => q.path === '/_bulk').length > 2);
    assert.ok(es.requests.every((q) => !q.path.includes('s3cret')));
  });

  it('mariadb → elasticsearch: the documents equal the source table', { timeout: 90_000, skip: skipMysql }, async () => {
    const r = await runCrashE2E({ source: 'mysql', ...target('my_items') });
    assert.ok(r.rows > 0);
  });
});
