import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcessPipeline } from '../helpers/pipeline.js';
import { MysqlTestDb, mysqlSrc } from '../helpers/mysql.js';

const DDL = `CREATE TABLE ty (
  id int PRIMARY KEY,
  ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned, mi mediumint, miu mediumint unsigned,
  i int, iu int unsigned, bi bigint, biu bigint unsigned, bsafe bigint,
  dec65 decimal(65,30), dec2 decimal(8,2), f float, d double,
  dt date, dtm datetime(6), ts timestamp(6) NULL DEFAULT NULL, tm time(3), tm0 time, yr year,
  c char(10), vc varchar(100), tx text, l1 varchar(20) CHARACTER SET latin1,
  bl blob, bn binary(4), vb varbinary(10),
  e enum('small','medium','large'), s set('a','b','c'), b bit(10), b64 bit(64),
  j json, g geometry, pt point
) CHARACTER SET utf8mb4`;

const WKB_POINT_1_2 = Buffer.from('0101000000000000000000f03f0000000000000040', 'hex').toString('base64');

describe('mysql: every column type round-trips to the envelope', { concurrency: false }, () => {
  it('maps each MariaDB type losslessly', { timeout: 60_000 }, async () => {
    await using db = await MysqlTestDb.create('types');
    await db.query(DDL);
    await using p = await InProcessPipeline.start({ name: `types${process.pid}`, source: mysqlSrc(db) });
    await db.query("SET time_zone = '+00:00'");
    await db.query(`INSERT INTO ty VALUES (1,
      -128, 255, -32768, 65535, -8388608, 16777215,
      -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, 9007199254740991,
      '-12345678901234567890123456789012345.123456789012345678901234567890', 12.30, 1.1, 3.141592653589793,
      '2024-01-15', '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00.654321', '-838:59:58.500', '123:04:05', 2024,
      'héllo', 'emoji 😀🎉 ok', 'long text ✓ ${'x'.repeat(300)}', 'café',
      x'00FF10', x'01020304', x'DEADBEEF',
      'medium', 'a,c', b'1010101010', x'FFFFFFFFFFFFFFFF',
      '{"a": [1, 2.5, "x"], "b": null, "c": {"d": true}}', ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(1 2)', 4326))`);
    await db.query('INSERT INTO ty (id) VALUES (2)');
    await db.query("SET SESSION sql_mode = ''");
    await db.query("INSERT INTO ty (id, dt, dtm, yr) VALUES (3, '0000-00-00', '0000-00-00 00:00:00', 0)");
    await db.query('UPDATE ty SET iu = 0, j = JSON_OBJECT(\'k\', 1) WHERE id = 1');
    const evs = await p.waitForEvents(4);
    const row = evs[0]!.after!;
    const want = {
      id: 1,
      ti: -128, tiu: 255, si: -32768, siu: 65535, mi: -8388608, miu: 16777215,
      i: -2147483648, iu: 4294967295, bi: '-9223372036854775808', biu: '18446744073709551615', bsafe: 9007199254740991,
      dec65: '-12345678901234567890123456789012345.123456789012345678901234567890', dec2: '12.30', f: 1.1, d: 3.141592653589793,
      dt: '2024-01-15', dtm: '2024-01-15T10:30:00.123456', ts: '2024-01-15T10:30:00.654321Z', tm: '-838:59:58.500', tm0: '123:04:05', yr: 2024,
      c: 'héllo', vc: 'emoji 😀🎉 ok', tx: `long text ✓ ${'x'.repeat(300)}`, l1: 'café',
      bl: Buffer.from([0, 0xff, 0x10]).toString('base64'), bn: Buffer.from([1, 2, 3, 4]).toString('base64'), vb: Buffer.from('DEADBEEF', 'hex').toString('base64'),
      e: 'medium', s: 'a,c', b: 0b1010101010, b64: '18446744073709551615',
      j: { a: [1, 2.5, 'x'], b: null, c: { d: true } },
      g: { srid: 0, wkb: WKB_POINT_1_2 }, pt: { srid: 4326, wkb: WKB_POINT_1_2 },
    };
    for (const [k, v] of Object.entries(want)) assert.deepEqual(row[k], v, `column ${k}: got ${JSON.stringify(row[k])}`);
    assert.deepEqual(Object.keys(row), Object.keys(want), 'every column, in table order');
    assert.deepEqual(evs[0]!.key, { id: 1 });

    const nulls = evs[1]!.after!;
    for (const [k, v] of Object.entries(nulls)) if (k !== 'id') assert.equal(v, null, `column ${k} is null`);

    const zero = evs[2]!.after!;
    assert.equal(zero.dt, null, 'zero date → null');
    assert.equal(zero.dtm, null, 'zero datetime → null');
    assert.equal(zero.yr, 0);

    const upd = evs[3]!;
    assert.equal(upd.op, 'u');
    assert.deepEqual(upd.before, row, 'the before image is the whole old row, decoded the same way');
    assert.equal(upd.after!.iu, 0);
    assert.deepEqual(upd.after!.j, { k: 1 });
  });
});
