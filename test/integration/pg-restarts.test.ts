import { describe, it } from 'node:test';
import pg from 'pg';
import { waitFor } from '../helpers/context.js';
import { restartScenario } from '../helpers/restart-run.js';
import { PrivatePostgres } from '../helpers/servers/private-pg.js';

describe('postgres: database restarts', { concurrency: false }, () => {
  it('waits for a database that is down at start, and rides out restarts during start-up and while streaming, losing and duplicating nothing', { timeout: 300_000 }, async () => {
    await using server = await PrivatePostgres.start();
    const name = `pgrestart${process.pid}`;
    await server.query("CREATE ROLE cdc LOGIN REPLICATION");
    await server.query("CREATE DATABASE app OWNER cdc");
    // items is what the writer changes; t2 is only captured, so that the pipeline's start-up
    // (adding it to the publication) can be held on a lock while the server is stopped.
    await server.query('SET ROLE cdc; CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL DEFAULT 0); CREATE TABLE t2 (id int PRIMARY KEY)', [], 'app');
    // Created before the writer starts, so every change it commits is in the slot whatever
    // happens to the pipeline's start-up.
    await server.query(`SET ROLE cdc; CREATE PUBLICATION tributary_${name} FOR TABLE items`, [], 'app');
    await server.query(`SELECT pg_create_logical_replication_slot('tributary_${name}', 'pgoutput')`, [], 'app');
    // cdc cannot connect until the test says so (a superuser, the writer, still can): the
    // test can take its lock before the pipeline's first attempt gets in.
    await server.query('ALTER DATABASE app CONNECTION LIMIT 0');

    await restartScenario({
      label: 'postgres',
      name,
      sourceYaml: `type: postgres\nurl: postgres://cdc@127.0.0.1:${server.port}/app\ntables: [public.items, public.t2]\nsnapshot: never\nheartbeat_ms: 1000\nstatus_interval_ms: 500`,
      writer: async () => {
        const c = new pg.Client({ connectionString: server.url('app'), connectionTimeoutMillis: 2000 });
        c.on('error', () => undefined);
        await c.connect();
        return {
          insert: async (id) => void (await c.query('INSERT INTO items (id) VALUES ($1)', [id])),
          bump: async (id) => void (await c.query('UPDATE items SET v = v + 1 WHERE id = $1', [id])),
          end: () => c.end(),
        };
      },
      rows: async () => (await server.query<{ id: number; v: number }>('SELECT id, v FROM items ORDER BY id', [], 'app')).rows,
      stop: (kind) => server.stop(kind === 'crash' ? 'immediate' : 'fast'),
      start: () => server.start(),
      startupOutage: async () => {
        await server.start();
        const locker = new pg.Client({ connectionString: server.url('app') });
        locker.on('error', () => undefined);
        await locker.connect();
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE');
        await server.query('ALTER DATABASE app CONNECTION LIMIT -1');
        // The pipeline passes preflight, then waits for the lock to add t2 to the publication.
        await waitFor(
          async () =>
            (
              await server.query(
                "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND l.relation = 't2'::regclass AND a.application_name = 'tributary-control'",
                [],
                'app',
              )
            ).rowCount! > 0,
          { timeoutMs: 60_000, what: 'the pipeline to be held in its start-up' },
        );
        await server.stop('fast');
        await locker.end().catch(() => undefined);
      },
    });
  });
});
