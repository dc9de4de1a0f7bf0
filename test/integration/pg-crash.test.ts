import { describe, it } from 'node:test';
import { PgTestDb } from '../helpers/context.js';
import { crashScenario } from '../helpers/crash-run.js';

/** Postgres under SIGKILL: nothing lost, nothing doubled (the scenario is in helpers/crash-run.ts). */
describe('postgres: crash safety under SIGKILL', { concurrency: false }, () => {
  it('loses nothing and duplicates nothing across 3 SIGKILLs', { timeout: 240_000 }, async () => {
    await using db = await PgTestDb.create('crash');
    await db.query('CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note text); ALTER TABLE items REPLICA IDENTITY FULL');
    await crashScenario({
      label: 'postgres',
      name: 'crash',
      sourceYaml: `type: postgres\nurl: ${db.url}\ntables: [public.items]\nsnapshot: never\nstatus_interval_ms: 200`,
      async writer() {
        const c = await db.connect();
        return {
          insert: async (id, note) => (await c.query('INSERT INTO items VALUES ($1, $2, $3)', [id, 0, note])).rowCount ?? 0,
          update: async (id, note) => (await c.query('UPDATE items SET v = v + 1, note = $2 WHERE id = $1', [id, note])).rowCount ?? 0,
          remove: async (id) => (await c.query('DELETE FROM items WHERE id = $1', [id])).rowCount ?? 0,
          end: () => c.end(),
        };
      },
      rows: async () => (await db.query<{ id: string; v: number; note: string }>('SELECT id, v, note FROM items ORDER BY id')).rows,
      // One row per transaction: the transaction id identifies the event.
      txn: (e) => e.source.txId,
    });
  });
});
