import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { PgTestDb, TempDir } from '../helpers/context.js';
import { EmbeddedPg } from '../helpers/embedded-pg.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';
import { visibilityRace, type RaceSubject } from '../helpers/visibility-race.js';

/**
 * Commit order in the log is not visibility order. A Postgres transaction writes its commit
 * record, then (after any synchronous-replication wait) leaves the ProcArray; only then do new
 * snapshots see it. A chunk whose low watermark is written in between reads the row as it was
 * before that transaction although the transaction's change precedes the watermark in the WAL.
 * Unreconciled, the chunk's old row is emitted after the change and the sinks keep it.
 */

const RUNS = Number(process.env.TRIBUTARY_RACE_RUNS ?? 1);
const SYNC_STANDBY = 'tributary_lagging_standby';

function pgConfig(dir: TempDir, url: string, name: string, extraSinks: string): string {
  return dir.file(
    `${name}.yaml`,
    `name: ${name}
source:
  type: postgres
  url: ${url}
  tables: [public.t, public.marker]
  snapshot: initial
  snapshot_chunk_rows: 100
  snapshot_workers: 2
  status_interval_ms: 200
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/out.jsonl
${extraSinks}
http: { port: 0 }
`,
  );
}

const PG_SETUP = (rows: number) =>
  `CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO t SELECT g, g FROM generate_series(1, ${rows}) g; ANALYZE t; CREATE TABLE marker (id int PRIMARY KEY)`;

function pgSubject(o: { label: string; name: string; dir: TempDir; url: string; rows: number; writers: number; syncCommit: boolean; client(): Promise<pg.Client> }): RaceSubject {
  return {
    label: o.label,
    name: o.name,
    dir: o.dir,
    rows: o.rows,
    writers: o.writers,
    config: (extra) => pgConfig(o.dir, o.url, o.name, extra),
    async writer() {
      const c = await o.client();
      c.on('notice', () => undefined);
      // The application's transactions wait for the synchronous standby; Tributary's
      // sessions use the server default (local).
      if (o.syncCommit) await c.query('SET synchronous_commit = on');
      return {
        update: (id, v) => c.query('UPDATE t SET v = $2 WHERE id = $1', [id, v]),
        insert: (id, v) => c.query('INSERT INTO t VALUES ($1, $2)', [id, v]),
        remove: (id) => c.query('DELETE FROM t WHERE id = $1', [id]),
        end: () => c.end(),
      };
    },
    async table() {
      const c = await o.client();
      try {
        return (await c.query<{ id: string; v: string }>('SELECT id, v FROM t')).rows;
      } finally {
        await c.end();
      }
    },
    async mark(n) {
      const c = await o.client();
      try {
        await c.query('INSERT INTO marker VALUES ($1)', [n]);
      } finally {
        await c.end();
      }
    },
  };
}

describe('snapshot chunks against commit visibility (adversarial writers)', { concurrency: false }, () => {
  it('postgres with a lagging synchronous standby: the sinks equal the table', { timeout: 600_000 }, async () => {
    for (let run = 0; run < RUNS; run++) {
      // A private server: synchronous replication is a server setting. Commits of the
      // writers wait for a standby that acknowledges after a few milliseconds (here: a
      // loop that ends each wait, as the standby's reply would), so each of them sits
      // committed in the WAL but invisible to new snapshots for that long.
      await using server = await EmbeddedPg.start(['-c', 'wal_level=logical', '-c', `synchronous_standby_names=${SYNC_STANDBY}`, '-c', 'synchronous_commit=local', '-c', 'max_connections=60']);
      await server.query('CREATE DATABASE race');
      await server.query(PG_SETUP(20000), undefined, 'race');
      await using dir = new TempDir();
      const client = async () => {
        const c = new pg.Client({ connectionString: server.url('race') });
        await c.connect();
        return c;
      };
      const subject = pgSubject({ label: `postgres sync standby run ${run + 1}`, name: `vis${process.pid % 100000}s${run}`, dir, url: server.url('race'), rows: 20000, writers: 12, syncCommit: true, client });
      subject.beside = async (stop) => {
        const c = await client();
        try {
          while (!stop()) {
            const r = await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
            for (const { pid } of r.rows) if (Math.random() < 0.3) await c.query('SELECT pg_cancel_backend($1)', [pid]);
            await new Promise((res) => setTimeout(res, 2));
          }
        } finally {
          await c.end();
        }
      };
      const r = await visibilityRace(subject);
      assert.ok(r.writes > 300, `the writers were busy during the snapshot (${r.writes} writes)`);
      assert.deepEqual(r.jsonlWrong.slice(0, 20), [], `jsonl replay differs from the table in ${r.jsonlWrong.length} rows`);
      assert.deepEqual(r.redisWrong.slice(0, 20), [], `Redis differs from the table in ${r.redisWrong.length} rows`);
    }
  });

  it('postgres on the shared server, writers committing as fast as they can: the sinks equal the table', { timeout: 600_000 }, async () => {
    for (let run = 0; run < RUNS; run++) {
      await using db = await PgTestDb.create('visp');
      await db.query(PG_SETUP(20000));
      await using dir = new TempDir();
      const r = await visibilityRace(
        pgSubject({ label: `postgres shared run ${run + 1}`, name: `visp${process.pid % 100000}r${run}`, dir, url: db.url, rows: 20000, writers: 8, syncCommit: false, client: () => db.connect() }),
      );
      assert.ok(r.writes > 300, `the writers were busy during the snapshot (${r.writes} writes)`);
      assert.deepEqual(r.jsonlWrong.slice(0, 20), [], `jsonl replay differs from the table in ${r.jsonlWrong.length} rows`);
      assert.deepEqual(r.redisWrong.slice(0, 20), [], `Redis differs from the table in ${r.redisWrong.length} rows`);
    }
  });

  it('mariadb: binlog order against InnoDB visibility, the sinks equal the table', { timeout: 600_000 }, async () => {
    for (let run = 0; run < RUNS; run++) {
      await using db = await MysqlTestDb.create('vism');
      await db.query('CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL)');
      await db.query('INSERT INTO t SELECT seq, seq FROM seq_1_to_20000');
      await db.query('ANALYZE TABLE t');
      await db.query('CREATE TABLE marker (id int PRIMARY KEY)');
      await using dir = new TempDir();
      const name = `vism${process.pid % 100000}r${run}`;
      const r = await visibilityRace({
        label: `mariadb run ${run + 1}`,
        name,
        dir,
        rows: 20000,
        writers: 8,
        config: (extra) =>
          dir.file(
            `${name}.yaml`,
            `name: ${name}
source:
  type: mysql
  url: ${db.url}
  tables: [${db.name}.t, ${db.name}.marker]
  snapshot: initial
  snapshot_chunk_rows: 100
  snapshot_workers: 2
  server_id: ${uniqueServerId()}
  heartbeat_ms: 1000
  signal_table: ${db.name}.tributary_signal
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/out.jsonl
${extra}
http: { port: 0 }
`,
          ),
        async writer() {
          const c = await db.connect();
          return {
            update: (id, v) => c.query('UPDATE t SET v = ? WHERE id = ?', [v, id]),
            insert: (id, v) => c.query('INSERT INTO t VALUES (?, ?)', [id, v]),
            remove: (id) => c.query('DELETE FROM t WHERE id = ?', [id]),
            end: () => c.end(),
          };
        },
        table: async () => db.query('SELECT id, v FROM t'),
        mark: async (n) => {
          await db.query('INSERT INTO marker VALUES (?)', [n]);
        },
      });
      assert.ok(r.writes > 300, `the writers were busy during the snapshot (${r.writes} writes)`);
      assert.deepEqual(r.jsonlWrong.slice(0, 20), [], `jsonl replay differs from the table in ${r.jsonlWrong.length} rows`);
      assert.deepEqual(r.redisWrong.slice(0, 20), [], `Redis differs from the table in ${r.redisWrong.length} rows`);
    }
  });
});
