/**
 * BinlogDecoder on synthetic events: the stream-side behaviour (no file offsets), MariaDB
 * compressed events, TRANSACTION_PAYLOAD integrity checks, table-map caching.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import { compress } from '@mongodb-js/zstd';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { ChangeEvent } from '../../src/core/event.js';
import { BinlogDecoder, type BinlogDecoderOptions, type MysqlSourceItem } from '../../connectors/mysql/decoder.js';
import { EventType as E } from '../../connectors/mysql/event-header.js';
import { encodeDecimal } from '../../connectors/mysql/decimal.js';
import { inflateMariadb } from '../../connectors/mysql/compression.js';

function lenenc(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  const b = Buffer.alloc(3);
  b[0] = 0xfc;
  b.writeUInt16LE(n, 1);
  return b;
}
const lstr = (s: string): Buffer => Buffer.concat([lenenc(Buffer.byteLength(s)), Buffer.from(s)]);

/** One raw event: 19-byte header + body (+ CRC32 when `crc`). */
function ev(type: number, body: Buffer, logPos: number, o: { crc?: boolean; flags?: number; serverId?: number } = {}): Buffer {
  const size = 19 + body.length + (o.crc ? 4 : 0);
  const h = Buffer.alloc(19);
  h.writeUInt32LE(1700000000, 0);
  h[4] = type;
  h.writeUInt32LE(o.serverId ?? 7, 5);
  h.writeUInt32LE(size, 9);
  h.writeUInt32LE(logPos, 13);
  h.writeUInt16LE(o.flags ?? 0, 17);
  const e = Buffer.concat([h, body]);
  if (!o.crc) return e;
  const c = Buffer.alloc(4);
  c.writeUInt32LE(crc32(e), 0);
  return Buffer.concat([e, c]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}
function tableId(id: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUIntLE(id, 0, 6);
  return b; // 6-byte id + u16 flags (0)
}

/** TABLE_MAP for shop.items(id INT UNSIGNED PK, name VARCHAR(20) utf8mb4, price DECIMAL(10,2)). */
function tableMap(id = 42, names = true): Buffer {
  const tlv = (type: number, v: Buffer): Buffer => Buffer.concat([Buffer.from([type]), lenenc(v.length), v]);
  const body = Buffer.concat([
    tableId(id),
    Buffer.from([4]), Buffer.from('shop\0'), Buffer.from([5]), Buffer.from('items\0'),
    lenenc(3), Buffer.from([3, 15, 246]),
    lenenc(4), Buffer.from([80, 0, 10, 2]),
    Buffer.from([0b110]),
    tlv(1, Buffer.from([0x80])), // SIGNEDNESS over (id, price): id unsigned
    tlv(2, Buffer.from([0xfc, 0xff, 0x00])), // default collation 255 (utf8mb4)
    names ? tlv(4, Buffer.concat([lstr('id'), lstr('name'), lstr('price')])) : Buffer.alloc(0),
    tlv(8, Buffer.from([0])),
  ]);
  return body;
}

function row(id: number, name: string, price: string): Buffer {
  return Buffer.concat([Buffer.from([0]), u32(id), Buffer.from([Buffer.byteLength(name)]), Buffer.from(name), encodeDecimal(price, 10, 2)]);
}

function collect(opts: Partial<BinlogDecoderOptions> = {}): { dec: BinlogDecoder; items: MysqlSourceItem[]; events: () => ChangeEvent[] } {
  const items: MysqlSourceItem[] = [];
  const dec = new BinlogDecoder({ file: 'mysql-bin.000003', clock: () => 5, pipeline: 'p', ...opts, emit: (i) => items.push(i) });
  return { dec, items, events: () => items.flatMap((i) => (i.kind === 'event' ? [i.event] : [])) };
}

const query = (sql: string, db = 'shop'): Buffer =>
  Buffer.concat([u32(1), u32(0), Buffer.from([db.length]), Buffer.from([0, 0, 0, 0]), Buffer.from(db + '\0'), Buffer.from(sql)]);
const xid = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(n, 0);
  return b;
};

test('stream mode: artificial ROTATE names the file, positions come from log_pos, commit at XID', () => {
  const { dec, items, events } = collect({ file: '' });
  const rotate = Buffer.concat([Buffer.from([120, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('mysql-bin.000003')]);
  dec.feed(ev(E.ROTATE, rotate, 0, { flags: 0x20 }));
  assert.equal(dec.position.toString(), 'mysql-bin.000003:120');
  const begin = ev(E.QUERY, query('BEGIN'), 0);
  const beginEnd = 120 + begin.length;
  dec.feed(ev(E.QUERY, query('BEGIN'), beginEnd));
  assert.ok(dec.inTransaction);
  const tm = ev(E.TABLE_MAP, tableMap(), 0);
  const tmEnd = beginEnd + tm.length;
  dec.feed(ev(E.TABLE_MAP, tableMap(), tmEnd));
  const rowsBody = Buffer.concat([tableId(42), Buffer.from([2, 0]), lenenc(3), Buffer.from([7]), row(1, 'pen', '12.30'), row(4294967295, 'ink', '-0.50')]);
  const rowsEnd = tmEnd + 19 + rowsBody.length;
  dec.feed(ev(E.WRITE_ROWS_V2, rowsBody, rowsEnd));
  const xidEnd = rowsEnd + 27;
  dec.feed(ev(E.XID, xid(9), xidEnd));
  assert.ok(!dec.inTransaction);
  assert.deepEqual(events().map((e) => [e.after, e.key, e.source.pos, e.source.row]), [
    [{ id: 1, name: 'pen', price: '12.30' }, { id: 1 }, tmEnd, 0],
    [{ id: 4294967295, name: 'ink', price: '-0.50' }, { id: 4294967295 }, tmEnd, 1],
  ]);
  const commit = items.at(-1)!;
  assert.equal(commit.kind, 'commit');
  assert.equal(commit.kind === 'commit' && commit.txn.toString(), 'mysql-bin.000003:120');
  assert.equal(commit.kind === 'commit' && commit.resume.toString(), `mysql-bin.000003:${xidEnd}`);
  assert.deepEqual(items.slice(0, 2).map((i) => i.kind === 'event' && i.idx), [0, 1]);
  // Heartbeats do not move the position.
  let hb = '';
  const d2 = collect({ onHeartbeat: (p) => (hb = p.toString()) });
  d2.dec.feed(ev(E.HEARTBEAT, Buffer.from('mysql-bin.000003'), 99999));
  assert.equal(hb, 'mysql-bin.000003:4');
  assert.equal(d2.dec.position.pos, 4);
});

test('CRC32 trailers on streamed events are checked once checksums are declared', () => {
  const { dec } = collect({ checksumBeforeFde: true });
  dec.feed(ev(E.QUERY, query('BEGIN'), 200, { crc: true }));
  const bad = ev(E.XID, xid(1), 231, { crc: true });
  bad[20] = bad[20]! ^ 1;
  assert.throws(() => dec.feed(bad), (e: unknown) => e instanceof TributaryError && e.code === ErrorCodes.MYSQL_CHECKSUM);
});

test('TABLE_MAP: identical maps reuse the compiled decoder; rows without a map are a coded error', () => {
  let compiled = 0;
  const { dec, events } = collect({
    schemaFor: (_db, _t, map) => {
      compiled++;
      return map.columnNames ? undefined : { columns: ['a', 'b', 'c'] };
    },
  });
  for (let i = 0; i < 3; i++) dec.feed(ev(E.TABLE_MAP, tableMap(), 0));
  assert.equal(compiled, 1);
  dec.feed(ev(E.TABLE_MAP, tableMap(42, false), 0));
  assert.equal(compiled, 2);
  const rowsBody = Buffer.concat([tableId(42), lenenc(3), Buffer.from([7]), row(3, 'x', '1.00')]);
  dec.feed(ev(E.WRITE_ROWS_V1, rowsBody, 0));
  assert.deepEqual(events()[0]!.after, { a: 3, b: 'x', c: '1.00' });
  const orphan = Buffer.concat([tableId(77), lenenc(3), Buffer.from([7]), row(3, 'x', '1.00')]);
  assert.throws(() => dec.feed(ev(E.WRITE_ROWS_V1, orphan, 0)), (e: unknown) =>
    e instanceof TributaryError && e.code === ErrorCodes.MYSQL_DECODE && /table id 77 without a preceding TABLE_MAP/.test(e.message));
});

/** A MariaDB compressed block: 0x80|lenlen, big-endian original length, zlib data. */
function mariaCompress(data: Buffer): Buffer {
  const lenlen = data.length < 256 ? 1 : data.length < 65536 ? 2 : 3;
  const len = Buffer.alloc(lenlen);
  len.writeUIntBE(data.length, 0, lenlen);
  return Buffer.concat([Buffer.from([0x80 | lenlen]), len, deflateSync(data)]);
}

test('MariaDB compressed events: header byte, QUERY_COMPRESSED text, WRITE/UPDATE_ROWS_COMPRESSED_V1', () => {
  const big = Buffer.from('x'.repeat(300));
  assert.deepEqual(inflateMariadb(mariaCompress(big), 0, mariaCompress(big).length, 't'), big);
  assert.throws(() => inflateMariadb(Buffer.from([0x05, 1, 2]), 0, 3, 't'), /bad compressed block header/);
  const lying = mariaCompress(big);
  lying[2] = lying[2]! + 1; // original length off by one
  assert.throws(() => inflateMariadb(lying, 0, lying.length, 't'), /header says 301/);

  const ddl: string[] = [];
  const { dec, items, events } = collect({ onDdl: (d) => ddl.push(`${d.db}:${d.sql}`) });
  const sql = 'CREATE TABLE items (id INT UNSIGNED PRIMARY KEY, name VARCHAR(20), price DECIMAL(10,2))';
  const qc = Buffer.concat([u32(1), u32(0), Buffer.from([4]), Buffer.from([0, 0, 0, 0]), Buffer.from('shop\0'), mariaCompress(Buffer.from(sql))]);
  dec.feed(ev(E.QUERY_COMPRESSED, qc, 500));
  assert.deepEqual(ddl, [`shop:${sql}`]);
  assert.equal(items.at(-1)!.kind, 'commit');

  // MariaDB GTID (not standalone) opens the transaction; XID ends it.
  const gtid = Buffer.alloc(13);
  gtid.writeUInt32LE(55, 0); // seq
  gtid.writeUInt32LE(0, 8); // domain
  gtid[12] = 0; // flags
  dec.feed(ev(E.MARIADB_GTID, gtid, 600));
  dec.feed(ev(E.TABLE_MAP, tableMap(), 700));
  const rows = Buffer.concat([row(1, 'pen', '2.50'), row(2, 'cap', '0.05')]);
  dec.feed(ev(E.WRITE_ROWS_COMPRESSED_V1, Buffer.concat([tableId(42), lenenc(3), Buffer.from([7]), mariaCompress(rows)]), 800));
  const upd = Buffer.concat([row(1, 'pen', '2.50'), row(1, 'pen', '3.00')]);
  dec.feed(ev(E.UPDATE_ROWS_COMPRESSED_V1, Buffer.concat([tableId(42), lenenc(3), Buffer.from([7, 7]), mariaCompress(upd)]), 900));
  dec.feed(ev(E.XID, xid(3), 931));
  assert.deepEqual(events().map((e) => [e.op, e.before, e.after, e.source.gtid]), [
    ['c', null, { id: 1, name: 'pen', price: '2.50' }, '0-7-55'],
    ['c', null, { id: 2, name: 'cap', price: '0.05' }, '0-7-55'],
    ['u', { id: 1, name: 'pen', price: '2.50' }, { id: 1, name: 'pen', price: '3.00' }, '0-7-55'],
  ]);
  const c = items.at(-1)!;
  assert.equal(c.kind === 'commit' && c.resume.toString(), 'mysql-bin.000003:931 (0-7-55)');
  assert.equal(c.kind === 'commit' && c.txn.pos, 600 - 19 - 13);

  // A standalone GTID: the next statement alone is the transaction.
  gtid.writeUInt32LE(56, 0);
  gtid[12] = 1;
  dec.feed(ev(E.MARIADB_GTID, gtid, 1000));
  dec.feed(ev(E.QUERY, query('DROP TABLE t9'), 1100));
  const c2 = items.at(-1)!;
  assert.equal(c2.kind === 'commit' && c2.resume.toString(), 'mysql-bin.000003:1100 (0-7-56)');
});

/** TRANSACTION_PAYLOAD body: TLV header (all lenenc) then the payload bytes. */
function payloadBody(data: Buffer, uncompressed: number, compression = 0): Buffer {
  const field = (t: number, v: number): Buffer => {
    const val = lenenc(v);
    return Buffer.concat([lenenc(t), lenenc(val.length), val]);
  };
  return Buffer.concat([field(1, data.length), field(2, compression), field(3, uncompressed), lenenc(0), data]);
}

async function innerTxn(): Promise<{ inner: Buffer; zstd: Buffer }> {
  const rowsBody = Buffer.concat([tableId(42), Buffer.from([2, 0]), lenenc(3), Buffer.from([7]), row(9, 'zed', '9.99')]);
  const inner = Buffer.concat([
    ev(E.QUERY, query('BEGIN'), 0), ev(E.TABLE_MAP, tableMap(), 0), ev(E.WRITE_ROWS_V2, rowsBody, 0), ev(E.XID, xid(5), 0),
  ]);
  return { inner, zstd: await compress(inner) };
}

test('TRANSACTION_PAYLOAD: decoded with the outer position; feed returns a Promise', async () => {
  const { inner, zstd } = await innerTxn();
  const { dec, items, events } = collect();
  const outer = ev(E.TRANSACTION_PAYLOAD, payloadBody(zstd, inner.length), 5000);
  const p = dec.feed(outer);
  assert.ok(p instanceof Promise);
  await p;
  assert.deepEqual(events().map((e) => [e.after, e.source.pos]), [[{ id: 9, name: 'zed', price: '9.99' }, 5000 - outer.length]]);
  const c = items.at(-1)!;
  assert.equal(c.kind === 'commit' && c.resume.pos, 5000);
  assert.equal(dec.position.pos, 5000);
  // Uncompressed payloads (compression type 255) are decoded synchronously.
  const d2 = collect();
  assert.equal(d2.dec.feed(ev(E.TRANSACTION_PAYLOAD, payloadBody(inner, inner.length, 255), 6000)), undefined);
  assert.equal(d2.events().length, 1);
});

test('TRANSACTION_PAYLOAD: a truncated or lying frame is a coded error, never a short success', async () => {
  const { inner, zstd } = await innerTxn();
  const cut = zstd.subarray(0, zstd.length - 6);
  const rejects = async (body: Buffer, re: RegExp): Promise<void> => {
    const { dec } = collect();
    await assert.rejects(async () => {
      await dec.feed(ev(E.TRANSACTION_PAYLOAD, body, 5000));
    }, (e: unknown) => e instanceof TributaryError && e.code === ErrorCodes.MYSQL_DECODE && re.test(e.message));
  };
  await rejects(payloadBody(cut, inner.length), /zstd payload/);
  await rejects(payloadBody(zstd, inner.length + 1), /inflated to \d+ bytes, header says/);
  // Inflates correctly but the inner events do not end exactly at the payload end.
  const ragged = Buffer.concat([inner, Buffer.from([1, 2, 3])]);
  await rejects(payloadBody(await compress(ragged), ragged.length), /inner event at \d+ is truncated/);
});
