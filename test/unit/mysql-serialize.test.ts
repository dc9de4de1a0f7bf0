/**
 * The serialized binlog path (RowDecoder.encode + BinlogDecoder's SerializedChangeEvents)
 * against the object path: for every real binlog vector, every row event's directly written
 * envelope must parse to what JSON.stringify of the object envelope gives, keys in the same
 * order. Plus RowDecoder.encode on hand-made images with the strings and names that need
 * escaping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type ChangeEvent, SerializedChangeEvent } from '../../src/core/event.js';
import { decodeBinlogFile, type DecodeFileOptions } from '../../connectors/mysql/file.js';
import { ColumnType as T } from '../../connectors/mysql/column-types.js';
import { RowDecoder } from '../../connectors/mysql/row-decoder.js';
import { embeddableJson, isEmbeddableJson } from '../../connectors/mysql/json-text.js';
import type { TableMap } from '../../connectors/mysql/table-map.js';
import { vectorsDir } from '../helpers/env.js';

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
    }
    assert.equal(canonical(s), canonical(o), `${file} event ${i} (${o.op} ${o.source.db}.${o.source.table})`);
  }
  return n;
}

const FILES = readdirSync(VECTORS).filter((f) => f !== 'README.md').sort();

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

// ---- RowDecoder.encode on hand-made images -------------------------------------------

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

/** encode() text must be byte-identical to JSON.stringify of decode()'s object. */
function same(dec: RowDecoder, img: Buffer, exact = true): void {
  const obj = {};
  const end1 = dec.decode(img, 0, img.length, dec.allColumns, obj);
  const end2 = dec.encode(img, 0, img.length, dec.allColumns);
  assert.equal(end2, end1);
  if (exact) assert.equal(dec.json, JSON.stringify(obj));
  else assert.equal(JSON.stringify(JSON.parse(dec.json)), JSON.stringify(obj));
  assert.equal(dec.keyJson, JSON.stringify(dec.keyOf(obj)));
}

test('RowDecoder.encode: escaped names and strings, key order, nulls, non-finite doubles', () => {
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
  dec.encode(img, 0, img.length, cols);
  assert.equal(dec.json, JSON.stringify(obj));
  assert.equal(dec.keyJson, 'null');
});

test('RowDecoder.encode: UTF-16 text with a lone surrogate is escaped like JSON.stringify', () => {
  const dec = new RowDecoder(map(['u'], [T.VARCHAR], [56], null), ['u']); // 56: utf16le_general_ci
  const s = Buffer.from([0x3d, 0xd8, 0x41, 0x00]); // lone high surrogate, then "A" (LE)
  same(dec, Buffer.concat([Buffer.from([0]), varchar(s)]));
  assert.match(dec.json, /\\ud83d/);
});

test('RowDecoder.encode: JSON text columns parse to the same value; invalid JSON stays text', () => {
  const dec = new RowDecoder(map(['j'], [T.BLOB], [255], null), ['j'], { columns: ['j'], jsonColumns: ['j'] });
  for (const s of [
    '{"a": 1, "b": [true, false, null], "c": {"d": "e\\n\\u00e9"}}', ' [1.0, 1e2, -0, 12345678901234567890] ', '"str"', '42', 'null',
    '{"a":1,"a":2}', '{"2":1,"1":0,"b":2}', '{\n  "x": "y"\n}\n', '{"a": 1,}', 'not json', '{"a": "\t"}', '', '[1 2]', '{"__proto__": 1}',
  ]) {
    same(dec, Buffer.concat([Buffer.from([0]), blob(Buffer.from(s))]), false);
    assert.ok(!/[\n\r]/.test(dec.json), `no raw line break for ${JSON.stringify(s)}`);
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

test('isEmbeddableJson agrees with JSON.parse on valid, mutated and overflowing documents', () => {
  const seeds = [
    '{"a": 1, "b": [true, false, null], "c": {"d": "e\\n\\u00e9\\/"}}', '[1.5e3, -0.25, 0, -0, 1E+2, 2e-2]', '"x"', '{}', '[]',
    '{"k":[{"x":[[]]},{}]}', ' 12 ', '"\\ud800"', 'true', 'null',
  ];
  const chars = '{}[]",:\\ 0123456789-+.eEtrufalsn\n\tx';
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  const cases = [...seeds, '1e400', '-1e309', '[1e308]', '{"a":1e999}', '[' + '1'.repeat(400) + ']', '01', '1.', '.5', '"\t"', '{"a" 1}', '[1,]', 'tru', '"\\x"', '"\\u12"'];
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
    let finite = true;
    try {
      const v: unknown = JSON.parse(s);
      const allFinite = (x: unknown): boolean =>
        typeof x === 'number' ? Number.isFinite(x) : x !== null && typeof x === 'object' ? Object.values(x).every(allFinite) : true;
      finite = allFinite(v);
    } catch {
      parsed = false;
    }
    const mine = isEmbeddableJson(s);
    if (mine) assert.ok(parsed, `accepted invalid JSON ${JSON.stringify(s)}`);
    if (parsed && finite) assert.ok(mine, `rejected valid JSON ${JSON.stringify(s)}`);
  }
  for (const s of ['1e400', '-1e309', '{"a":1e999}']) assert.equal(isEmbeddableJson(s), false, s);
  assert.equal(embeddableJson('{\r\n"a": 1\n}'), '{  "a": 1 }');
});
