import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { PgTestDb } from '../helpers/context.js';
import { mariaSource, pgSource, runSinkE2E, type E2ETarget } from '../helpers/sink-e2e.js';

/** The duckdb sinks under test: a mirror file and a history file (read after the process stopped). */
function duckTarget(): E2ETarget {
  return {
    sinks: (dir) =>
      `  - name: mirror\n    type: duckdb\n    path: ${join(dir, 'mirror.duckdb')}\n  - name: history\n    type: duckdb\n    path: ${join(dir, 'history.duckdb')}\n    mode: history`,
    async read(dir, schema) {
      const read = async (file: string, sql: string) => {
        const inst = await DuckDBInstance.create(join(dir, file), { access_mode: 'READ_ONLY' });
        const c = await inst.connect();
        try {
          return (await c.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
        } finally {
          c.closeSync();
          inst.closeSync();
        }
      };
      return {
        mirror: await read('mirror.duckdb', `SELECT * FROM "${schema}".items`),
        history: await read('history.duckdb', `SELECT * FROM "${schema}".items ORDER BY _fence`),
      };
    },
  };
}

describe('duckdb sink end to end', { concurrency: false }, () => {
  it('a SIGKILLed pipeline (Postgres source) leaves the mirror equal to the source and the history exactly-once', { timeout: 90_000 }, async () => {
    await using src = await PgTestDb.create('ducksink_src');
    await using source = await pgSource(src);
    await runSinkE2E({ pipeline: `duckpg_${process.pid}`, source, target: duckTarget() });
  });

  it('the same with a MariaDB source', { timeout: 90_000 }, async () => {
    await using source = await mariaSource();
    await runSinkE2E({ pipeline: `duckmaria_${process.pid}`, source, target: duckTarget() });
  });
});
