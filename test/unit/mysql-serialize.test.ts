/**
 * The serialized binlog path (RowDecoder.write + BinlogDecoder's SerializedChangeEvents)
 * against the object path: for every real binlog vector, every row event's directly written
 * envelope must parse to what JSON.stringify of the object envelope gives, keys in the same
 * order. Plus RowDecoder.write on hand-made images with the strings and names that need
 * escaping, and on random images of every column kind it writes itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type ChangeEvent, SerializedChangeEvent } from '../../src/core/event.js';
import { keyRangeOf } from '../../src/log/json-scan.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import { decodeBinlogFile, type DecodeFileOptions } from '../../connectors/mysql/file.js';
import { ColumnType as T } from '../../connectors/mysql/column-types.js';
import { encodeDecimal } from '../../connectors/mysql/decimal.js';
import { RowDecoder } from '../../connectors/mysql/row-decoder.js';
import { embeddableJsonBytes, isEmbeddableJson } from '../../connectors/mysql/json-text.js';
import type { TableMap } from '../../connectors/mysql/table-map.js';
import { vectorFiles, vectorsDir } from '../helpers/env.js';

const VECTORS = vectorsDir();

interface Run {
  events: ChangeEvent[];
  error: string | null;
}

/** All row events of a file (up to its error, if it has one). */
async function run(file: string, opts: DecodeFileOptions): Promise<Run> {
  const out: Run = { events: [], error: null };
  try {
    for await (const it of decodeBinlogFile(join(VECTORS, file), { fallbackColumnNames: true, partialJson: 'diff', clock: () => 42, ...opts })) {
      if (it.kind === 'event') out.events.push(it.event);
    }
  } catch (err) {
    out.error = String(err);
  }
  return out;
}

/** The envelope as JSON text with the build-time `ts_ms` taken out; key order is kept. */
function canonical(ev: ChangeEvent): string {
  const o = JSON.parse(ev instanceof SerializedChangeEvent ? ev.json : JSON.stringify(ev)) as Partial<ChangeEvent>;
  delete o.ts_ms;
  return JSON.stringify(o);
}

/** Decodes a file both ways and compares every event. Returns how many were serialized. */
async function compare(file: string, opts: DecodeFileOptions = {}): Promise<number> {
  const objects = await run(file, opts);
  const serialized = await run(file, { ...opts, serializeTable: () => true });
  assert.equal(serialized.error, objects.error, `${file}: both paths fail alike`);
  assert.equal(serialized.events.length, objects.events.length, `${file}: event count`);
  let n = 0;
  for (let i = 0; i < objects.events.length; i++) {
    const o = objects.events[i]!;
    const s = serialized.events[i]!;
    assert.ok(!(o instanceof SerializedChangeEvent), 'no serializeTable → objects');
    if (s instanceof SerializedChangeEvent) {
      n++;
      assert.equal(s.table, `${o.source.db}.${o.source.table}`);
      assert.equal(s.commitTsMs, o.source.ts_ms);
      // A JSON line never spans lines.
      assert.ok(!/[\n\r]/.test(s.json), `${file} event ${i}: no raw line break`);
      // The key range the writer noted is the one the log would find by searching.
      assert.deepEqual([s.keyStart, s.keyEnd], keyRangeOf(s.bytes!, s.offset, s.offset + s.byteLength), `${file} event ${i}: key range`);
    }
    assert.equal(canonical(s), canonical(o), `${file} event ${i} (${o.op} ${o.source.db}.${o.source.table})`);
  }
  return n;
}

const FILES = vectorFiles();

for (const file of FILES) {
  test(`serialized envelopes equal the object envelopes: ${file}`, async () => {
    const objects = await run(file, {});
    const n = await compare(file);
    // Only PARTIAL_UPDATE_ROWS keeps the object path (its diffs apply to a before object).
    const rowEvents = objects.events.filter((e) => e.op !== 't').length;
    if (rowEvents > 0) assert.ok(n > 0, `${file}: some events were serialized`);
    if (!file.startsWith('json.binlog')) assert.equal(n, rowEvents, `${file}: every row event was serialized`);
  });
}

test('serialized envelopes: pipeline name, JSON-text columns and keys from a schema hint', async () => {
  const n = await compare('mariadb-bin.000001', {
    pipeline: 'sh"op\n\u2028é',
    schemaFor: () => ({ columns: ['id', 'topic', 'event_type', 'event', 'created'], jsonColumns: ['event', 'topic'], primaryKey: ['topic', 'id'] }),
  });
  assert.equal(n, 2);
  const s = await run('mariadb-bin.000001', {
    serializeTable: () => true,
    schemaFor: () => ({ columns: ['id', 'topic', 'event_type', 'event', 'created'], jsonColumns: ['event'] }),
  });
  assert.deepEqual(s.events[0]!.after!.event, { foo: 1 });
});

test('serializeTable false keeps objects for that table', async () => {
  const s = await run('mariadb-bin.000001', { serializeTable: (db, t) => !(db === 'toddy_test' && t === 'outbox') });
  assert.ok(s.events.length > 0);
  for (const e of s.events) assert.ok(!(e instanceof SerializedChangeEvent));
});

// ---- RowDecoder.write on hand-made images --------------------------------------------

/** A TABLE_MAP of VARCHAR(255) utf8mb4 columns plus, optionally, LONGTEXT/DOUBLE ones. */
function map(names: string[], types: number[], collations: (number | null)[], pk: number[] | null): TableMap {
  const n = names.length;
  const metas = types.map((t) => (t === T.VARCHAR ? 1020 : t === T.BLOB ? 4 : t === T.DOUBLE ? 8 : 0));
  return {
    tableId: 1, db: 'd', table: 't', columnCount: n, types: Uint8Array.from(types), realTypes: Uint8Array.from(types),
    metas: Uint32Array.from(metas), nullable: names.map(() => true), unsigned: names.map(() => false), collations,
    columnNames: names, enumValues: names.map(() => null), setValues: names.map(() => null),
    geometryTypes: names.map(() => null), primaryKey: pk, primaryKeyPrefixes: null,
  } as unknown as TableMap;
}

function varchar(s: Buffer): Buffer {
  const h = Buffer.alloc(2);
  h.writeUInt16LE(s.length, 0);
  return Buffer.concat([h, s]);
}
function blob(s: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE(s.length, 0);
  return Buffer.concat([h, s]);
}
function dbl(x: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x, 0);
  return b;
}

/** An image as {@link RowDecoder.write} writes it, and its key as {@link RowDecoder.writeKey} does. */
function written(dec: RowDecoder, img: Buffer, cols = dec.allColumns): { json: string; key: string; end: number } {
  const w = new JsonBytes(16); // small: growing mid-value must not matter
  const end = dec.write(img, 0, img.length, cols, w, dec.newSpans);
  const json = w.toString();
  const k = new JsonBytes(16);
  dec.writeKey(w, dec.newSpans, k);
  return { json, key: k.toString(), end };
}

/** JSON.stringify, except that a float's -0 keeps its sign, as the envelope's JSON does. */
function stringify(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (Object.is(x, -0) ? '\u0000-0' : x)).replace(/"\\u0000-0"/g, '-0');
}

/** write() text must be byte-identical to JSON.stringify of decode()'s object (-0 keeping its sign). */
function same(dec: RowDecoder, img: Buffer, exact = true): string {
  const obj = {};
  const end1 = dec.decode(img, 0, img.length, dec.allColumns, obj);
  const { json, key, end } = written(dec, img);
  assert.equal(end, end1);
  if (exact) assert.equal(json, stringify(obj));
  else assert.equal(JSON.stringify(JSON.parse(json)), JSON.stringify(obj));
  assert.equal(key, stringify(dec.keyOf(obj)));
  return json;
}

test('RowDecoder.write: escaped names and strings, key order, nulls, non-finite doubles', () => {
  const names = ['id "x"', 'täxt\n', 'bin', 'd'];
  const dec = new RowDecoder(map(names, [T.VARCHAR, T.VARCHAR, T.VARCHAR, T.DOUBLE], [255, 255, 63, null], [3, 0]), names);
  assert.ok(dec.canEncode);
  for (const s of ['plain', 'quote " and \\ back', 'tab\tnl\ncr\r\u0001\u001f', 'é😀\u2028\u2029', '']) {
    const img = Buffer.concat([Buffer.from([0]), varchar(Buffer.from(s)), varchar(Buffer.from(s + '"')), varchar(Buffer.from([0, 1, 255])), dbl(-0)]);
    same(dec, img);
  }
  for (const x of [NaN, Infinity, -Infinity, 1e21, 5e-324, 0.1]) {
    same(dec, Buffer.concat([Buffer.from([0]), varchar(Buffer.from('a')), varchar(Buffer.from('b')), varchar(Buffer.alloc(0)), dbl(x)]));
  }
  // Columns 1 and 3 null (bitmap bits): key column 3 is present as null, so the key holds null.
  same(dec, Buffer.concat([Buffer.from([0b1010]), varchar(Buffer.from('k')), varchar(Buffer.from('z'))]));
  // A subset image without the key columns: key is null.
  const cols = Int32Array.from([1, 2]);
  const img = Buffer.concat([Buffer.from([0]), varchar(Buffer.from('x')), varchar(Buffer.from('y'))]);
  const obj = {};
  dec.decode(img, 0, img.length, cols, obj);
  const out = written(dec, img, cols);
  assert.equal(out.json, JSON.stringify(obj));
  assert.equal(out.key, 'null');
});

test('RowDecoder.write: UTF-16 text with a lone surrogate is escaped like JSON.stringify', () => {
  const dec = new RowDecoder(map(['u'], [T.VARCHAR], [56], null), ['u']); // 56: utf16le_general_ci
  const s = Buffer.from([0x3d, 0xd8, 0x41, 0x00]); // lone high surrogate, then "A" (LE)
  assert.match(same(dec, Buffer.concat([Buffer.from([0]), varchar(s)])), /\\ud83d/);
});

test('RowDecoder.write: JSON text columns parse to the same value; invalid JSON stays text', () => {
  const dec = new RowDecoder(map(['j'], [T.BLOB], [255], null), ['j'], { columns: ['j'], jsonColumns: ['j'] });
  for (const s of [
    '{"a": 1, "b": [true, false, null], "c": {"d": "e\\n\\u00e9"}}', ' [1.0, 1e2, -0, 12345678901234567890] ', '"str"', '42', 'null',
    '{"a":1,"a":2}', '{"2":1,"1":0,"b":2}', '{\n  "x": "y"\n}\n', '{"a": 1,}', 'not json', '{"a": "\t"}', '', '[1 2]', '{"__proto__": 1}',
  ]) {
    const json = same(dec, Buffer.concat([Buffer.from([0]), blob(Buffer.from(s))]), false);
    assert.ok(!/[\n\r]/.test(json), `no raw line break for ${JSON.stringify(s)}`);
  }
  // Malformed UTF-8 inside a string of a valid document, and outside one.
  for (const b of [Buffer.from('{"a":"x\xff\xe2\x82"}', 'latin1'), Buffer.from('["\xed\xa0\x80"]', 'latin1'), Buffer.from('[1]\xa0', 'latin1')]) {
    same(dec, Buffer.concat([Buffer.from([0]), blob(b)]), false);
  }
});

test('RowDecoder: integer-like or __proto__ column names are left to the object path', () => {
  for (const names of [['7', 'a'], ['__proto__', 'a'], ['a', 'a']]) {
    const dec = new RowDecoder(map(names, [T.VARCHAR, T.VARCHAR], [255, 255], null), names);
    assert.equal(dec.canEncode, false, names.join(','));
  }
  const ok = new RowDecoder(map(['07', '-1'], [T.VARCHAR, T.VARCHAR], [255, 255], null), ['07', '-1']);
  assert.equal(ok.canEncode, true);
});

test('isEmbeddableJson agrees with JSON.parse on valid, mutated, overflowing and deep documents', () => {
  const seeds = [
    '{"a": 1, "b": [true, false, null], "c": {"d": "e\\n\\u00e9\\/"}}', '[1.5e3, -0.25, 0, -0, 1E+2, 2e-2]', '"x"', '{}', '[]',
    '{"k":[{"x":[[]]},{}]}', ' 12 ', '"\\ud800"', 'true', 'null',
  ];
  const chars = '{}[]",:\\ 0123456789-+.eEtrufalsn\n\tx';
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  const cases = [
    ...seeds, '1e400', '-1e309', '[1e308]', '{"a":1e999}', '[' + '1'.repeat(400) + ']', '01', '1.', '.5', '"\t"', '{"a" 1}', '[1,]', 'tru', '"\\x"', '"\\u12"',
    '['.repeat(300) + ']'.repeat(300), '['.repeat(300) + ']'.repeat(299),
  ];
  for (const s0 of seeds) {
    for (let k = 0; k < 400; k++) {
      let s = s0;
      const at = rnd(s.length + 1);
      const op = rnd(3);
      if (op === 0) s = s.slice(0, at) + s.slice(at + 1);
      else if (op === 1) s = s.slice(0, at) + chars[rnd(chars.length)] + s.slice(at);
      else s = s.slice(0, at) + chars[rnd(chars.length)] + s.slice(at + 1);
      cases.push(s);
    }
  }
  for (const s of cases) {
    let parsed = true;
    try {
      JSON.parse(s);
    } catch {
      parsed = false;
    }
    assert.equal(isEmbeddableJson(s), parsed, `${parsed ? 'rejected valid' : 'accepted invalid'} JSON ${JSON.stringify(s).slice(0, 80)}`);
  }
  // Numbers beyond double range are valid JSON: copied, they keep every digit.
  for (const s of ['1e400', '-1e309', '{"a":1e999}']) assert.equal(isEmbeddableJson(s), true, s);
});

test('embeddableJsonBytes agrees with isEmbeddableJson on a column inside a larger buffer', () => {
  for (const s of ['{"a": [1, 2e3, "é"]}', '{"a":1}\n', '[1,', '"x', '1e999', 'true', 'tru', '{"k": "\\u00e9"}', '{"k": "\\u00e"}']) {
    // Bytes before and after the column must not be read: a scan that ran on would see `]`.
    const b = Buffer.concat([Buffer.from('[[['), Buffer.from(s), Buffer.from(']]] 1')]);
    const r = embeddableJsonBytes(b, 3, 3 + Buffer.byteLength(s));
    assert.equal(r >= 0, isEmbeddableJson(s), s);
    if (r >= 0) assert.equal(r === 1, /[\r\n]/.test(s), s);
  }
});

// ---- RowDecoder.write on random images of every kind it writes itself ------------------

interface Col {
  type: number;
  meta: number;
  unsigned?: boolean;
  coll?: number | null;
  labels?: string[];
  /** A random value's bytes (the image part after the null bitmap). */
  gen: (rnd: (n: number) => number) => Buffer;
}

function randomBytes(rnd: (n: number) => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rnd(256);
  return b;
}

/** Mostly plausible values, sometimes arbitrary bytes (corrupt values must come out alike). */
function bytesOf(size: number, plausible: (rnd: (n: number) => number) => Buffer): Col['gen'] {
  return (rnd) => (rnd(4) === 0 ? randomBytes(rnd, size) : plausible(rnd));
}

function be(v: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  if (n > 0) b.writeUIntBE(v, 0, n);
  return b;
}

function text(rnd: (n: number) => number, alphabet: number[], prefix: 1 | 2 | 4): Buffer {
  const body = Buffer.from(Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]!));
  const h = Buffer.alloc(prefix);
  h.writeUIntLE(body.length, 0, prefix);
  return Buffer.concat([h, body]);
}

const ASCII = Array.from({ length: 128 }, (_, i) => i);
const ANY = Array.from({ length: 256 }, (_, i) => i);
const UTF8ISH = [...ASCII.filter((c) => c >= 0x20 && c !== 0x7f), 0x22, 0x5c, 0x0a, 0x01, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xff];

function dateBytes(rnd: (n: number) => number): Buffer {
  const v = rnd(3) === 0 ? 0 : (1900 + rnd(200)) * 512 + rnd(13) * 32 + rnd(32);
  const b = Buffer.alloc(3);
  b.writeUIntLE(v, 0, 3);
  return b;
}

function datetime2Bytes(fsp: number): Col['gen'] {
  return bytesOf(5 + ((fsp + 1) >> 1), (rnd) => {
    const zero = rnd(4) === 0;
    const ymd = zero ? 0 : (((1900 + rnd(200)) * 13 + rnd(13)) << 5) | rnd(32);
    const hms = zero ? 0 : (rnd(24) << 12) | (rnd(60) << 6) | rnd(60);
    const fb = (fsp + 1) >> 1;
    return Buffer.concat([be(0x8000000000 + ymd * 131072 + hms, 5), be(zero ? 0 : rnd(2 ** (8 * fb)) % 1000000, fb)]);
  });
}

const COLS: Col[] = [
  { type: T.TINY, meta: 0, gen: (r) => randomBytes(r, 1) },
  { type: T.TINY, meta: 0, unsigned: true, gen: (r) => randomBytes(r, 1) },
  { type: T.SHORT, meta: 0, gen: (r) => randomBytes(r, 2) },
  { type: T.SHORT, meta: 0, unsigned: true, gen: (r) => randomBytes(r, 2) },
  { type: T.INT24, meta: 0, gen: (r) => randomBytes(r, 3) },
  { type: T.INT24, meta: 0, unsigned: true, gen: (r) => randomBytes(r, 3) },
  { type: T.LONG, meta: 0, gen: (r) => randomBytes(r, 4) },
  { type: T.LONG, meta: 0, unsigned: true, gen: (r) => randomBytes(r, 4) },
  { type: T.LONGLONG, meta: 0, gen: (r) => Buffer.concat([randomBytes(r, 6), r(2) ? Buffer.from([0, 0]) : randomBytes(r, 2)]) },
  { type: T.LONGLONG, meta: 0, unsigned: true, gen: (r) => Buffer.concat([randomBytes(r, 6), r(2) ? Buffer.from([0, 0]) : randomBytes(r, 2)]) },
  { type: T.FLOAT, meta: 4, gen: (r) => randomBytes(r, 4) },
  { type: T.DOUBLE, meta: 8, gen: (r) => randomBytes(r, 8) },
  { type: T.YEAR, meta: 0, gen: (r) => randomBytes(r, 1) },
  { type: T.DATE, meta: 0, gen: bytesOf(3, dateBytes) },
  ...[0, 1, 2, 3, 4, 5, 6].map((fsp): Col => ({
    type: T.TIME2, meta: fsp, gen: bytesOf(3 + ((fsp + 1) >> 1), (r) => {
      const fb = (fsp + 1) >> 1;
      const v = (r(2) ? 0x800000 : 0x7fffff - r(4)) * 2 ** (8 * fb) + r(2 ** (8 * fb));
      return be(v, 3 + fb);
    }),
  })),
  { type: T.DATETIME, meta: 0, gen: (r) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(r(3) === 0 ? 0 : 19000101000000 + r(1e9) * 1000)); return b; } },
  ...[0, 1, 3, 6].map((fsp): Col => ({ type: T.DATETIME2, meta: fsp, gen: datetime2Bytes(fsp) })),
  { type: T.TIMESTAMP, meta: 0, gen: (r) => (r(3) === 0 ? Buffer.alloc(4) : randomBytes(r, 4)) },
  ...[0, 2, 6].map((fsp): Col => ({ type: T.TIMESTAMP2, meta: fsp, gen: (r) => (r(3) === 0 ? Buffer.alloc(4 + ((fsp + 1) >> 1)) : randomBytes(r, 4 + ((fsp + 1) >> 1))) })),
  ...[[12, 2], [10, 0], [30, 30], [65, 30], [18, 9], [5, 4]].map(([prec, scale]): Col => ({
    type: T.NEWDECIMAL, meta: (prec! << 8) | scale!, gen: (r) => {
      const size = decimalSize(prec!, scale!);
      return r(3) === 0 ? randomBytes(r, size) : Buffer.from(encodeDecimal(randomDecimal(r, prec!, scale!), prec!, scale!));
    },
  })),
  { type: T.ENUM, meta: 1, labels: ['new', 'pa"id', 'é'], gen: (r) => Buffer.from([r(6)]) },
  { type: T.ENUM, meta: 2, labels: ['x'], gen: (r) => randomBytes(r, 2) },
  { type: T.VARCHAR, meta: 80, coll: 255, gen: (r) => text(r, UTF8ISH, 1) },
  { type: T.VARCHAR, meta: 80, coll: 8, gen: (r) => text(r, r(2) ? ASCII : ANY, 1) }, // latin1
  { type: T.VARCHAR, meta: 80, coll: null, gen: (r) => text(r, UTF8ISH, 1) }, // no charset known
  { type: T.VARCHAR, meta: 800, coll: 63, gen: (r) => text(r, ANY, 2) }, // VARBINARY
  { type: T.BLOB, meta: 2, coll: 255, gen: (r) => text(r, UTF8ISH, 2) },
  { type: T.BLOB, meta: 4, coll: 51, gen: (r) => text(r, ANY, 4) }, // cp1251
];

function decimalSize(prec: number, scale: number): number {
  const d = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
  const intg = prec - scale;
  return Math.floor(intg / 9) * 4 + d[intg % 9]! + Math.floor(scale / 9) * 4 + d[scale % 9]!;
}

function randomDecimal(r: (n: number) => number, prec: number, scale: number): string {
  const digits = (n: number): string => Array.from({ length: n }, () => String(r(10))).join('');
  const ip = r(3) === 0 ? '0' : digits(1 + r(prec - scale || 1)).slice(0, Math.max(prec - scale, 1));
  return (r(2) ? '-' : '') + ip + (scale > 0 ? '.' + digits(scale) : '');
}

test('RowDecoder.write: random values of every kind it writes itself, byte-identical to JSON.stringify of decode', () => {
  const names = COLS.map((_, i) => `c${i}`);
  const n = COLS.length;
  const tm = {
    tableId: 1, db: 'd', table: 't', columnCount: n, types: Uint8Array.from(COLS.map((c) => c.type)),
    realTypes: Uint8Array.from(COLS.map((c) => c.type)), metas: Uint32Array.from(COLS.map((c) => c.meta)),
    nullable: names.map(() => true), unsigned: COLS.map((c) => c.unsigned ?? false), collations: COLS.map((c) => c.coll ?? null),
    columnNames: names, enumValues: COLS.map((c) => c.labels ?? null), setValues: names.map(() => null),
    geometryTypes: names.map(() => null), primaryKey: [n - 1, 0, 13], primaryKeyPrefixes: null,
  } as unknown as TableMap;
  const dec = new RowDecoder(tm, names);
  let seed = 11;
  const rnd = (k: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), Math.floor((seed / 2147483648) * k));
  for (let iter = 0; iter < 3000; iter++) {
    const bitmap = Buffer.alloc((n + 7) >> 3);
    const parts: Buffer[] = [bitmap];
    for (let i = 0; i < n; i++) {
      if (rnd(10) === 0) bitmap[i >> 3]! |= 1 << (i & 7);
      else parts.push(COLS[i]!.gen(rnd));
    }
    same(dec, Buffer.concat(parts));
  }
});
