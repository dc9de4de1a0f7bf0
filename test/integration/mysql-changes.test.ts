import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcessPipeline } from '../helpers/pipeline.js';
import { MysqlTestDb, mysqlSrc, uniqueServerId } from '../helpers/mysql.js';

describe('mysql: inserts, updates, deletes, transactions', { concurrency: false }, () => {
  it('before/after for insert, update (incl. key change) and delete', async () => {
    await using db = await MysqlTestDb.create('dml');
    await db.query('CREATE TABLE o (id int PRIMARY KEY, status varchar(20), amount decimal(8,2))');
    await using p = await InProcessPipeline.start({ name: `dml${process.pid}`, source: mysqlSrc(db) });
    await db.query("INSERT INTO o VALUES (7, 'placed', 12.30)");
    await db.query("UPDATE o SET status = 'paid' WHERE id = 7");
    await db.query('UPDATE o SET id = 8 WHERE id = 7');
    await db.query('DELETE FROM o WHERE id = 8');
    const evs = await p.waitForEvents(4);
    assert.deepEqual(
      evs.map((e) => [e.op, e.before, e.after, e.key]),
      [
        ['c', null, { id: 7, status: 'placed', amount: '12.30' }, { id: 7 }],
        ['u', { id: 7, status: 'placed', amount: '12.30' }, { id: 7, status: 'paid', amount: '12.30' }, { id: 7 }],
        ['u', { id: 7, status: 'paid', amount: '12.30' }, { id: 8, status: 'paid', amount: '12.30' }, { id: 8 }],
        ['d', { id: 8, status: 'paid', amount: '12.30' }, null, { id: 8 }],
      ],
    );
    for (const e of evs) {
      assert.equal(e.source.connector, 'mysql');
      assert.equal(e.source.db, db.name);
      assert.equal(e.source.table, 'o');
      assert.match(e.source.file!, /\.\d+$/);
      assert.ok(e.source.pos! > 4);
      assert.match(String(e.source.gtid), /^\d+-\d+-\d+$/, 'MariaDB GTID of the transaction');
    }
    const gtids = evs.map((e) => e.source.gtid);
    assert.equal(new Set(gtids).size, 4, 'one transaction per statement');
  });

  it('a multi-statement transaction keeps order, one GTID; rollbacks are not delivered; other tables are filtered', async () => {
    await using db = await MysqlTestDb.create('txn');
    await db.query('CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE skipme (id int PRIMARY KEY)');
    await using p = await InProcessPipeline.start({ name: `txn${process.pid}`, source: mysqlSrc(db, `${db.name}.a, ${db.name}.b`) });
    await db.query("BEGIN; INSERT INTO a VALUES (1, 'x'); INSERT INTO b VALUES (1); INSERT INTO skipme VALUES (1); UPDATE a SET v = 'y' WHERE id = 1; INSERT INTO a VALUES (2, 'z'), (3, 'w'); COMMIT");
    await db.query("BEGIN; INSERT INTO a VALUES (99, 'rolled back'); ROLLBACK");
    await db.query('DELETE FROM a WHERE id IN (2, 3)');
    const evs = await p.waitForEvents(7);
    await new Promise((r) => setTimeout(r, 500));
    const all = p.events();
    assert.deepEqual(
      all.map((e) => [e.op, e.source.table, e.key]),
      [
        ['c', 'a', { id: 1 }],
        ['c', 'b', { id: 1 }],
        ['u', 'a', { id: 1 }],
        ['c', 'a', { id: 2 }],
        ['c', 'a', { id: 3 }],
        ['d', 'a', { id: 2 }],
        ['d', 'a', { id: 3 }],
      ],
    );
    assert.equal(new Set(evs.slice(0, 5).map((e) => e.source.gtid)).size, 1, 'one transaction, one GTID');
    assert.deepEqual(evs.slice(3, 5).map((e) => e.source.row), [0, 1], 'rows of one statement are numbered');
    assert.notEqual(evs[5]!.source.gtid, evs[0]!.source.gtid);
  });

  it('a restarted pipeline resumes exactly after the last committed transaction', async () => {
    await using db = await MysqlTestDb.create('resume');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int)');
    const name = `resume${process.pid}`;
    const p1 = await InProcessPipeline.start({ name, source: mysqlSrc(db) });
    await db.query('INSERT INTO t VALUES (1, 1), (2, 2)');
    await p1.waitForEvents(2);
    // Stop without removing the state directory, then write while nothing runs.
    await p1.pipeline.drainAndStop(5000);
    await db.query('INSERT INTO t VALUES (3, 3)');
    await db.query('UPDATE t SET v = 10 WHERE id = 1');
    const { loadConfig } = await import('../../src/config/load.js');
    const { Pipeline } = await import('../../src/runtime/pipeline.js');
    const { pino } = await import('pino');
    const { Metrics } = await import('../../src/runtime/metrics.js');
    const cfg = await loadConfig([p1.dir.file('pipeline.yaml')]);
    const p2 = new Pipeline(cfg.pipelines[0]!, pino({ level: 'silent' }), new Metrics());
    await p2.start();
    try {
      const evs = await p1.waitForEvents(4);
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(p1.events().map((e) => [e.op, e.key]), [['c', { id: 1 }], ['c', { id: 2 }], ['c', { id: 3 }], ['u', { id: 1 }]]);
      assert.equal(evs[3]!.after!.v, 10);
    } finally {
      await p2.drainAndStop(5000);
      await p1.dir[Symbol.asyncDispose]();
    }
  });

  it('preflight passes on a correctly configured server and names the server_id clash', async () => {
    await using db = await MysqlTestDb.create('pre');
    const { MysqlSource } = await import('../../connectors/mysql/source.js');
    const { pino } = await import('pino');
    const { Metrics } = await import('../../src/runtime/metrics.js');
    const { FileStateStore } = await import('../../src/state/file-store.js');
    const { TempDir } = await import('../helpers/context.js');
    await using dir = new TempDir();
    const mk = (serverId: number) =>
      new MysqlSource(
        { type: 'mysql', url: db.url, tables: ['*.*'], server_id: serverId, start: 'latest', heartbeat_ms: 1000, snapshot: 'never', snapshot_workers: 1, snapshot_chunk_rows: 1000, reconnect: {} },
        { pipeline: 'pre', logger: pino({ level: 'silent' }), signal: new AbortController().signal, metrics: new Metrics(), store: new FileStateStore(dir.path), link: { up: () => undefined, lost: (err) => Promise.reject(err) } },
      );
    const ok = mk(uniqueServerId());
    try {
      const problems = await ok.preflight();
      assert.deepEqual(problems.filter((x) => x.severity === 'error'), []);
    } finally {
      await ok.close();
      await ok.close(); // idempotent
    }
    const clash = mk(1);
    try {
      const problems = await clash.preflight();
      const p = problems.find((x) => /server_id/.test(x.message));
      assert.ok(p && p.severity === 'error' && /server_id/.test(p.fix), JSON.stringify(problems));
    } finally {
      await clash.close();
    }
  });
});
