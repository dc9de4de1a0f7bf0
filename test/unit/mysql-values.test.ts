/**
 * Issue 12 §10, MySQL/MariaDB: values that broke the documented rules, on the bytes a real
 * server wrote (MariaDB 10.11, binlog_row_metadata=FULL) and on hand-made row images.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ColumnType as T } from '../../connectors/mysql/column-types.js';
import { Reader } from '../../connectors/mysql/reader.js';
import { RowDecoder } from '../../connectors/mysql/row-decoder.js';
import { float32ToNumber } from '../../connectors/mysql/values.js';
import { parseTableMapBody, type TableMap } from '../../connectors/mysql/table-map.js';
import type { Row } from '../../src/core/event.js';
import { JsonBytes } from '../../src/core/json-bytes.js';

/**
 * `CREATE TABLE g (id int primary key, g geometry, t1 varchar(20) charset utf8mb4, t2
 * varchar(20) charset latin1, t3 text charset koi8r, s set('é','😀','a"b','x'), e
 * enum('ü','😀','z'), j longtext check (json_valid(j)), f float, d double, dec1
 * decimal(20,5), dt date, dtm datetime(6), ts timestamp(3) null, tm time(2), b bit(10), y
 * year, bin varbinary(10), ch char(5), u bigint unsigned, tx tinyint)`: its TABLE_MAP body
 * (from the db name on) and the WRITE_ROWS_V1 body of `(1, POINT(1 2), 'héllo', 'café',
 * 'привет', 'é,😀,a"b', '😀', '{"a":\n 1e400}', 1.4e-45, -1.5e300, -123.45, '2024-01-15',
 * '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00.5', '-838:59:59.5', b'1010101010',
 * 2024, x'00ff27', 'ab', 18446744073709551615, -128)`, as MariaDB 10.11 logged them.
 */
const G_MAP =
  '07655f70726f6265000167001503ff0f0ffcfefefc0405f60a121113100d0ffe080118045000140002f801f701040408140506030202010a00fe14feff1f01010c03073f2d08072d3f2d070100043a026964016702743102743202743301730165016a0166016404646563310264740364746d02747302746d016201790362696e02636801750274780a012d050f0402c3a9043f3f3f3f036122620178060b0302c3bc043f3f3f3f017a080100';
const G_ROWS =
  '170100000000010015ffff1f0000e00100000019000000000000000101000000000000000000f03f00000000000000400668c3a96c6c6f04636166e90600d0d2c9d7c5d407020d0000007b2261223a0a2031653430307d01000000355800662deb41fe7fffffffffff84ff50372fd00f99b25ea78001e24065a5092813884b9104ce02aa7c0300ff27026162ffffffffffffffff80';

/** The schema history's labels for `s` and `e` (from the CREATE TABLE text, utf8mb4). */
const HINT = { columns: [] as string[], setValues: { s: ['é', '😀', 'a"b', 'x'] }, enumValues: { e: ['ü', '😀', 'z'] } };

function decodeG(mariadb: boolean, hint = true): { map: TableMap; obj: Row; json: string } {
  const map = parseTableMapBody(new Reader(Buffer.from(G_MAP, 'hex')), 279, mariadb);
  const dec = new RowDecoder(map, map.columnNames!, hint ? { ...HINT, columns: map.columnNames!, jsonColumns: ['j'] } : undefined);
  const body = Buffer.from(G_ROWS, 'hex');
  const image = 8 + 1 + 3; // table id + flags, column count (21), column bitmap
  const obj: Row = {};
  dec.decode(body, image, body.length, dec.allColumns, obj);
  const w = new JsonBytes(8);
  dec.write(body, image, body.length, dec.allColumns, w, dec.newSpans);
  return { map, obj, json: w.toString() };
}

test('MariaDB TABLE_MAP: GEOMETRY is among the charset columns, YEAR among the signed ones', () => {
  const { map, json } = decodeG(true);
  const coll = Object.fromEntries(map.columnNames!.map((n, i) => [n, map.collations[i]]));
  // Without GEOMETRY in the count every text column took its left neighbour's charset.
  assert.deepEqual([coll.g, coll.t1, coll.t2, coll.t3, coll.j, coll.bin, coll.ch], [63, 45, 8, 7, 45, 63, 45]);
  const after = JSON.parse(json) as Record<string, unknown>;
  assert.equal(after.t1, 'héllo', 'utf8mb4 after GEOMETRY (was base64 "aMOpbGxv")');
  assert.equal(after.t2, 'café', 'latin1 after GEOMETRY (was "caf\\ufffd")');
  assert.equal(after.t3, 'привет', 'koi8r');
  assert.equal(after.bin, 'AP8n', 'varbinary: base64');
  assert.equal(after.ch, 'ab');
  // Without YEAR in the count a signed TINYINT after a YEAR column read the bit of the
  // unsigned BIGINT before it: -128 came out as 128.
  assert.equal(after.tx, -128);
  assert.equal(after.u, '18446744073709551615');
  assert.deepEqual(after.g, { srid: 0, wkb: 'AQEAAAAAAAAAAADwPwAAAAAAAABA' });
});

test('MariaDB SET and ENUM labels with 4-byte characters: the history has them, the TABLE_MAP has ????', () => {
  const { json, obj } = decodeG(true);
  assert.ok(json.includes('"s":"é,😀,a\\"b"'), json);
  assert.ok(json.includes('"e":"😀"'), json);
  assert.equal(obj.s, 'é,😀,a"b');
  // Without a schema history only the logged labels are known: still valid UTF-8 JSON.
  const bare = decodeG(true, false);
  assert.equal((JSON.parse(bare.json) as Record<string, unknown>).s, 'é,????,a"b');
});

test('MariaDB JSON text keeps its numbers exact and its envelope on one line; FLOAT subnormals are shortest', () => {
  const { json } = decodeG(true);
  assert.ok(json.includes('"j":{"a":1e400}'), json);
  assert.ok(json.includes('"f":1e-45'), json);
  assert.ok(json.includes('"d":-1.5e+300'), json);
});

/** A TABLE_MAP for hand-made images: one column of each given type, utf8mb4 text. */
function map(names: string[], types: number[], metas: number[], labels: Record<number, string[]> = {}): TableMap {
  return {
    tableId: 1, db: 'd', table: 't', columnCount: names.length, types: Uint8Array.from(types), realTypes: Uint8Array.from(types),
    metas: Uint32Array.from(metas), nullable: names.map(() => true), unsigned: names.map(() => false), collations: names.map(() => 255),
    columnNames: names, enumValues: names.map((_, i) => (types[i] === T.ENUM ? labels[i]! : null)),
    setValues: names.map((_, i) => (types[i] === T.SET ? labels[i]! : null)), geometryTypes: names.map(() => null),
    primaryKey: null, primaryKeyPrefixes: null, visible: null, vectorDimensions: names.map(() => null), signature: Buffer.alloc(0), mariadb: true,
  };
}

function write(dec: RowDecoder, image: Buffer): string {
  const w = new JsonBytes(8);
  dec.write(image, 0, image.length, dec.allColumns, w, dec.newSpans);
  return w.toString();
}

test('a SET with non-ASCII labels is written as UTF-8 while streaming (was one byte per UTF-16 unit)', () => {
  // Labels that need no escaping were written with JsonBytes.ascii: 'é' as one latin1 byte,
  // '😀' as "=\u0000" (a raw NUL). One that needs escaping took the right path by luck.
  for (const [labels, want] of [
    [['é', '😀', 'plain', 'x'], '{"s":"é,😀,x","e":"😀"}'],
    [['é', '😀', 'plain', 'a"b'], '{"s":"é,😀,a\\"b","e":"😀"}'],
  ] as const) {
    const dec = new RowDecoder(map(['s', 'e'], [T.SET, T.ENUM], [1, 1], { 0: [...labels], 1: [...labels] }), ['s', 'e']);
    const json = write(dec, Buffer.from([0, 0b1011, 2]));
    assert.equal(json, want);
    assert.ok(!json.includes('\u0000'));
  }
});

test('MariaDB JSON text: numbers beyond double range and -0 are copied; line breaks compacted; invalid text is a string', () => {
  const dec = new RowDecoder(map(['j'], [T.BLOB], [4]), ['j'], { columns: ['j'], jsonColumns: ['j'] });
  const blob = (s: string): Buffer => {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h.writeUInt32LE(b.length, 1);
    return Buffer.concat([h, b]);
  };
  const cases: [string, string][] = [
    ['{"n":-0,"big":12345678901234567890123}', '{"n":-0,"big":12345678901234567890123}'],
    ['[1e400, 123456789012345678901234567890]', '[1e400, 123456789012345678901234567890]'],
    ['{"a":\r\n  [1e400,\n "x\\ny"]}', '{"a":[1e400,"x\\ny"]}'],
    ['not json', '"not json"'],
    ['['.repeat(400) + ']'.repeat(400), '['.repeat(400) + ']'.repeat(400)],
  ];
  for (const [text, want] of cases) assert.equal(write(dec, blob(text)), `{"j":${want}}`, text.slice(0, 40));
});

test('FLOAT: the shortest decimal that reads back as the same float32, subnormals included', () => {
  // The reference: try every precision from 1.
  const shortest = (f: number): number => {
    for (let p = 1; p <= 9; p++) {
      const v = Number(f.toPrecision(p));
      if (Math.fround(v) === f) return v;
    }
    return f;
  };
  assert.equal(float32ToNumber(Math.fround(1.4e-45)), 1e-45);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  let seed = 12345;
  const samples: number[] = [];
  for (let k = 0; k < 20000; k++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    u32[0] = k < 10000 ? seed : seed & 0x807fffff; // half of them subnormal
    if (Number.isFinite(f32[0]!)) samples.push(f32[0]!);
  }
  for (const bits of [1, 2, 3, 0x7fffff, 0x800000, 0x800001, 0x7f7fffff]) {
    u32[0] = bits;
    samples.push(f32[0]!);
  }
  for (const f of samples) {
    const got = float32ToNumber(f);
    assert.equal(Math.fround(got), f);
    assert.equal(got, shortest(f), `float32 ${f}`);
  }
});

test('FLOAT and DOUBLE -0 keep their sign on the stream path', () => {
  const dec = new RowDecoder(map(['f', 'd'], [T.FLOAT, T.DOUBLE], [4, 8]), ['f', 'd']);
  const img = Buffer.alloc(13);
  img.writeFloatLE(-0, 1);
  img.writeDoubleLE(-0, 5);
  assert.equal(write(dec, img), '{"f":-0,"d":-0}');
});
