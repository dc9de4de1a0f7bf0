import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb } from '../helpers/context.js';
import { InProcessPipeline } from '../helpers/pipeline.js';

/**
 * Every supported Postgres type, written with SQL and read back from the envelope that
 * reached the jsonl sink, compared with the exact lossless form DESIGN.md prescribes.
 */
describe('postgres: every type round-trips from SQL to the envelope', { concurrency: false }, () => {
  it('maps each column type exactly', async () => {
    await using db = await PgTestDb.create('types');
    await db.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN posint AS int CHECK (VALUE > 0);
      CREATE TABLE t (
        id int PRIMARY KEY,
        i2 int2, i4 int4, i8 int8, i8big int8, i8neg int8,
        num numeric(12,2), numbig numeric, numnan numeric,
        f4 float4, f8 float8, f8inf float8,
        txt text, vc varchar(20), ch char(5), b bool,
        d date, tm time, tm6 time(6), ts timestamp, ts6 timestamp(6), tstz timestamptz, tstz0 timestamptz, iv interval,
        js json, jsb jsonb, u uuid, by bytea, ia int[], ta text[], nested int[][], ea mood[],
        m mood, dom posint, ip inet, cidr_ cidr, mac macaddr, tstz_inf timestamptz
      );
      ALTER TABLE t REPLICA IDENTITY FULL;`);
    await using p = await InProcessPipeline.start({ name: 'types', source: `type: postgres\nurl: ${db.url}\ntables: [public.t]\nsnapshot: never` });
    await db.query(`INSERT INTO t VALUES (
        1, -32768, 2147483647, 9007199254740991, 9223372036854775807, -9223372036854775808,
        12.30, 123456789012345678901234567890.123456789, 'NaN',
        1.5, 0.1, 'Infinity',
        'héllo ✓ 🎉', 'var', 'ab', true,
        '2024-01-15', '10:30:00', '23:59:59.123456', '2024-01-15 10:30:00', '2024-01-15 10:30:00.123456',
        '2024-01-15 12:30:00.123456+02', '2024-01-15 10:30:00+00', '1 year 2 mons 3 days 04:05:06.5',
        '{"a": [1, 2, {"b": null}], "n": 1.50}', '{"z": 1, "a": "x"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10',
        '{1,2,NULL,4}', '{"a b","c\\"d",NULL,"NULL","{x}"}', '{{1,2},{3,4}}', '{sad,happy}',
        'happy', 5, '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', 'infinity')`);
    const [ev] = await p.waitForEvents(1);
    assert.ok(ev);
    assert.equal(ev.op, 'c');
    assert.equal(ev.before, null);
    assert.deepEqual(ev.key, { id: 1 });
    assert.deepEqual(ev.after, {
      id: 1,
      i2: -32768,
      i4: 2147483647,
      i8: 9007199254740991,
      i8big: '9223372036854775807',
      i8neg: '-9223372036854775808',
      num: '12.30',
      numbig: '123456789012345678901234567890.123456789',
      numnan: 'NaN',
      f4: 1.5,
      f8: 0.1,
      f8inf: 'Infinity',
      txt: 'héllo ✓ 🎉',
      vc: 'var',
      ch: 'ab   ',
      b: true,
      d: '2024-01-15',
      tm: '10:30:00',
      tm6: '23:59:59.123456',
      ts: '2024-01-15T10:30:00',
      ts6: '2024-01-15T10:30:00.123456',
      tstz: '2024-01-15T10:30:00.123456Z',
      tstz0: '2024-01-15T10:30:00Z',
      iv: 'P1Y2M3DT4H5M6.5S',
      js: { a: [1, 2, { b: null }], n: 1.5 },
      jsb: { a: 'x', z: 1 },
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      by: Buffer.from([0x00, 0xff, 0x10]).toString('base64'),
      ia: [1, 2, null, 4],
      ta: ['a b', 'c"d', null, 'NULL', '{x}'],
      nested: [
        [1, 2],
        [3, 4],
      ],
      ea: ['sad', 'happy'],
      m: 'happy',
      dom: 5,
      ip: '192.168.0.1/24',
      cidr_: '10.0.0.0/8',
      mac: '08:00:2b:01:02:03',
      tstz_inf: 'infinity',
    });
    assert.equal(ev.source.connector, 'postgresql');
    assert.equal(ev.source.db, db.name);
    assert.equal(ev.source.schema, 'public');
    assert.equal(ev.source.table, 't');
    assert.equal(ev.source.snapshot, 'false');
    assert.match(ev.source.lsn!, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.equal(typeof ev.source.txId, 'number');
    assert.ok(Math.abs(ev.source.ts_ms - Date.now()) < 60_000, 'ts_ms is the commit time in epoch ms');
  });
});
