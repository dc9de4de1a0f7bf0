/**
 * The pgoutput decoder writes most envelopes on its byte path (tuples copied from the wire
 * into scratch buffers) and the rest, rows with unchanged TOAST values, on its string path.
 * Both must give the same JSON, byte for byte, for every message shape.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgoutputDecoder } from '../../connectors/postgres/pgoutput.js';
import { OID, type PgTypeInfo } from '../../connectors/postgres/values.js';
import { SerializedChangeEvent } from '../../src/core/event.js';
import { keyRangeOf } from '../../src/log/json-scan.js';
import type { SourceItem } from '../../src/core/source.js';

/** Builds pgoutput v1 messages. */
class Msg {
  private parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  cstr(s: string): this {
    this.parts.push(Buffer.from(s + '\0', 'utf8'));
    return this;
  }
  ch(c: string): this {
    return this.u8(c.charCodeAt(0));
  }
  /** TupleData: a string is a text value, null is 'n', undefined is 'u' (unchanged TOAST). */
  tuple(values: (string | null | undefined)[]): this {
    this.i16(values.length);
    for (const v of values) {
      if (v === null) this.ch('n');
      else if (v === undefined) this.ch('u');
      else {
        const b = Buffer.from(v, 'utf8');
        this.ch('t').u32(b.length);
        this.parts.push(b);
      }
    }
    return this;
  }
  get buf(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const columns: [string, number][] = [
  ['id', OID.int8], ['qty', OID.int4], ['title', OID.text], ['price', OID.numeric], ['at', OID.timestamptz],
  ['flag', OID.bool], ['doc', OID.jsonb], ['tags', 1009], ['blob', OID.bytea], ['naïve "name"', OID.varchar],
];
const types = new Map<number, PgTypeInfo>([[1009, { oid: 1009, name: '_text', type: 'b', category: 'A', elem: 25, base: 0, delim: ',' }]]);

function relation(oid: number, ident: string): Buffer {
  const m = new Msg().ch('R').u32(oid).cstr('public').cstr('things').ch(ident).i16(columns.length);
  columns.forEach(([name, type], i) => m.u8(i === 0 ? 1 : 0).cstr(name).u32(type).u32(0xffffffff));
  return m.buf;
}

const row = (id: number, title: string | null | undefined, rest: Partial<Record<number, string | null | undefined>> = {}): (string | null | undefined)[] => {
  const v: (string | null | undefined)[] = [String(id), '7', title, '12.30', '2024-01-15 10:30:00.123456+00', 't', '{"a": [1, "x\\"y"]}', '{"a,b",c}', '\\x00ff', 'ünïcode \n "q"'];
  for (const [i, x] of Object.entries(rest)) v[Number(i)] = x;
  return v;
};

/** Every message shape: inserts, updates with K/O/no old tuple, deletes with K/O, nulls. */
function messages(oid: number): Buffer[] {
  const keyOnly = (id: number) => [String(id), null, null, null, null, null, null, null, null, null];
  return [
    new Msg().ch('B').u64(0x100n).u64(1_000_000n).u32(77).buf,
    new Msg().ch('I').u32(oid).ch('N').tuple(row(1, 'one')).buf,
    new Msg().ch('I').u32(oid).ch('N').tuple(row(2, null, { 1: null, 6: null })).buf,
    new Msg().ch('I').u32(oid).ch('N').tuple(row(3, 'control \x01 \t chars', { 4: 'infinity' })).buf,
    new Msg().ch('U').u32(oid).ch('O').tuple(row(1, 'one')).ch('N').tuple(row(1, 'uno')).buf,
    new Msg().ch('U').u32(oid).ch('K').tuple(keyOnly(1)).ch('N').tuple(row(10, 'moved')).buf,
    new Msg().ch('U').u32(oid).ch('N').tuple(row(2, 'two')).buf,
    new Msg().ch('D').u32(oid).ch('K').tuple(keyOnly(3)).buf,
    new Msg().ch('D').u32(oid).ch('O').tuple(row(2, 'two')).buf,
    new Msg().ch('C').u8(0).u64(0x100n).u64(0x180n).u64(1_000_000n).buf,
  ];
}

function decode(ident: string, bytePath: boolean): string[] {
  const oid = 16384;
  const dec = new PgoutputDecoder({ pipeline: 'p', db: 'shop', types, primaryKeys: new Map([[oid, ['id']]]), now: () => 1 });
  // The string path alone: what the byte path must reproduce.
  if (!bytePath) (dec as unknown as { writeRow: () => boolean }).writeRow = () => false;
  const out: string[] = [];
  const emit = (item: SourceItem) => {
    if (item.kind === 'event') out.push((item.event as SerializedChangeEvent).json);
  };
  dec.handle(relation(oid, ident), '0/F0', emit);
  for (const m of messages(oid)) dec.handle(m, '0/100', emit);
  return out;
}

describe('pgoutput byte path', () => {
  for (const ident of ['f', 'd']) {
    it(`gives the string path's JSON byte for byte (replica identity ${ident})`, () => {
      const fast = decode(ident, true);
      const slow = decode(ident, false);
      assert.equal(fast.length, 8);
      assert.deepEqual(fast, slow);
      for (const j of fast) JSON.parse(j); // and it is JSON
      const first = JSON.parse(fast[0]!);
      assert.deepEqual(first.after.tags, ['a,b', 'c']);
      assert.equal(first.after.at, '2024-01-15T10:30:00.123456Z');
      assert.equal(first.after['naïve "name"'], 'ünïcode \n "q"');
      assert.deepEqual(first.key, { id: 1 });
    });
  }

  it('leaves rows with unchanged TOAST values to the string path, which fills them from the old row', () => {
    const oid = 16385;
    const dec = new PgoutputDecoder({ pipeline: 'p', db: 'shop', types, primaryKeys: new Map([[oid, ['id']]]), now: () => 1 });
    const out: string[] = [];
    dec.handle(relation(oid, 'f'), '0/F0', () => undefined);
    dec.handle(new Msg().ch('B').u64(0x100n).u64(1_000_000n).u32(77).buf, '0/100', () => undefined);
    const upd = new Msg().ch('U').u32(oid).ch('O').tuple(row(1, 'long text')).ch('N').tuple(row(1, undefined, { 1: '8' })).buf;
    dec.handle(upd, '0/100', (item) => {
      if (item.kind === 'event') out.push((item.event as SerializedChangeEvent).json);
    });
    const ev = JSON.parse(out[0]!);
    assert.equal(ev.after.title, 'long text', 'filled from the old row');
    assert.equal(ev.after.qty, 8);
  });
});

import { JsonBytes } from '../../src/core/json-bytes.js';

describe('JsonBytes.uint', () => {
  it('writes integers like String() does', () => {
    for (const v of [0, 7, 9, 10, 99, 100, 101, 1_700_000_000_123, Number.MAX_SAFE_INTEGER]) {
      const w = new JsonBytes(2);
      w.uint(v);
      assert.equal(w.toString(), String(v));
    }
  });
});

import { WalStart } from '../../connectors/postgres/replication.js';

describe('LSNs written as bytes', () => {
  it('JsonBytes.hex and WalStart print like Postgres', () => {
    for (const [hi, lo] of [[0, 0], [0, 0x16b3748], [0x1f, 0xffffffff], [0xffffffff, 0x80000000]] as const) {
      const at = new WalStart();
      at.hi = hi;
      at.lo = lo;
      const w = new JsonBytes(1);
      w.hex(hi);
      w.byte(47);
      w.hex(lo);
      const want = `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
      assert.equal(w.toString(), want);
      assert.equal(String(at), want);
    }
  });

  it('the byte path with a WalStart gives the string path JSON with the formatted LSN', () => {
    const at = new WalStart();
    at.hi = 0;
    at.lo = 0x100;
    const fast: string[] = [];
    const oid = 16386;
    const dec = new PgoutputDecoder({ pipeline: 'p', db: 'shop', types, primaryKeys: new Map([[oid, ['id']]]), now: () => 1 });
    dec.handle(relation(oid, 'f'), at, () => undefined);
    for (const m of messages(oid)) dec.handle(m, at, (item) => item.kind === 'event' && fast.push((item.event as SerializedChangeEvent).json));
    assert.deepEqual(fast, decode('f', false));
  });
});

describe('envelopes kept as bytes (arena writer)', () => {
  it('every event still holds its own envelope after many more were written, across slabs', () => {
    const oid = 16387;
    const dec = new PgoutputDecoder({ pipeline: 'p', db: 'shop', types, primaryKeys: new Map([[oid, ['id']]]), now: () => 1 });
    const held: SerializedChangeEvent[] = [];
    dec.handle(relation(oid, 'f'), '0/F0', () => undefined);
    // About 3 MB of envelopes: a dozen 256 KB slabs, so many envelopes straddle a slab end.
    for (let i = 0; i < 600; i++) {
      for (const m of messages(oid)) dec.handle(m, '0/100', (item) => item.kind === 'event' && held.push(item.event as SerializedChangeEvent));
    }
    const want = decode('f', false);
    assert.equal(held.length, 600 * want.length);
    const slabs = new Set(held.map((e) => e.bytes));
    assert.ok(slabs.size > 5, `envelopes spread over ${slabs.size} slabs`);
    held.forEach((e, i) => {
      assert.ok(e.bytes, 'held as bytes');
      assert.equal(e.json, want[i % want.length], `event ${i}`);
      // The key range the writer noted (straddling slabs too) is the one the log would find by searching.
      assert.deepEqual([e.keyStart, e.keyEnd], keyRangeOf(e.bytes!, e.offset, e.offset + e.byteLength), `event ${i}: key range`);
    });
  });

  it('JsonBytes in arena mode never moves or overwrites a sealed text', () => {
    const w = new JsonBytes(16, true);
    const sealed: [Buffer, number, number, string][] = [];
    for (let i = 0; i < 200; i++) {
      const text = `{"n":${i},"s":"${'x'.repeat(i % 37)}"}`;
      w.reset();
      w.ascii(text.slice(0, 5));
      w.ascii(text.slice(5));
      sealed.push([w.buf, w.mark, w.n, text]);
      w.seal();
      // An abandoned text (reset before seal) must not disturb the sealed ones either.
      w.ascii('garbage that is dropped');
      w.reset();
    }
    for (const [buf, s, e, text] of sealed) assert.equal(buf.toString('utf8', s, e), text);
  });
});
