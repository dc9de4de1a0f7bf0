import { describe, it } from 'node:test';
import { PgTestDb } from '../helpers/context.js';
import { mariaSource, pgSource, runSinkE2E, type E2ETarget } from '../helpers/sink-e2e.js';

describe('postgres sink end to end', { concurrency: false }, () => {
  it('a SIGKILLed pipeline (Postgres source) leaves the mirror equal to the source and the history exactly-once', { timeout: 90_000 }, async () => {
    await using src = await PgTestDb.create('pgsink_src');
    await using dst = await PgTestDb.create('pgsink_dst');
    await using source = await pgSource(src);
    const target: E2ETarget = {
      sinks: () => `  - name: mirror\n    type: postgres\n    url: ${dst.url}\n    schema: mirror\n  - name: history\n    type: postgres\n    url: ${dst.url}\n    schema: hist\n    mode: history`,
      async read() {
        const mirror = (await dst.query('SELECT * FROM mirror.items')).rows;
        const history = (await dst.query('SELECT * FROM hist.items ORDER BY _fence')).rows;
        return { mirror, history };
      },
    };
    await runSinkE2E({ pipeline: `pge2e_${process.pid}`, source, target });
  });

  it('the same with a MariaDB source', { timeout: 90_000 }, async () => {
    await using dst = await PgTestDb.create('pgsink_dstm');
    await using source = await mariaSource();
    const target: E2ETarget = {
      sinks: () => `  - name: mirror\n    type: postgres\n    url: ${dst.url}\n    schema: mirror\n  - name: history\n    type: postgres\n    url: ${dst.url}\n    schema: hist\n    mode: history`,
      async read() {
        return { mirror: (await dst.query('SELECT * FROM mirror.items')).rows, history: (await dst.query('SELECT * FROM hist.items ORDER BY _fence')).rows };
      },
    };
    await runSinkE2E({ pipeline: `pgme2e_${process.pid}`, source, target });
  });
});
