import { describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { crashScenario } from '../helpers/crash-run.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';

/** MariaDB under SIGKILL: the same scenario as pg-crash (helpers/crash-run.ts), on a zstd log. */
describe('mysql: crash safety under SIGKILL', { concurrency: false }, () => {
  it('loses nothing and duplicates nothing across 3 SIGKILLs', { timeout: 180_000 }, async () => {
    await using db = await MysqlTestDb.create('crash');
    await db.query('CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note text)');
    const affected = async (p: Promise<[mysql.ResultSetHeader, unknown]>) => (await p)[0].affectedRows;
    await crashScenario({
      label: 'mysql',
      name: `mcrash${process.pid}`,
      sourceYaml: `type: mysql\nurl: ${db.url}\ntables: [${db.name}.items]\nsnapshot: never\nserver_id: ${uniqueServerId()}\nheartbeat_ms: 1000`,
      // zstd here (plain in pg-crash): one-row transactions make the small batches that a
      // write joins before compressing, and the SIGKILLs land among them.
      streamYaml: 'stream: { type: log, compression: zstd }',
      async writer() {
        const c = await db.connect();
        return {
          insert: (id, note) => affected(c.query<mysql.ResultSetHeader>('INSERT INTO items VALUES (?, ?, ?)', [id, 0, note])),
          update: (id, note) => affected(c.query<mysql.ResultSetHeader>('UPDATE items SET v = v + 1, note = ? WHERE id = ?', [note, id])),
          remove: (id) => affected(c.query<mysql.ResultSetHeader>('DELETE FROM items WHERE id = ?', [id])),
          end: () => c.end(),
        };
      },
      rows: () => db.query<{ id: string; v: number; note: string }[]>('SELECT id, v, note FROM items ORDER BY id'),
      // One row per transaction: the GTID identifies the event.
      txn: (e) => e.source.gtid,
    });
  });
});
