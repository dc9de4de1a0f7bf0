import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import type { ChunkRows, SnapshotEventBuilder, SnapshotFlag, SnapshotSupport, SnapshotTable, WatermarkAt } from '../../src/snapshot/types.js';
import { ByteRows, keyString } from '../../src/snapshot/types.js';
import { PgSnapshotSupport, pgSnapshotEvent } from '../../connectors/postgres/snapshot.js';
import { SESSION_OPTIONS } from '../../connectors/postgres/replication.js';
import { loadTypes } from '../../connectors/postgres/catalog.js';
import { decoderFor } from '../../connectors/postgres/values.js';
import { MysqlSnapshotSupport, mysqlSnapshotEvent, parseSignalTable } from '../../connectors/mysql/snapshot.js';
import { PgTestDb } from '../helpers/context.js';
import { MysqlTestDb } from '../helpers/mysql.js';

/**
 * Snapshot rows travel serialized (readers hand over JSON text, the coordinator joins it into
 * envelopes without building objects). These tests hold that form to the object envelope:
 * for every row, the serialized envelope parses to exactly the object envelope, with the
 * same key order, and the row's key string is what the coordinator computes for streamed
 * rows. Postgres rows are also held to an independent decode (SELECT, text values, the
 * streaming decoders), so the COPY reader cannot drift from the streaming form.
 */

const FLAGS: SnapshotFlag[] = ['true', 'last', 'incremental'];

/** Every row of a chunk, in every flag: serialized envelope ≡ object envelope. */
function assertEnvelopes(build: SnapshotEventBuilder, table: SnapshotTable, got: ChunkRows, reference: Row[], at: WatermarkAt): void {
  assert.equal(got.rows.length, reference.length, `${table.name}: row count`);
  assert.equal(got.keys.length, reference.length, `${table.name}: one key per row`);
  const now = 1_737_000_000_123;
  const serialize = build.chunk(table, at, now);
  for (let i = 0; i < reference.length; i++) {
    const row = reference[i]!;
    assert.equal(got.keys[i], keyString(table, row), `${table.name} row ${i}: key string`);
    // A key-less row is its own key: the key string is the row as the coordinator prints a
    // parsed streamed row; the row's text may differ in form (json text is copied as stored).
    if (!table.key.length) assert.equal(got.keys[i], JSON.stringify(JSON.parse(got.rows[i]!)), `${table.name} row ${i}: a key-less row is its own key`);
    for (const flag of FLAGS) {
      const ser = serialize(got.rows[i]!, got.keys[i]!, flag);
      // The byte path (rows read into a ByteRows, envelope written as bytes) gives the same text.
      assert.ok(got.bytes, `${table.name}: the reader also fills a ByteRows`);
      assert.equal(got.bytes.keys[i], got.keys[i], `${table.name} row ${i}: byte path key`);
      assert.equal(serialize.bytes(got.bytes, i, flag).json, ser.json, `${table.name} row ${i} (${flag}): byte path envelope`);
      const obj: ChangeEvent = build(table, row, flag, at, now);
      const parsed = JSON.parse(ser.json) as ChangeEvent;
      // What the stream held before: the object envelope through JSON.stringify.
      assert.deepStrictEqual(parsed, JSON.parse(JSON.stringify(obj)), `${table.name} row ${i} (${flag})`);
      // Same key order too (parse and print again: formatting aside, the texts match).
      assert.equal(JSON.stringify(parsed), JSON.stringify(obj), `${table.name} row ${i} (${flag}): key order`);
      assert.equal(ser.table, table.name);
      assert.equal(ser.commitTsMs, obj.source.ts_ms);
    }
  }
}

/** All chunks of a table, through a reader, as one ChunkRows. */
async function readAll(support: SnapshotSupport, table: SnapshotTable, chunkRows: number): Promise<ChunkRows> {
  const chunks = await support.plan(table, chunkRows, null);
  const reader = await support.reader();
  try {
    const all: ChunkRows = { rows: [], keys: [] };
    const bytes = new ByteRows();
    for (const ch of chunks) {
      const r = await reader.read(table, ch, null);
      all.rows.push(...r.rows);
      all.keys.push(...r.keys);
      await reader.readInto?.(table, ch, null, bytes);
    }
    if (reader.readInto) all.bytes = bytes;
    return all;
  } finally {
    await reader.close();
  }
}

describe('serialized snapshot envelopes equal object envelopes', () => {
  it('postgres: composite key, key-less (ctid) table, NULLs and many types', { timeout: 60_000 }, async () => {
    await using db = await PgTestDb.create('snapenv');
    await db.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE TABLE kt (
        a int, b text, i2 smallint, i8 bigint, n numeric, f4 real, f8 float8, bo boolean, t text, vc varchar(20), bp char(4),
        by bytea, ts timestamp(6), tz timestamptz, d date, tm time, j json, jb jsonb, arr int[], tarr text[], u uuid, e mood,
        iv interval, PRIMARY KEY (a, b));
      INSERT INTO kt VALUES
        (1, 'x', 7, 9007199254740993, 12.30, 1.1, 0.1, true, E'tab\\there\\nline \\\\ back "q"', 'vc', 'ab',
         '\\x00ff10', '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00.123456+00', '2024-01-15', '10:30:00.5',
         '{"k": [1, "two", null], "e": "a\\"b"}', '{"k": {"n": 1.50}, "s": "tab\\tq\\"", "u": "é"}', '{1,NULL,3}', '{"a b","c\\"d",NULL,"e\\\\f"}',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', '1 day 02:03:04'),
        (1, E'y\\tz', -32768, -42, 'NaN', 'Infinity', '-Infinity', false, 'üñíçødé ✓ 😀', '', '',
         '\\x', '1999-12-31 23:59:59', '1970-01-01 00:00:00+00', '0001-01-01', '00:00:00', '[]', '{}', '{}', '{}',
         '00000000-0000-0000-0000-000000000000', 'sad', '-1 mons'),
        (2, 'null-row', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
      INSERT INTO kt (a, b, i8, t) SELECT g, 'k' || g, g * 1000, repeat('r', g % 7) FROM generate_series(3, 60) g;
      CREATE TABLE nk (x int, y text, z jsonb);
      INSERT INTO nk VALUES (1, 'dup', '{"a": 1}'), (1, 'dup', '{"a": 1}'), (NULL, NULL, NULL), (2, E'back\\\\slash\\ttab', '[1, {"b": null}]');
      ANALYZE kt; ANALYZE nk;`);
    const support = new PgSnapshotSupport({ url: db.url, include: ['public.kt', 'public.nk'], exclude: undefined, keyColumns: undefined, types: () => new Map() });
    const tables = await support.tables();
    assert.deepEqual(tables.map((t) => [t.name, t.keyKind]).sort(), [['public.kt', 'pk'], ['public.nk', 'ctid']]);
    // The reference: a plain SELECT of text values through the streaming decoders.
    const ref = new pg.Client({ connectionString: db.url, options: SESSION_OPTIONS } as pg.ClientConfig);
    await ref.connect();
    try {
      const types = await loadTypes(ref);
      const raw = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
      const build = pgSnapshotEvent('envpipe', db.name);
      for (const table of tables) {
        const order = table.key.length ? ` ORDER BY ${table.key.map((k) => `"${k}"`).join(', ')}` : ' ORDER BY ctid';
        const r = await ref.query({ text: `SELECT * FROM ${table.name}${order}`, rowMode: 'array', types: raw });
        const decs = r.fields.map((f) => decoderFor(f.dataTypeID, types));
        const reference = (r.rows as (string | null)[][]).map((vals) => {
          const row: Row = {};
          vals.forEach((v, j) => {
            const b = v === null ? null : Buffer.from(v, 'utf8');
            row[r.fields[j]!.name] = b === null ? null : decs[j]!(b, 0, b.length);
          });
          return row;
        });
        const got = await readAll(support, table, 7);
        assertEnvelopes(build, table, got, reference, { lsn: '0/16B3748' });
        assertEnvelopes(build, table, got, reference, {});
      }
    } finally {
      await ref.end();
    }
  });

  it('mysql: composite key, NULLs and many types', { timeout: 60_000 }, async () => {
    await using db = await MysqlTestDb.create('snapenv');
    await db.query(`CREATE TABLE kt (
      a int NOT NULL, b varchar(20) NOT NULL, ti tinyint, bu bigint unsigned, de decimal(12,2), fl float, db double, bi bit(10),
      d date, dt datetime(6), ts timestamp(6) NULL, tm time(3), y year, c char(4), t text, bl blob, j json, e enum('x','y'),
      s set('p','q','r'), PRIMARY KEY (a, b))`);
    await db.query(`INSERT INTO kt VALUES
      (1, 'x', -128, 18446744073709551615, 12.30, 1.1, 0.1, b'1010101010', '2024-01-15', '2024-01-15 10:30:00.123456',
       '2024-01-15 10:30:00.123456', '-838:59:59.000', 2024, 'ab', 'tab\there\nline \\\\ back "q" ü 😀', x'00ff10',
       '{"k": [1, "two", null], "big": 9007199254740993}', 'y', 'p,r'),
      (1, 'y z', 127, 0, -0.01, -3.4e38, 1e300, b'0', '1000-01-01', '1000-01-01 00:00:00', NULL, '00:00:00', 1901, '', '', x'', '[]', 'x', ''),
      (2, 'null-row', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    for (let g = 3; g <= 40; g++) await db.query('INSERT INTO kt (a, b, bu, t) VALUES (?, ?, ?, ?)', [g, `k${g}`, g * 1000, 'r'.repeat(g % 7)]);
    const support = new MysqlSnapshotSupport({
      url: db.url, include: [`${db.name}.kt`], exclude: undefined, keyColumns: undefined, signal: parseSignalTable(`${db.name}.watermarks`),
    });
    const [table] = await support.tables();
    assert.deepEqual(table!.key, ['a', 'b']);
    const got = await readAll(support, table!, 7);
    // The rows' own decoded form is the reference here: mysql-types and mysql-snapshot hold
    // it to the binlog decoder, value by value.
    const reference = got.rows.map((r) => JSON.parse(r) as Row);
    const build = mysqlSnapshotEvent('envpipe', () => 42);
    assertEnvelopes(build, table!, got, reference, { file: 'mariadb-bin.000009', pos: 1461 });
    assertEnvelopes(build, table!, got, reference, {});
  });
});
