import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcessPipeline } from '../helpers/pipeline.js';
import { MysqlTestDb, mysqlSrc, uniqueServerId } from '../helpers/mysql.js';
import { waitFor } from '../helpers/context.js';
import { PrivateMariadb } from '../helpers/servers/private-mariadb.js';

describe('mysql: DDL, rotation and server restarts mid-stream', { concurrency: false }, () => {
  it('follows ADD COLUMN, DROP COLUMN, RENAME COLUMN and a type change', { timeout: 60_000 }, async () => {
    await using db = await MysqlTestDb.create('ddl');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, a varchar(10), b int)');
    await using p = await InProcessPipeline.start({ name: `ddl${process.pid}`, source: mysqlSrc(db) });
    await db.query("INSERT INTO t VALUES (1, '1', 10)");
    await db.query("ALTER TABLE t ADD COLUMN c json AFTER a");
    await db.query(`INSERT INTO t VALUES (2, '2', '{"x": 1}', 20)`);
    await db.query('ALTER TABLE t DROP COLUMN b');
    await db.query(`INSERT INTO t VALUES (3, '3', '[1,2]')`);
    await db.query('ALTER TABLE t RENAME COLUMN a TO name');
    await db.query(`INSERT INTO t VALUES (4, '0', 'null')`);
    await db.query('ALTER TABLE t MODIFY COLUMN name bigint');
    await db.query('UPDATE t SET name = 9007199254740993 WHERE id = 4');
    await db.query('ALTER TABLE t CHANGE COLUMN c doc text');
    await db.query(`INSERT INTO t VALUES (5, 5, '{"not": "parsed"}')`);
    await db.query('CREATE TABLE t2 (k varchar(5) PRIMARY KEY, v json)');
    await db.query(`INSERT INTO t2 VALUES ('k1', '{"y": [true]}')`);
    const evs = await p.waitForEvents(7);
    assert.deepEqual(
      evs.map((e) => [e.op, e.source.table, e.before, e.after]),
      [
        ['c', 't', null, { id: 1, a: '1', b: 10 }],
        ['c', 't', null, { id: 2, a: '2', c: { x: 1 }, b: 20 }],
        ['c', 't', null, { id: 3, a: '3', c: [1, 2] }],
        ['c', 't', null, { id: 4, name: '0', c: null }],
        ['u', 't', { id: 4, name: 0, c: null }, { id: 4, name: '9007199254740993', c: null }],
        ['c', 't', null, { id: 5, name: 5, doc: '{"not": "parsed"}' }],
        ['c', 't2', null, { k: 'k1', v: { y: [true] } }],
      ],
    );
    assert.deepEqual(evs[6]!.key, { k: 'k1' });
  });

  it('keeps streaming across FLUSH BINARY LOGS, and checkpoints in the new file', { timeout: 60_000 }, async () => {
    await using db = await MysqlTestDb.create('rot');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    await using p = await InProcessPipeline.start({ name: `rot${process.pid}`, source: mysqlSrc(db) });
    await db.query('INSERT INTO t VALUES (1)');
    await db.query('FLUSH BINARY LOGS');
    await db.query('INSERT INTO t VALUES (2)');
    await db.query('FLUSH BINARY LOGS');
    await db.query('INSERT INTO t VALUES (3)');
    const evs = await p.waitForEvents(3);
    assert.deepEqual(evs.map((e) => e.after!.id), [1, 2, 3]);
    const files = evs.map((e) => e.source.file!);
    const seq = files.map((f) => Number(f.split('.').pop()));
    assert.ok(seq[0]! < seq[1]! && seq[1]! < seq[2]!, `each insert in a later file: ${files}`);
    const [{ File }] = await db.query<{ File: string }[]>('SHOW MASTER STATUS');
    assert.equal(files[2], File);
    // The checkpoint record is written just after the batch (it overlaps the next one), so
    // it may trail the events seen in the sink by a moment.
    const resumeFile = async () => {
      const status = await p.pipeline.store.loadSinks(p.pipeline.name);
      return status.audit ? (JSON.parse(status.audit.resume) as { file: string; pos: number }).file : null;
    };
    await waitFor(async () => (await resumeFile()) === File, { timeoutMs: 10_000, what: 'the checkpoint in the newest file' }).catch(() => undefined);
    assert.equal(await resumeFile(), File, 'the checkpoint is in the newest file');
  });

  it('resumes by itself after MariaDB restarts, losing and duplicating nothing', { timeout: 120_000 }, async () => {
    // A private server: restarting the shared one would break every other test using it.
    await using server = await PrivateMariadb.start();
    await server.query('CREATE DATABASE app; CREATE TABLE app.t (id int PRIMARY KEY, v varchar(20))');
    await using p = await InProcessPipeline.start({
      name: `restart${process.pid}`,
      source: `type: mysql\nurl: ${server.url}\ntables: [app.*]\nsnapshot: never\nserver_id: ${uniqueServerId()}\nheartbeat_ms: 1000`,
    });
    let c = await server.connect('app');
    for (let i = 1; i <= 50; i++) await c.query('INSERT INTO t VALUES (?, ?)', [i, `before ${i}`]);
    await p.waitForEvents(50);
    await c.end();
    await server.stop();
    await new Promise((r) => setTimeout(r, 500));
    await server.start();
    c = await server.connect('app');
    for (let i = 51; i <= 100; i++) await c.query('INSERT INTO t VALUES (?, ?)', [i, `after ${i}`]);
    await c.query("UPDATE t SET v = 'changed' WHERE id <= 10");
    await c.end();
    const evs = await p.waitForEvents(110, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const all = p.events();
    assert.equal(all.length, 110, 'nothing duplicated');
    assert.deepEqual(all.slice(0, 100).map((e) => e.after!.id), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.deepEqual(all.slice(100).map((e) => [e.op, e.key!.id, e.after!.v]), Array.from({ length: 10 }, (_, i) => ['u', i + 1, 'changed']));
    assert.equal(p.pipeline.state, 'running');
    assert.ok(p.pipeline.runners[0]!.position, String(evs.length));
  });
});
