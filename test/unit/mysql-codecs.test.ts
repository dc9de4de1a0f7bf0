/** Codec edge cases: decimal, temporal, CHAR metadata, JSON diffs, positions, GTID sets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDecimal, decimalBinarySize, encodeDecimal } from '../../connectors/mysql/decimal.js';
import { decodeDatetime2, decodeTime2, decodeTimestamp2, decodeDate } from '../../connectors/mysql/temporal.js';
import { stringMeta, ColumnType } from '../../connectors/mysql/column-types.js';
import { applyJsonDiffs, parseJsonPath } from '../../connectors/mysql/json-diff.js';
import { MysqlPosition } from '../../connectors/mysql/position.js';
import { MariadbGtidState, MysqlGtidSet } from '../../connectors/mysql/gtid.js';
import { float32ToNumber } from '../../connectors/mysql/values.js';
import { Reader } from '../../connectors/mysql/reader.js';

test('NEWDECIMAL: the documented MySQL example bytes, positive and negative', () => {
  // DECIMAL(14,4): 1234567890.1234 and its negation, from MySQL's decimal2bin() comment.
  assert.equal(decodeDecimal(Buffer.from('810dfb38d204d2', 'hex'), 0, 14, 4), '1234567890.1234');
  assert.equal(decodeDecimal(Buffer.from('7ef204c72dfb2d', 'hex'), 0, 14, 4), '-1234567890.1234');
  assert.equal(decimalBinarySize(14, 4), 7);
});

test('NEWDECIMAL: zero, scale digits kept, leading zeros dropped, sign only when non-zero', () => {
  const rt = (s: string, p: number, sc: number): string => decodeDecimal(encodeDecimal(s, p, sc), 0, p, sc);
  assert.equal(rt('12.30', 10, 2), '12.30');
  assert.equal(rt('-12.30', 10, 2), '-12.30');
  assert.equal(rt('0.00', 10, 2), '0.00');
  assert.equal(rt('-0.00', 10, 2), '0.00');
  assert.equal(rt('0', 5, 0), '0');
  assert.equal(rt('-7', 5, 0), '-7');
  assert.equal(rt('-0.5', 3, 1), '-0.5');
  assert.equal(rt('0.000000001', 20, 9), '0.000000001');
  assert.equal(rt('1000000000', 10, 0), '1000000000');
  // An offset into a larger buffer.
  const b = Buffer.concat([Buffer.from([1, 2, 3]), encodeDecimal('-99.99', 4, 2)]);
  assert.equal(decodeDecimal(b, 3, 4, 2), '-99.99');
});

test('NEWDECIMAL: precision 65, scale 30, both signs', () => {
  const big = '12345678901234567890123456789012345.123456789012345678901234567890';
  assert.equal(decimalBinarySize(65, 30), 30);
  assert.equal(decodeDecimal(encodeDecimal(big, 65, 30), 0, 65, 30), big);
  assert.equal(decodeDecimal(encodeDecimal('-' + big, 65, 30), 0, 65, 30), '-' + big);
  const max = '9'.repeat(35) + '.' + '9'.repeat(30);
  assert.equal(decodeDecimal(encodeDecimal(max, 65, 30), 0, 65, 30), max);
  assert.equal(decodeDecimal(encodeDecimal('0.000000000000000000000000000001', 65, 30), 0, 65, 30), '0.000000000000000000000000000001');
});

/** DATETIME2 bytes: 5-byte big-endian packed value + 0x8000000000, then the fraction. */
function datetime2(y: number, mo: number, d: number, h: number, mi: number, s: number, frac: Buffer): Buffer {
  const ymd = ((y * 13 + mo) * 32) + d;
  const v = ymd * 131072 + (h * 4096 + mi * 64 + s) + 0x8000000000;
  const b = Buffer.alloc(5);
  b.writeUIntBE(v, 0, 5);
  return Buffer.concat([b, frac]);
}

test('DATETIME2: fractions of every width, no zone, zero datetime is null', () => {
  assert.equal(decodeDatetime2(datetime2(2024, 1, 15, 10, 30, 0, Buffer.alloc(0)), 0, 0), '2024-01-15T10:30:00');
  assert.equal(decodeDatetime2(datetime2(2024, 1, 15, 10, 30, 0, Buffer.from([12])), 0, 2), '2024-01-15T10:30:00.12');
  assert.equal(decodeDatetime2(datetime2(2024, 1, 15, 10, 30, 0, Buffer.from([12])), 0, 1), '2024-01-15T10:30:00.1');
  assert.equal(decodeDatetime2(datetime2(2024, 1, 15, 10, 30, 0, Buffer.from([0x04, 0xce])), 0, 3), '2024-01-15T10:30:00.123'); // 1230
  assert.equal(decodeDatetime2(datetime2(1999, 12, 31, 23, 59, 59, Buffer.from([0x01, 0xe2, 0x40])), 0, 6), '1999-12-31T23:59:59.123456');
  assert.equal(decodeDatetime2(datetime2(0, 0, 0, 0, 0, 0, Buffer.alloc(0)), 0, 0), null);
  assert.equal(decodeDatetime2(datetime2(9999, 12, 31, 23, 59, 59, Buffer.from([0x0f, 0x42, 0x3f])), 0, 6), '9999-12-31T23:59:59.999999');
});

test('DATE: packed 3 bytes; zero date is null, partial zero date kept', () => {
  const date = (y: number, m: number, d: number): Buffer => {
    const b = Buffer.alloc(3);
    b.writeUIntLE(y * 512 + m * 32 + d, 0, 3);
    return b;
  };
  assert.equal(decodeDate(date(2024, 2, 29), 0), '2024-02-29');
  assert.equal(decodeDate(date(0, 0, 0), 0), null);
  assert.equal(decodeDate(date(2024, 0, 0), 0), '2024-00-00');
});

/** TIME2 bytes as MySQL's my_time_packed_to_binary writes them, from a packed value. */
function time2(negative: boolean, h: number, m: number, s: number, micros: number, fsp: number): Buffer {
  const hms = h * 4096 + m * 64 + s;
  const abs = hms * 16777216 + micros;
  const nr = negative ? -abs : abs;
  const intpart = Math.floor(nr / 16777216); // arithmetic >> 24
  const fracC = nr - Math.trunc(nr / 16777216) * 16777216; // C's % keeps the sign
  const out = Buffer.alloc(3 + ((fsp + 1) >> 1));
  if (fsp >= 5) {
    out.writeUIntBE(nr + 0x800000000000, 0, 6);
    return out;
  }
  out.writeUIntBE(intpart + 0x800000, 0, 3);
  if (fsp === 1 || fsp === 2) out.writeInt8(Math.trunc(fracC / 10000), 3);
  else if (fsp === 3 || fsp === 4) out.writeInt16BE(Math.trunc(fracC / 100), 3);
  return out;
}

test('TIME2: positive, negative, over 24 hours, and negative with fractions (complemented)', () => {
  assert.equal(decodeTime2(time2(false, 10, 30, 0, 0, 0), 0, 0), '10:30:00');
  assert.equal(decodeTime2(time2(true, 507, 48, 27, 0, 0), 0, 0), '-507:48:27');
  assert.equal(decodeTime2(time2(true, 0, 0, 1, 500000, 1), 0, 1), '-00:00:01.5');
  assert.equal(decodeTime2(time2(true, 838, 59, 58, 500000, 3), 0, 3), '-838:59:58.500');
  assert.equal(decodeTime2(time2(false, 838, 59, 59, 0, 0), 0, 0), '838:59:59');
  assert.equal(decodeTime2(time2(true, 12, 34, 56, 1, 6), 0, 6), '-12:34:56.000001');
  assert.equal(decodeTime2(time2(false, 12, 34, 56, 120000, 2), 0, 2), '12:34:56.12');
  assert.equal(decodeTime2(time2(true, 1, 0, 0, 990000, 2), 0, 2), '-01:00:00.99');
  assert.equal(decodeTime2(time2(true, 0, 0, 0, 1200, 4), 0, 4), '-00:00:00.0012');
});

test('TIMESTAMP2: UTC with Z and the fsp digits; epoch 0 is null', () => {
  const ts = (sec: number, frac: Buffer): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(sec, 0);
    return Buffer.concat([b, frac]);
  };
  assert.equal(decodeTimestamp2(ts(1705314600, Buffer.alloc(0)), 0, 0), '2024-01-15T10:30:00Z');
  assert.equal(decodeTimestamp2(ts(1705314600, Buffer.from([0x04, 0xce])), 0, 3), '2024-01-15T10:30:00.123Z');
  assert.equal(decodeTimestamp2(ts(1705314600, Buffer.from([0x01, 0xe2, 0x40])), 0, 6), '2024-01-15T10:30:00.123456Z');
  assert.equal(decodeTimestamp2(ts(0, Buffer.alloc(0)), 0, 0), null);
});

test('CHAR length metadata scramble, ENUM/SET real types', () => {
  // CHAR(255) utf8mb4 = 1020 bytes: byte0 = 0xfe ^ ((1020 >> 4) & 0x30), byte1 = 1020 & 0xff.
  assert.deepEqual(stringMeta((0xce << 8) | 0xfc), { realType: ColumnType.STRING, maxLen: 1020 });
  assert.deepEqual(stringMeta((0xfe << 8) | 0x80), { realType: ColumnType.STRING, maxLen: 128 });
  assert.deepEqual(stringMeta((0xee << 8) | 0x00), { realType: ColumnType.STRING, maxLen: 256 });
  assert.deepEqual(stringMeta((0xf7 << 8) | 0x01), { realType: ColumnType.ENUM, maxLen: 1 });
  assert.deepEqual(stringMeta((0xf8 << 8) | 0x01), { realType: ColumnType.SET, maxLen: 1 });
});

test('FLOAT/VECTOR: shortest float32 round-trip form', () => {
  assert.equal(float32ToNumber(Math.fround(1.1)), 1.1);
  assert.equal(float32ToNumber(Math.fround(0.3)), 0.3);
  assert.equal(float32ToNumber(Math.fround(16777217)), 16777216);
  assert.equal(float32ToNumber(Math.fround(3.4028234663852886e38)), 3.4028235e38);
});

test('JSON partial update: replace, insert, remove, nested paths, quoted keys; input untouched', () => {
  const before = { name: 'Joe', age: 25, tags: ['a', 'b'], 'odd key': { x: 1 } };
  const snapshot = JSON.stringify(before);
  const after = applyJsonDiffs(before, [
    { op: 0, path: '$.age', value: 26 },
    { op: 1, path: '$.city', value: 'Oslo' },
    { op: 1, path: '$.tags[1]', value: 'z' },
    { op: 1, path: '$.tags[9]', value: 'end' },
    { op: 2, path: '$.tags[0]' },
    { op: 0, path: '$."odd key".x', value: [1, 2] },
    { op: 2, path: '$.name' },
  ]);
  assert.deepEqual(after, { age: 26, tags: ['z', 'b', 'end'], 'odd key': { x: [1, 2] }, city: 'Oslo' });
  assert.equal(JSON.stringify(before), snapshot);
  assert.deepEqual(parseJsonPath('$.a."b.c"[3].d'), ['a', 'b.c', 3, 'd']);
  assert.deepEqual(applyJsonDiffs({ a: 1 }, [{ op: 0, path: '$', value: [1] }]), [1]);
});

test('MysqlPosition: numeric compare by file sequence then offset, fence order, round trip', () => {
  const a = new MysqlPosition('mysql-bin.000009', 99999, null);
  const b = new MysqlPosition('mysql-bin.000010', 4, 'u:1-3');
  const c = new MysqlPosition('mysql-bin.000010', 120, null);
  assert.ok(a.compare(b) < 0); // "000009" vs "000010", and 99999 > 4: numeric, not textual
  assert.ok(b.compare(c) < 0);
  assert.equal(b.compare(new MysqlPosition('mysql-bin.000010', 4, null)), 0);
  assert.ok(new MysqlPosition('bin.999999', 4).compare(new MysqlPosition('bin.1000000', 4)) < 0);
  assert.ok(a.fence() < b.fence() && b.fence() < c.fence());
  assert.equal(b.fence(), '0000000a0000000000000004');
  assert.equal(b.fence().length, 24);
  const rt = MysqlPosition.parse(b.serialize());
  assert.equal(rt.file, 'mysql-bin.000010');
  assert.equal(rt.pos, 4);
  assert.equal(rt.gtid, 'u:1-3');
  assert.equal(rt.compare(b), 0);
  assert.equal(b.ordinal(), (10n << 30n) + 4n);
  assert.throws(() => MysqlPosition.parse('nope'), /not a MySQL position/);
});

test('GTID sets: merge, tags, MariaDB per-domain state', () => {
  const s = MysqlGtidSet.parse('3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7,aaaaaaaa-0000-0000-0000-000000000000:t1:1-2');
  s.add('3e11fa47-71ca-11e1-9e33-c80aa9429562', '', 6);
  s.add('aaaaaaaa-0000-0000-0000-000000000000', 't1', 3);
  s.add('aaaaaaaa-0000-0000-0000-000000000000', '', 1);
  assert.equal(s.toString(), '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7,aaaaaaaa-0000-0000-0000-000000000000:1:t1:1-3');
  const m = MariadbGtidState.parse('1-2-5,0-1-100');
  m.set(0, 1, 101);
  assert.equal(m.toString(), '0-1-101,1-2-5');
  assert.ok(MariadbGtidState.looksLike('0-1-100,1-2-5'));
  assert.ok(!MariadbGtidState.looksLike('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5'));
});

test('Reader: serialization-library varlen integers', () => {
  const r = new Reader(Buffer.from([0x0a, 0x25, 0x02, 0x0c, 0x02]));
  assert.equal(r.varlenUint(), 5);
  assert.equal(r.varlenUint(), 0x89);
  assert.equal(r.varlenInt(), 3);
  assert.equal(r.varlenInt(), -1);
});
