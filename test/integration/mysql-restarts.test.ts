import { describe, it } from 'node:test';
import { uniqueServerId } from '../helpers/mysql.js';
import { restartScenario } from '../helpers/restart-run.js';
import { PrivateMariadb } from '../helpers/servers/private-mariadb.js';

describe('mysql: database restarts', { concurrency: false }, () => {
  it('waits for a MariaDB that is down at start, and rides out restarts during start-up and while streaming, losing and duplicating nothing', { timeout: 300_000 }, async () => {
    await using server = await PrivateMariadb.start();
    const name = `myrestart${process.pid}`;
    await server.query('CREATE DATABASE app; CREATE TABLE app.items (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)');
    // Fixed before the writer starts, so every change it commits is read whatever happens to
    // the pipeline's start-up.
    const [st] = await server.query<{ File: string; Position: number }[]>('SHOW MASTER STATUS');

    await restartScenario({
      label: 'mysql',
      name,
      sourceYaml: `type: mysql\nurl: ${server.url}\ntables: [app.items]\nsnapshot: never\nserver_id: ${uniqueServerId()}\nheartbeat_ms: 1000\nstart: { file: ${st!.File}, pos: ${st!.Position} }`,
      writer: async () => {
        const c = await server.connect('app');
        c.on('error', () => undefined);
        return {
          insert: async (id) => void (await c.query('INSERT INTO items (id) VALUES (?)', [id])),
          bump: async (id) => void (await c.query('UPDATE items SET v = v + 1 WHERE id = ?', [id])),
          end: () => c.end(),
        };
      },
      rows: async () => (await server.query<{ id: number; v: number }[]>('SELECT id, v FROM items ORDER BY id', [], 'app')).map((r) => ({ id: Number(r.id), v: Number(r.v) })),
      stop: (kind) => server.stop(kind === 'crash' ? 'kill' : 'clean'),
      start: () => server.start(),
      startupOutage: async (proc) => {
        // Killed the moment the pipeline logs that it begins to prepare (start position,
        // schema history), after its preflight passed.
        const hit = proc.onLog(/no checkpoint: starting a new pipeline/).then(() => server.stop('kill'));
        await server.start().catch(() => undefined); // it may be killed before it answers the test
        await hit;
      },
    });
  });
});
