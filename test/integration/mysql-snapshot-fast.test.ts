import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Row } from '../../src/core/event.js';
import { keyString, type ChunkRows, type SnapshotTable } from '../../src/snapshot/types.js';
import { MysqlSnapshotSupport, parseSignalTable } from '../../connectors/mysql/snapshot.js';
import { MysqlTestDb } from '../helpers/mysql.js';

/**
 * MySQL/MariaDB snapshot chunks are written as JSON text straight from the text protocol's
 * bytes (connectors/mysql/snapshot-rows.ts). The object path (mysql2 row objects, the
 * per-table converters, JSON.stringify) is the reference: for every type, extreme and NULL,
 * each byte-path row must parse to exactly the object path's row (same keys, same order,
 * same values) and carry exactly the key string `keyString` gives that row.
 */

const WIDE = `CREATE TABLE wide (
  id int NOT NULL, k varchar(20) NOT NULL,
  ti tinyint, tiu tinyint unsigned, b1 tinyint(1), si smallint, siu smallint unsigned, mi mediumint, miu mediumint unsigned,
  i int, iu int unsigned, zf int(6) zerofill, bi bigint, biu bigint unsigned, bzf bigint(20) unsigned zerofill,
  dec65 decimal(65,30), dec2 decimal(8,2), decu decimal(6,3) unsigned, f float, d double,
  dt date, dtm datetime(6), dtm0 datetime, ts timestamp(6) NULL DEFAULT NULL, ts0 timestamp NULL DEFAULT NULL, tm time(3), tm0 time, yr year,
  c char(10), vc varchar(100), tx text, mt mediumtext, l1 varchar(20) CHARACTER SET latin1, asc1 varchar(20) CHARACTER SET ascii,
  l2 varchar(20) CHARACTER SET latin2, u16 varchar(20) CHARACTER SET utf16,
  bl blob, bn binary(4), vb varbinary(10),
  e enum('small','medium','large'), s set('a','b','c'), b bit(1), b10 bit(10), b56 bit(56), b64 bit(64),
  j json, g geometry, pt point,
  PRIMARY KEY (id, k)
) CHARACTER SET utf8mb4`;

/** Rows of `wide` as column → SQL literal (columns left out are NULL). */
const ROWS: Record<string, string>[] = [
  {
    id: '1', k: "'x'", ti: '-128', tiu: '255', b1: '1', si: '-32768', siu: '65535', mi: '-8388608', miu: '16777215',
    i: '-2147483648', iu: '4294967295', zf: '42', bi: '-9223372036854775808', biu: '18446744073709551615', bzf: '9007199254740993',
    dec65: "'-12345678901234567890123456789012345.123456789012345678901234567890'", dec2: '12.30', decu: '999.999', f: '1.1', d: '3.141592653589793',
    dt: "'2024-01-15'", dtm: "'2024-01-15 10:30:00.123456'", dtm0: "'2024-01-15 10:30:00'", ts: "'2024-01-15 10:30:00.654321'", ts0: "'2038-01-19 03:14:07'",
    tm: "'-838:59:58.500'", tm0: "'123:04:05'", yr: '2024',
    c: "'héllo'", vc: `'emoji 😀🎉 ok "q" \\\\ back'`, tx: "CONCAT('tab\\there\\nline\\r', CHAR(0), CHAR(1), CHAR(31), CHAR(127), ' ✓ \u2028')",
    mt: "REPEAT('long ✓ ', 2000)", l1: "'café €'", asc1: "'plain'", l2: "'Zażółć'", u16: "'utf16 ✓'",
    bl: "x'00FF10'", bn: "x'0102'", vb: "x'DEADBEEF'", e: "'medium'", s: "'a,c'", b: "b'1'", b10: "b'1010101010'", b56: "b'1'", b64: "x'FFFFFFFFFFFFFFFF'",
    j: `'{"a": [1, 2.50, "x", 1e2], "b": null, "c": {"d": true}}'`, g: "ST_GeomFromText('POINT(1 2)')", pt: "ST_GeomFromText('POINT(1 2)', 4326)",
  },
  {
    id: '1', k: "'y z'", ti: '127', tiu: '0', b1: '0', si: '32767', siu: '0', mi: '8388607', miu: '0',
    i: '2147483647', iu: '0', zf: '0', bi: '9223372036854775807', biu: '0', bzf: '0',
    dec65: "'0.000000000000000000000000000001'", dec2: '-0.01', decu: '0', f: '-3.4e38', d: '1e300',
    dt: "'1000-01-01'", dtm: "'1000-01-01 00:00:00.000001'", dtm0: "'9999-12-31 23:59:59'", ts: "'1970-01-01 00:00:01'", ts0: "'1970-01-01 00:00:01'",
    tm: "'00:00:00.500'", tm0: "'-00:00:01'", yr: '1901',
    c: "''", vc: "''", tx: "''", mt: "''", l1: "''", asc1: "''", l2: "''", u16: "''", bl: "x''", bn: "x''", vb: "x''",
    e: "'small'", s: "''", b: "b'0'", b10: "b'0'", b56: `b'${'1'.repeat(53)}'`, b64: "x'8000000000000000'", j: "'[]'",
  },
  { id: '2', k: "'null-row'" },
  {
    id: '3', k: "'nums'", ti: '-1', tiu: '1', si: '-1', siu: '1', mi: '-1', miu: '1',
    i: '-1', iu: '1', zf: '1234567', bi: '-9007199254740991', biu: '9007199254740991', bzf: '18446744073709551615',
    dec65: "'-0.5'", dec2: '0', decu: '0.001', f: '16777217', d: '-0e0',
    dt: "'2024-02-29'", dtm: "'2024-02-29 23:59:59.999999'", dtm0: "'2024-02-29 00:00:00'", ts: "'2024-02-29 12:00:00.000001'", ts0: "'2001-09-09 01:46:40'",
    tm: "'838:59:59'", tm0: "'-838:59:59'", yr: '2155',
    c: "'a'", vc: `'"'`, tx: "'\\\\'", mt: "'x'", l1: "'ÿ'", asc1: "'~'", l2: "''", u16: "'😀'", bl: "x'00'", bn: "x'00000000'", vb: "x'00'",
    e: "'large'", s: "'a,b,c'", b10: "b'1111111111'", b56: "b'0'", b64: "x'0020000000000001'", j: `'"just a string"'`,
  },
  { id: '4', k: "'json'", f: '1e-10', d: '5e-324', j: `'{\\n  "multi": [1,\\n 2],\\r\\n  "big": 9007199254740993, "neg": -0, "e": 1E+2, "u": "\\\\u00e9\\\\n"\\n}'` },
  { id: '5', k: "'json2'", f: '0.1', d: '1.7976931348623157e308', j: "'null'" },
  { id: '6', k: "'json3'", d: '0.30000000000000004', j: `'[1e400, {"deep": [[[{"x": "\\\\"quoted\\\\""}]]]}]'` },
];

/** Zero and partial dates need a lax sql_mode. */
const ZERO_ROWS = `INSERT INTO wide (id, k, dt, dtm, dtm0, ts, ts0, yr) VALUES
  (7, 'zero', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0),
  (8, 'partial', '2024-00-00', '2024-01-00 10:00:00.5', '0000-00-00 00:00:01', NULL, NULL, 69)`;

/** All chunks of a table, read in order by one reader, joined. */
async function readAll(support: MysqlSnapshotSupport, table: SnapshotTable, chunkRows: number): Promise<ChunkRows> {
  const chunks = await support.plan(table, chunkRows, null);
  const reader = await support.reader();
  const parts: ChunkRows[] = [];
  try {
    for (const ch of chunks) parts.push(await reader.read(table, ch, null));
  } finally {
    await reader.close();
  }
  return { rows: parts.flatMap((p) => p.rows), keys: parts.flatMap((p) => p.keys) };
}

function supports(db: MysqlTestDb, tables: string[]): { bytes: MysqlSnapshotSupport; objects: MysqlSnapshotSupport } {
  const o = { url: db.url, include: tables.map((t) => `${db.name}.${t}`), exclude: undefined, keyColumns: undefined, signal: parseSignalTable(`${db.name}.watermarks`) };
  return { bytes: new MysqlSnapshotSupport({ ...o, rowPath: 'bytes' }), objects: new MysqlSnapshotSupport({ ...o, rowPath: 'objects' }) };
}

/** The byte path's rows and keys against the object path's, row by row. */
function assertSame(table: SnapshotTable, got: ChunkRows, ref: ChunkRows): void {
  assert.equal(got.rows.length, ref.rows.length, `${table.name}: row count`);
  assert.equal(got.keys.length, got.rows.length, `${table.name}: one key per row`);
  for (let i = 0; i < ref.rows.length; i++) {
    const want = JSON.parse(ref.rows[i]!) as Row;
    const row = JSON.parse(got.rows[i]!) as Row;
    for (const k of Object.keys(want)) assert.deepStrictEqual(row[k], want[k], `${table.name} row ${i} column ${k}: ${JSON.stringify(row[k])} vs ${JSON.stringify(want[k])}`);
    assert.deepStrictEqual(Object.keys(row), Object.keys(want), `${table.name} row ${i}: columns in table order`);
    assert.equal(got.keys[i], ref.keys[i], `${table.name} row ${i}: key string`);
    assert.equal(got.keys[i], keyString(table, want), `${table.name} row ${i}: key string of the object row`);
    assert.ok(!/[\r\n]/.test(got.rows[i]!), `${table.name} row ${i}: one line`);
  }
}

describe('mysql snapshot rows from protocol bytes equal the object path', { concurrency: false }, () => {
  it('every column type, extremes, NULLs, zero dates, charsets, JSON', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('snapfast');
    await db.query("SET time_zone = '+00:00'");
    await db.query(WIDE);
    for (const r of ROWS) await db.query(`INSERT INTO wide (${Object.keys(r).join(', ')}) VALUES (${Object.values(r).join(', ')})`);
    await db.query("SET SESSION sql_mode = ''");
    await db.query(ZERO_ROWS);
    for (let g = 9; g <= 40; g++) await db.query('INSERT INTO wide (id, k, biu, tx, d) VALUES (?, ?, ?, ?, ?)', [g, `k${g}`, g * 1000, 'r'.repeat(g % 7), g / 3]);
    const { bytes, objects } = supports(db, ['wide']);
    const [table] = await bytes.tables();
    for (const chunk of [3, 1000]) {
      const got = await readAll(bytes, table!, chunk);
      const ref = await readAll(objects, table!, chunk);
      assert.equal(got.rows.length, 41);
      assertSame(table!, got, ref);
      // Both paths embed MariaDB JSON text as stored (a space after the colon, `2.50`, `1e2`),
      // never a parsed and re-stringified value; and the multi-line document compacted.
      for (const rows of [got.rows, ref.rows]) {
        const row1 = rows.find((r) => r.startsWith('{"id":1,"k":"x"'))!;
        assert.ok(row1.includes('"j":{"a": [1, 2.50, "x", 1e2]'), row1.slice(-400));
        const row4 = rows.find((r) => r.startsWith('{"id":4,"k":"json"'))!;
        assert.ok(row4.includes('"j":{"multi":[1,2],"big":9007199254740993,"neg":-0,"e":1E+2,"u":"\\u00e9\\n"}'), row4.slice(-200));
        const row6 = rows.find((r) => r.startsWith('{"id":6,"k":"json3"'))!;
        assert.ok(row6.includes('"j":[1e400, {"deep"'), row6.slice(-200));
      }
    }
    // Spot checks of the documented forms (not only "same as the object path").
    const byId = new Map(JSON.parse(`[${(await readAll(bytes, table!, 1000)).rows.join(',')}]`).map((r: Row) => [`${r.id}/${r.k}`, r]));
    const r1 = byId.get('1/x') as Row;
    assert.equal(r1.bi, '-9223372036854775808');
    assert.equal(r1.biu, '18446744073709551615');
    assert.equal(r1.zf, 42);
    assert.equal(r1.f, 1.1);
    assert.equal(r1.dtm, '2024-01-15T10:30:00.123456');
    assert.equal(r1.ts, '2024-01-15T10:30:00.654321Z');
    assert.equal(r1.b64, '18446744073709551615');
    assert.deepEqual(r1.pt, { srid: 4326, wkb: Buffer.from('0101000000000000000000f03f0000000000000040', 'hex').toString('base64') });
    assert.equal(r1.l2, 'Zażółć');
    assert.equal(r1.u16, 'utf16 ✓');
    assert.equal(r1.bn, Buffer.from([1, 2, 0, 0]).toString('base64'));
    const zero = byId.get('7/zero') as Row;
    assert.deepEqual([zero.dt, zero.dtm, zero.dtm0, zero.ts, zero.ts0, zero.yr], [null, null, null, null, null, 0]);
  });

  it('keys of every kind give the same key strings', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('snapfastk');
    await db.query('CREATE TABLE kbig (id bigint unsigned PRIMARY KEY, v int)');
    await db.query('INSERT INTO kbig VALUES (0, 1), (1, 2), (9007199254740991, 3), (9007199254740993, 4), (18446744073709551615, 5)');
    await db.query('CREATE TABLE kneg (id bigint PRIMARY KEY, v int)');
    await db.query('INSERT INTO kneg VALUES (-9223372036854775808, 1), (-9007199254740993, 2), (-9007199254740991, 3), (-1, 4), (0, 5)');
    await db.query('CREATE TABLE kstr (s varchar(50) NOT NULL, PRIMARY KEY (s)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
    await db.query(`INSERT INTO kstr VALUES ('a"b'), ('back\\\\slash'), ('tab\\there'), ('nl\\nx'), ('😀'), ('é'), (CONCAT('ctl', CHAR(1))), ('')`);
    await db.query('CREATE TABLE kbin (b varbinary(8) NOT NULL, d decimal(10,3) NOT NULL, t datetime(3) NOT NULL, UNIQUE KEY u (b, d, t))');
    await db.query("INSERT INTO kbin VALUES (x'00', 1.5, '2024-01-01 00:00:00.001'), (x'ff00', -2.25, '1999-12-31 23:59:59'), ('', 0, '2024-01-01 00:00:00')");
    await db.query("CREATE TABLE kmisc (e enum('b','a') NOT NULL, y year NOT NULL, ts timestamp(6) NOT NULL DEFAULT '2024-01-01 00:00:00', bt bit(12) NOT NULL, PRIMARY KEY (e, y, bt))");
    await db.query("INSERT INTO kmisc (e, y, bt) VALUES ('a', 2000, b'1'), ('b', 1999, b'111111111111'), ('a', 2001, b'0')");
    const names = ['kbig', 'kneg', 'kstr', 'kbin', 'kmisc'];
    const { bytes, objects } = supports(db, names);
    const tables = await bytes.tables();
    assert.equal(tables.length, names.length);
    for (const table of tables) {
      for (const chunk of [2, 100]) assertSame(table, await readAll(bytes, table, chunk), await readAll(objects, table, chunk));
    }
  });

  it('tables the byte path declines, errors and schema changes', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('snapfastx');
    // An integer-like column name: objects enumerate it first, so that table reads as objects.
    await db.query('CREATE TABLE oddname (id int PRIMARY KEY, `7` varchar(5), v int)');
    await db.query("INSERT INTO oddname VALUES (1, 'x', 3), (2, NULL, 4)");
    await db.query('CREATE TABLE gone (id int PRIMARY KEY, a int, b varchar(10))');
    await db.query("INSERT INTO gone VALUES (1, 1, 'one'), (2, 2, 'two')");
    const { bytes, objects } = supports(db, ['oddname', 'gone']);
    const tables = await bytes.tables();
    const odd = tables.find((t) => t.name.endsWith('.oddname'))!;
    const gone = tables.find((t) => t.name.endsWith('.gone'))!;
    assertSame(odd, await readAll(bytes, odd, 10), await readAll(objects, odd, 10));

    const reader = await bytes.reader();
    try {
      const all = { lo: null, hi: null };
      assert.equal((await reader.read(gone, all, null)).rows[0], '{"id":1,"a":1,"b":"one"}');
      // A dropped column: the reader rebuilds its plan once (error 1054) and goes on.
      await db.query('ALTER TABLE gone DROP COLUMN a');
      assert.deepEqual((await reader.read(gone, all, null)).rows, ['{"id":1,"b":"one"}', '{"id":2,"b":"two"}']);
      // A server error rejects the read, and the connection stays usable.
      await assert.rejects(reader.read(gone, all, 'no_such_column = 1'), (err: { errno?: number }) => err.errno === 1054);
      await assert.rejects(reader.read(gone, all, 'syntax error here'), (err: { errno?: number }) => err.errno === 1064);
      assert.deepEqual((await reader.read(gone, { lo: [1], hi: null }, null)).rows, ['{"id":2,"b":"two"}']);
      assert.deepEqual((await reader.read(gone, all, 'id > 5')).rows, []);
      await reader.watermark('w1', 'low');
      await db.query('DROP TABLE gone');
      await assert.rejects(reader.read(gone, all, null));
      await reader.watermark('w1', 'high');
    } finally {
      await reader.close();
    }
  });
});
