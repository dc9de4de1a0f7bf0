/**
 * Decodes every real binlog file in test/fixtures/mysql-binlog and asserts exact values.
 * Values were cross-checked with `mariadb-binlog -v --base64-output=decode-rows` where it
 * can read the file (it cannot read TRANSACTION_PAYLOAD, PARTIAL_UPDATE_ROWS or GTID_TAGGED).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { ChangeEvent } from '../../src/core/event.js';
import { decodeBinlogFile, decodeBinlogFilesToJsonl, type DecodeFileOptions } from '../../connectors/mysql/file.js';
import type { MysqlSourceItem } from '../../connectors/mysql/decoder.js';
import type { MysqlPosition } from '../../connectors/mysql/position.js';
import { vectorFiles, vectorsDir } from '../helpers/env.js';

const VECTORS = vectorsDir();
const v = (name: string): string => join(VECTORS, name);

interface Decoded {
  items: MysqlSourceItem[];
  events: ChangeEvent[];
  commits: { txn: MysqlPosition; resume: MysqlPosition }[];
  ddl: string[];
}

async function decode(name: string, opts: DecodeFileOptions = {}): Promise<Decoded> {
  const out: Decoded = { items: [], events: [], commits: [], ddl: [] };
  for await (const it of decodeBinlogFile(v(name), {
    fallbackColumnNames: true, clock: () => 42, onDdl: (d) => out.ddl.push(d.sql), ...opts,
  })) {
    out.items.push(it);
    if (it.kind === 'event') out.events.push(it.event);
    else out.commits.push({ txn: it.txn, resume: it.resume });
  }
  return out;
}

async function decodeError(path: string, opts: DecodeFileOptions = {}): Promise<TributaryError> {
  try {
    for await (const _ of decodeBinlogFile(path, { fallbackColumnNames: true, ...opts })) void _;
  } catch (err) {
    assert.ok(err instanceof TributaryError, `expected a TributaryError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${path} decoded without error`);
}

test('every vector file is covered by a test below', () => {
  const files = vectorFiles();
  assert.deepEqual(files, [
    'binlog-invisible-columns.000001', 'binlog_transaction.000001', 'binlog_transaction_with_GTID.000001',
    'binlog_transaction_with_GTID_TAG.000001', 'binlog_truncated_event.000001', 'json-opaque.binlog',
    'json.binlog.000001', 'mariadb-bin.000001', 'minimal_row_metadata.000001', 'mysql-bin.checksum-crc32',
    'mysql-bin.checksum-none', 'mysql-bin.compressed', 'mysql-enum-string-set.000001', 'mysql_type_bit.000001',
    'time_issue.000001', 'transaction_compression.000001', 'vector.binlog',
  ]);
});

test('transaction_compression: zstd TRANSACTION_PAYLOAD rows, positions from the outer event', async () => {
  const d = await decode('transaction_compression.000001');
  assert.equal(d.events.length, 1);
  const e = d.events[0]!;
  assert.equal(e.op, 'c');
  assert.deepEqual(e.after, { _col0: 1 });
  assert.equal(e.source.db, 'test');
  assert.equal(e.source.table, 'tb1');
  assert.equal(e.source.pos, 274); // the TRANSACTION_PAYLOAD event's start
  assert.equal(d.commits.length, 1);
  assert.equal(d.commits[0]!.txn.pos, 197); // ANONYMOUS_GTID starts the transaction
  assert.equal(d.commits[0]!.resume.pos, 431); // just after the payload event
  assert.equal(d.commits[0]!.resume.gtid, '357df524-4139-11ee-9979-b033ee13919e:1'); // from PREVIOUS_GTIDS
  const item = d.items[0]!;
  assert.equal(item.kind, 'event');
  assert.equal(item.kind === 'event' && item.txn.compare(d.commits[0]!.txn), 0);
});

test('mysql-bin.compressed: UPDATE_ROWS_V2 inside a payload, 11 columns', async () => {
  const d = await decode('mysql-bin.compressed');
  assert.equal(d.events.length, 1);
  const e = d.events[0]!;
  assert.equal(e.op, 'u');
  assert.equal(e.source.table, 'movies');
  assert.equal(e.source.server_id, 223344);
  assert.equal(Object.keys(e.after!).length, 11);
  assert.equal(e.before!._col4, 'Western');
  assert.equal(e.after!._col4, 'Western|Action');
  assert.equal(e.after!._col1, 'Once Upon a Time in the West');
  assert.equal(e.after!._col2, 1968);
  assert.equal(d.commits[0]!.resume.pos, 724);
});

test('json.binlog: JSON inserts, full update, and PARTIAL_UPDATE_ROWS ($.age → 26)', async () => {
  const d = await decode('json.binlog.000001', { partialJson: 'diff' });
  assert.deepEqual(d.events[0]!.after, { _col0: 1, _col1: { age: 24, data: 'xxxxxxxxxx', name: 'Joe' }, _col2: 'Joe', _col3: 24 });
  const fullUpdates = d.events.filter((e) => e.op === 'u' && e.before!._col1 !== undefined);
  assert.equal(fullUpdates.length, 6);
  assert.deepEqual(fullUpdates[0]!.after!._col1, { age: 25, data: 'xxxxxxxxxx', name: 'Joe' });
  const partial = d.events.slice(-6);
  assert.equal(partial[0]!.op, 'u');
  assert.equal(partial[0]!.source.pos, 3750);
  // binlog_row_image=MINIMAL: the before image is the key only, the after image holds the
  // JSON diff and the generated columns that depend on it.
  assert.deepEqual(partial[0]!.before, { _col0: 1 });
  assert.deepEqual(partial[0]!.after, {
    _col1: { $jsonDiff: [{ op: 'replace', path: '$.age', value: 26 }] }, _col2: 'Joe', _col3: 26,
  });
  assert.deepEqual(partial.map((e) => e.after!._col3), [26, 34, 42, 26, 34, 42]);
});

test('json.binlog: by default a partial JSON diff without a before document is a coded error', async () => {
  const err = await decodeError(v('json.binlog.000001'));
  assert.equal(err.code, ErrorCodes.MYSQL_PARTIAL_JSON);
  assert.match(err.message, /partial JSON update of _col1/);
  assert.match(err.fix ?? '', /binlog_row_value_options/);
});

test('json-opaque: opaque DATE/DATETIME/TIME/DECIMAL values inside JSON', async () => {
  const d = await decode('json-opaque.binlog');
  assert.deepEqual(d.events.map((e) => e.after!.a), [
    { a: 'base64:type15:VQ==' },
    { b: '2012-03-18' },
    { c: '2012-03-18 11:30:45.000000' },
    { c: '87:31:46.654321' },
    { d: '123.456' },
    { e: '9.00' },
    { e: [0, 1, true, false] },
    { e: null },
  ]);
  assert.deepEqual(d.ddl, ['CREATE DATABASE foo', 'create table test (a json)']);
});

test('time_issue: negative TIME of 21 days 03:48:27', async () => {
  const d = await decode('time_issue.000001');
  assert.deepEqual(d.events.map((e) => e.after), [{ _col0: '-507:48:27' }]);
});

test('minimal_row_metadata: unsigned INT from SIGNEDNESS metadata, MINIMAL names', async () => {
  const d = await decode('minimal_row_metadata.000001');
  assert.deepEqual(d.events[0]!.after, { _col0: 1, _col2: 'a', _col4: 3230202323 });
  assert.equal(d.events[0]!.key, null);
  // The trailing ROTATE moves the decoder to the next file.
  assert.equal(d.commits[0]!.resume.toString(), 'minimal_row_metadata.000001:451');
});

test('minimal_row_metadata: without names or a fallback the error names the fix', async () => {
  const err = await decodeError(v('minimal_row_metadata.000001'), { fallbackColumnNames: false });
  assert.equal(err.code, ErrorCodes.MYSQL_SCHEMA_UNKNOWN);
  assert.match(err.message, /noria\.t1/);
  assert.match(err.fix ?? '', /binlog_row_metadata = 'FULL'/);
});

test('minimal_row_metadata: a schema hint supplies names and the key', async () => {
  const d = await decode('minimal_row_metadata.000001', {
    fallbackColumnNames: false,
    schemaFor: (db, table, map) => {
      assert.equal(`${db}.${table}`, 'noria.t1');
      assert.equal(map.columnCount, 5);
      return { columns: ['id', 'b', 'c', 'd', 'u'], primaryKey: ['id'] };
    },
  });
  assert.deepEqual(d.events[0]!.after, { id: 1, c: 'a', u: 3230202323 });
  assert.deepEqual(d.events[0]!.key, { id: 1 });
});

test('mysql-enum-string-set: long CHAR/VARCHAR, ENUM and SET labels; insert, update, delete', async () => {
  const d = await decode('mysql-enum-string-set.000001');
  const digits = '0123456789'.repeat(10);
  const d10 = '0123456789';
  const long = d10.repeat(12) + '012345678' + d10.repeat(12) + '012345678' + d10.repeat(4); // VARCHAR(300), 298 chars
  assert.equal(d.events[0]!.after!.f2, long);
  assert.equal(d.events[1]!.after!.f5, long);
  assert.deepEqual(d.events.map((e) => e.op), ['c', 'u', 'd']);
  assert.deepEqual({ ...d.events[0]!.after, f2: undefined }, { f1: digits, f2: undefined, f3: 'var1', f4: 'one,three', f5: '0123456789' });
  assert.deepEqual({ ...d.events[1]!.after, f5: undefined }, { f1: 'field1', f2: 'field_2', f3: 'variant2', f4: 'two,four', f5: undefined });
  assert.deepEqual(d.events[1]!.before, d.events[0]!.after);
  assert.deepEqual(d.events[2]!.before, d.events[1]!.after);
  assert.equal(d.events[2]!.after, null);
  assert.equal(d.events[0]!.source.gtid, '93e95066-a2f4-11ec-9b69-9657f0ae95e2:3');
  assert.equal(d.commits.at(-1)!.resume.gtid, '93e95066-a2f4-11ec-9b69-9657f0ae95e2:1-5');
});

test('mysql_type_bit: BIT(3) and BIT(8) as numbers', async () => {
  const d = await decode('mysql_type_bit.000001');
  assert.deepEqual(d.events.map((e) => e.after), [{ a: 4, b: 'foo', c: 32 }]);
});

test('binlog-invisible-columns: invisible columns are decoded like the others', async () => {
  const d = await decode('binlog-invisible-columns.000001');
  assert.deepEqual(d.events.map((e) => [e.op, e.before, e.after]), [
    ['c', null, { f1: 1, f2: 2, f3: -3, f4: '4', f5: 'BQ==', f6: 6000000000 }],
    ['c', null, { f1: null, f2: null, f3: -33, f4: '44', f5: 'VQ==', f6: null }],
    ['u', { f1: null, f2: null, f3: -33, f4: '44', f5: 'VQ==', f6: null }, { f1: 111, f2: 222, f3: -333, f4: '444', f5: 'VQ==', f6: null }],
  ]);
});

test('vector: VECTOR columns as float32 arrays, TEXT charset after VECTOR columns', async () => {
  const d = await decode('vector.binlog');
  assert.deepEqual(d.events.slice(0, 4).map((e) => [e.source.table, e.after, e.key]), [
    ['foo', { id: 1, vector_column: [1.1, 2.2, 3.3] }, { id: 1 }],
    ['foo', { id: 2, vector_column: [1, -1, 0] }, { id: 2 }],
    ['bar', { id: 1, vector_column: [1.1, 2.2], foo: null, vector_column2: [1.1, 2.2, 3.3, 4.4] }, { id: 1 }],
    ['bar', { id: 2, vector_column: [1.01, -1.01], foo: 'bar', vector_column2: [42, 43, 44, 45] }, { id: 2 }],
  ]);
  const last = d.events.slice(-2);
  assert.equal(last[0]!.op, 'd');
  assert.deepEqual(last[1]!.after, { id: 3, vector_column: [2.01, -2.01], foo: null, vector_column2: [42.1, 43.2, 44.3, 45.4] });
});

test('mysql-bin.checksum-crc32 vs checksum-none: CRC32 verified, rows decoded', async () => {
  const crc = await decode('mysql-bin.checksum-crc32');
  assert.equal(crc.events.length, 63);
  assert.deepEqual(crc.events[0]!.after, {
    _col0: 12300113, _col1: 'test2', _col2: '/', _col3: 116103, _col4: '2018-05-04T08:31:59Z', _col5: 906703,
    _col6: 0, _col7: 0, _col8: 0, _col9: '2018-05-04T08:31:59Z', _col10: 0, _col11: 12200009,
  });
  assert.deepEqual(crc.commits[0]!.txn.pos, 154);
  assert.deepEqual(crc.commits[0]!.resume.pos, 517);
  const none = await decode('mysql-bin.checksum-none');
  assert.equal(none.events.length, 36);
  assert.deepEqual(none.events[0]!.after, {
    _col0: '42b0a771-9345-4b19-b503-d51b5fff30ef', _col1: '2018-10-30T18:02:09', _col2: '2018-10-30T18:02:09',
    _col3: '086', _col4: 'zh-cn', _col5: '18888888888', _col6: 'test_nickname',
    _col7: '14e1b600b1fd579f47433b88e8d85291', _col8: 'test_user_name',
  });
  assert.equal(none.commits.find((c) => c.resume.pos === 1544)?.txn.pos, 1138);
});

test('a corrupted byte fails the CRC32 check with MYSQL_CHECKSUM', async () => {
  const data = Buffer.from(readFileSync(v('mysql_type_bit.000001')));
  data[950] = data[950]! ^ 0xff; // inside the WRITE_ROWS event at 927..970
  const dir = mkdtempSync(join(tmpdir(), 'trb-mysql-'));
  const path = join(dir, 'corrupt.000001');
  writeFileSync(path, data);
  const err = await decodeError(path);
  assert.equal(err.code, ErrorCodes.MYSQL_CHECKSUM);
  assert.match(err.message, /WRITE_ROWS_V2 event at offset 927 fails its CRC32 check/);
});

test('binlog_transaction_with_GTID: GTID sets grow per transaction, DDL is its own transaction', async () => {
  const d = await decode('binlog_transaction_with_GTID.000001');
  const uuid = '006c2cf2-b1ea-11e4-9057-8c705a3d3e78';
  assert.deepEqual(d.commits.map((c) => [c.txn.pos, c.resume.pos, c.resume.gtid]), [
    [151, 297, `${uuid}:1`],
    [297, 603, `${uuid}:1-2`],
    [603, 766, `${uuid}:1-3`],
  ]);
  assert.equal(d.commits[1]!.txn.gtid, `${uuid}:1`);
  assert.deepEqual(d.ddl, ['CREATE TABLE t1 (c1 INT)', 'DROP TABLE `t1` /* generated by server */']);
});

test('binlog_transaction_with_GTID_TAG: tagged GTID and tagged PREVIOUS_GTIDS', async () => {
  const d = await decode('binlog_transaction_with_GTID_TAG.000001');
  const uuid = '55778904-0299-11f1-b1b8-4ef0c4956feb';
  assert.equal(d.events.length, 1);
  assert.deepEqual(d.events[0]!.after, { _col0: 3, _col1: 100, _col2: '250.00' });
  assert.equal(d.events[0]!.source.gtid, `${uuid}:mytag:3`);
  assert.equal(d.commits[0]!.txn.gtid, `${uuid}:1-13:mytag:1-2`);
  assert.equal(d.commits[0]!.resume.gtid, `${uuid}:1-13:mytag:1-3`);
  assert.equal(d.commits[0]!.resume.pos, 541);
});

test('binlog_transaction: MySQL 5.0 (no checksum byte), statement transactions and DDL', async () => {
  const d = await decode('binlog_transaction.000001');
  assert.equal(d.events.length, 0);
  assert.deepEqual(d.commits.map((c) => c.resume.pos), [198, 299, 580, 680, 781, 1107, 1204, 1302, 1626]);
  assert.equal(d.ddl.length, 6);
});

test('mariadb-bin: GTID, GTID_LIST, BINLOG_CHECKPOINT, ANNOTATE_ROWS, WRITE_ROWS_V1', async () => {
  const d = await decode('mariadb-bin.000001');
  assert.deepEqual(d.events.map((e) => [e.after, e.key, e.source.gtid, e.source.pos]), [
    [{ id: 62, topic: 'foo', event_type: 'JSON', event: 'eyJmb28iOjF9', created: '2022-04-20T22:18:04Z' }, { id: 62 }, '0-1-1', 612],
    [{ id: 63, topic: 'foo', event_type: 'JSON', event: 'eyJmb28iOjF9', created: '2022-04-20T22:19:55Z' }, { id: 63 }, '0-1-2', 984],
  ]);
  assert.deepEqual(d.commits.map((c) => [c.txn.pos, c.txn.gtid, c.resume.pos, c.resume.gtid]), [
    [330, null, 702, '0-1-1'],
    [702, '0-1-1', 1074, '0-1-2'],
  ]);
  const e = d.events[0]!;
  assert.deepEqual(e.source, {
    connector: 'mysql', name: '', db: 'toddy_test', table: 'outbox', ts_ms: 1650493084000, snapshot: 'false',
    file: 'mariadb-bin.000001', pos: 612, gtid: '0-1-1', server_id: 1, row: 0,
  });
  assert.equal(e.ts_ms, 42);
});

test('mariadb-bin: a schema hint can mark a binary/text column as JSON', async () => {
  const d = await decode('mariadb-bin.000001', {
    pipeline: 'shop',
    schemaFor: () => ({ columns: ['id', 'topic', 'event_type', 'event', 'created'], jsonColumns: ['event'] }),
  });
  assert.deepEqual(d.events[0]!.after!.event, { foo: 1 });
  assert.equal(d.events[0]!.source.name, 'shop');
});

test('binlog_truncated_event: a clean coded one-line error', async () => {
  const err = await decodeError(v('binlog_truncated_event.000001'));
  assert.equal(err.code, ErrorCodes.MYSQL_TRUNCATED);
  assert.equal(err.message, 'binlog_truncated_event.000001: event at offset 4 is truncated (needs 19 bytes, file has 10)');
});

test('a file cut inside an event body reports the event size it needs', async () => {
  const data = readFileSync(v('mysql_type_bit.000001')).subarray(0, 950);
  const dir = mkdtempSync(join(tmpdir(), 'trb-mysql-'));
  const path = join(dir, 'cut.000001');
  writeFileSync(path, data);
  const err = await decodeError(path);
  assert.equal(err.code, ErrorCodes.MYSQL_TRUNCATED);
  assert.equal(err.message, 'cut.000001: event at offset 927 is truncated (needs 43 bytes, file has 23)');
});

test('decodeBinlogFilesToJsonl writes one envelope per line across files', async () => {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const stats = await decodeBinlogFilesToJsonl([v('mysql_type_bit.000001'), v('vector.binlog')], out, {
    fallbackColumnNames: true, clock: () => 1,
  });
  out.end();
  const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
  assert.equal(stats.events, 11);
  assert.equal(lines.length, 11);
  const first = JSON.parse(lines[0]!) as ChangeEvent;
  assert.deepEqual(first.after, { a: 4, b: 'foo', c: 32 });
  assert.equal((JSON.parse(lines[1]!) as ChangeEvent).source.file, 'vector.binlog');
});
