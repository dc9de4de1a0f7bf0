import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcessPipeline } from '../helpers/pipeline.js';
import { MysqlTestDb, mysqlSrc } from '../helpers/mysql.js';

/**
 * MariaDB `log_bin_compress`: QUERY and rows events become compressed events (165-171)
 * with a zlib body. Missing them would silently drop changes (vlasky/zongji #6).
 */
describe('mysql: MariaDB compressed binlog events', { concurrency: false }, () => {
  it('decodes compressed rows and query events', { timeout: 60_000 }, async () => {
    await using db = await MysqlTestDb.create('zip');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, body mediumtext, n int)');
    await using p = await InProcessPipeline.start({ name: `zip${process.pid}`, source: mysqlSrc(db) });
    const [[before]] = (await db.conn.query('SELECT @@global.log_bin_compress AS c, @@global.log_bin_compress_min_len AS m')) as unknown as [[{ c: number; m: number }]];
    const long = 'compress me '.repeat(500);
    try {
      await db.query('SET GLOBAL log_bin_compress = ON, GLOBAL log_bin_compress_min_len = 10');
      const c = await db.connect(); // a new session sees the new globals
      try {
        await c.query('INSERT INTO t VALUES (1, ?, 1), (2, ?, 2)', [long, 'short but over ten bytes']);
        await c.query('UPDATE t SET n = n + 10, body = CONCAT(body, ?) WHERE id = 1', ['!']);
        // A long query: its SQL text is what gets compressed in a QUERY_COMPRESSED event.
        await c.query(`ALTER TABLE t ADD COLUMN extra varchar(100) DEFAULT NULL COMMENT '${'a long comment '.repeat(10)}'`);
        await c.query("INSERT INTO t VALUES (3, 'three', 3, 'x')");
        await c.query('DELETE FROM t WHERE id = 2');
      } finally {
        await c.end();
      }
    } finally {
      await db.query(`SET GLOBAL log_bin_compress = ${Number(before.c) ? 'ON' : 'OFF'}, GLOBAL log_bin_compress_min_len = ${before.m}`);
    }
    const evs = await p.waitForEvents(5);
    assert.deepEqual(
      evs.map((e) => [e.op, e.key, e.after]),
      [
        ['c', { id: 1 }, { id: 1, body: long, n: 1 }],
        ['c', { id: 2 }, { id: 2, body: 'short but over ten bytes', n: 2 }],
        ['u', { id: 1 }, { id: 1, body: long + '!', n: 11 }],
        ['c', { id: 3 }, { id: 3, body: 'three', n: 3, extra: 'x' }],
        ['d', { id: 2 }, null],
      ],
    );
    assert.deepEqual(evs[2]!.before, { id: 1, body: long, n: 1 });
    const [[after]] = (await db.conn.query('SELECT @@global.log_bin_compress AS c')) as unknown as [[{ c: number }]];
    assert.equal(Number(after.c), Number(before.c), 'the server setting is restored');
    // The test exercised what it claims: the binlog holds compressed events.
    const file = evs[0]!.source.file!;
    const shown = await db.query<{ Event_type: string }[]>(`SHOW BINLOG EVENTS IN '${file}' `);
    const types = new Set(shown.map((r) => r.Event_type));
    assert.ok([...types].some((t) => /Write_rows_compressed/i.test(t)), `compressed rows events in the binlog: ${[...types].join(', ')}`);
    assert.ok([...types].some((t) => /Query_compressed/i.test(t)), 'compressed query events in the binlog');
  });
});
