import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decoderFor, OID, parseArrayLiteral, type PgTypeInfo } from '../../connectors/postgres/values.js';
import { PgPosition } from '../../connectors/postgres/position.js';

const types = new Map<number, PgTypeInfo>([
  [1007, { oid: 1007, name: '_int4', type: 'b', category: 'A', elem: 23, base: 0, delim: ',' }],
  [1009, { oid: 1009, name: '_text', type: 'b', category: 'A', elem: 25, base: 0, delim: ',' }],
  [90001, { oid: 90001, name: 'mood', type: 'e', category: 'E', elem: 0, base: 0, delim: ',' }],
  [90002, { oid: 90002, name: 'posint', type: 'd', category: 'N', elem: 0, base: 23, delim: ',' }],
]);

function dec(oid: number, text: string) {
  const b = Buffer.from(`xx${text}yy`, 'utf8');
  return decoderFor(oid, types)(b, 2, b.length - 2);
}

describe('postgres text-format value decoders', () => {
  it('int8 is a number up to 2^53-1 and a string beyond', () => {
    assert.equal(dec(OID.int8, '9007199254740991'), 9007199254740991);
    assert.equal(dec(OID.int8, '-9007199254740991'), -9007199254740991);
    assert.equal(dec(OID.int8, '9007199254740992'), '9007199254740992');
    assert.equal(dec(OID.int8, '-9223372036854775808'), '-9223372036854775808');
    assert.equal(dec(OID.int4, '-42'), -42);
  });
  it('numeric keeps its exact text; floats keep NaN/Infinity as strings', () => {
    assert.equal(dec(OID.numeric, '12.30'), '12.30');
    assert.equal(dec(OID.float8, '1e+300'), 1e300);
    assert.equal(dec(OID.float8, '-Infinity'), '-Infinity');
    assert.equal(dec(OID.float4, 'NaN'), 'NaN');
  });
  it('timestamps: no zone → no Z; with zone → UTC Z with the full fraction', () => {
    assert.equal(dec(OID.timestamp, '2024-01-15 10:30:00.123456'), '2024-01-15T10:30:00.123456');
    assert.equal(dec(OID.timestamptz, '2024-01-15 10:30:00.5+00'), '2024-01-15T10:30:00.5Z');
    assert.equal(dec(OID.timestamptz, 'infinity'), 'infinity');
    assert.equal(dec(OID.timestamptz, '0044-03-15 12:00:00+00 BC'), '-000043-03-15T12:00:00Z');
  });
  it('bytea hex → base64; json parsed; bool', () => {
    assert.equal(dec(OID.bytea, '\\xdeadbeef'), Buffer.from('deadbeef', 'hex').toString('base64'));
    assert.deepEqual(dec(OID.jsonb, '{"a": [1, "x", null]}'), { a: [1, 'x', null] });
    assert.equal(dec(OID.bool, 't'), true);
    assert.equal(dec(OID.bool, 'f'), false);
  });
  it('arrays, nested arrays, quoted elements, NULLs; enums and domains', () => {
    assert.deepEqual(dec(1007, '{1,NULL,-3}'), [1, null, -3]);
    assert.deepEqual(dec(1007, '{{1,2},{3,4}}'), [[1, 2], [3, 4]]);
    assert.deepEqual(dec(1009, '{"a,b","say \\"hi\\"",NULL,"NULL",plain}'), ['a,b', 'say "hi"', null, 'NULL', 'plain']);
    assert.deepEqual(dec(1007, '[0:1]={7,8}'), [7, 8]);
    assert.deepEqual(dec(1007, '{}'), []);
    assert.equal(dec(90001, 'happy'), 'happy');
    assert.equal(dec(90002, '5'), 5);
    assert.deepEqual(parseArrayLiteral('{a;b}', (b, s, e) => b.toString('utf8', s, e), ';'), ['a', 'b']);
  });
});

describe('PgPosition', () => {
  it('compares numerically where strings would not', () => {
    const a = PgPosition.parse('0/A');
    const b = PgPosition.parse('0/10');
    const c = PgPosition.parse('1/0');
    assert.ok(a.compare(b) < 0 && b.compare(c) < 0);
    assert.ok('0/A' > '0/10', 'as strings the order would be wrong');
    assert.ok(a.fence() < b.fence() && b.fence() < c.fence(), 'fences sort like positions');
    assert.equal(PgPosition.parse('16/B374D848').serialize(), '16/B374D848');
    assert.equal(c.ordinal(), 1n << 32n);
    assert.throws(() => PgPosition.parse('nonsense'), /not a Postgres LSN/);
  });
});

import { jsonEncoderFor } from '../../connectors/postgres/values.js';

describe('postgres JSON-text encoders agree with the decoders', () => {
  const cases: [number, string][] = [
    [OID.int2, '-32768'], [OID.int4, '42'], [OID.int8, '9007199254740991'], [OID.int8, '9223372036854775807'], [OID.int8, '-9007199254740993'],
    [OID.float8, '1.5e-05'], [OID.float8, 'NaN'], [OID.float4, '-Infinity'], [OID.numeric, '12.30'], [OID.bool, 't'], [OID.bool, 'f'],
    [OID.text, 'quote " backslash \\ newline \n tab \t é 🎉'], [OID.json, '{"a": [1, 2.50, {"b": null}], "big": 1}'], [OID.jsonb, '[]'],
    [OID.bytea, '\\x00ff'], [OID.timestamp, '2024-01-15 10:30:00.5'], [OID.timestamptz, '2024-01-15 10:30:00+00'], [OID.date, '2024-01-15'],
    [OID.uuid, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'], [OID.interval, 'P1D'], [1007, '{1,NULL,3}'], [1009, '{"a,b",c}'], [90001, 'happy'], [90002, '7'],
  ];
  for (const [oid, text] of cases) {
    it(`oid ${oid}: ${JSON.stringify(text).slice(0, 40)}`, () => {
      const b = Buffer.from(text, 'utf8');
      const json = jsonEncoderFor(oid, types)(b, 0, b.length);
      assert.deepEqual(JSON.parse(json), decoderFor(oid, types)(b, 0, b.length));
    });
  }
});

import { jsonByteEncoderFor } from '../../connectors/postgres/values.js';
import { JsonBytes } from '../../src/core/json-bytes.js';

describe('postgres byte encoders write the same JSON text as the string encoders', () => {
  const cases: [number, string][] = [
    [OID.int2, '-32768'], [OID.int4, '42'], [OID.int8, '9007199254740991'], [OID.int8, '9223372036854775807'], [OID.int8, '-9007199254740993'],
    [OID.float8, '1.5e-05'], [OID.float8, 'NaN'], [OID.numeric, '12.30'], [OID.bool, 't'], [OID.bool, 'f'],
    [OID.text, 'plain'], [OID.text, 'quote " backslash \\ newline \n tab \t cr \r bell \x07 del \x7f é 🎉 \u2028'], [OID.varchar, ''],
    [OID.json, '{"a": [1, 2.50, {"b": null}], "big": 1}'], [OID.jsonb, '[]'], [OID.bytea, '\\x00ff'],
    [OID.timestamp, '2024-01-15 10:30:00.5'], [OID.timestamp, 'infinity'], [OID.timestamptz, '2024-01-15 10:30:00.123456+00'],
    [OID.timestamptz, '0044-03-15 12:00:00+00 BC'], [OID.timestamptz, '-infinity'], [OID.date, '2024-01-15'],
    [OID.uuid, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'], [OID.interval, 'P1D'], [1007, '{1,NULL,3}'], [90001, 'happy'], [90002, '7'],
  ];
  for (const [oid, text] of cases) {
    it(`oid ${oid}: ${JSON.stringify(text).slice(0, 40)}`, () => {
      const b = Buffer.from(text, 'utf8');
      const w = new JsonBytes(4); // tiny on purpose: every write must grow it correctly
      w.ascii('[');
      jsonByteEncoderFor(oid, types)(w, b, 0, b.length);
      w.ascii(']');
      assert.equal(w.toString(), `[${jsonEncoderFor(oid, types)(b, 0, b.length)}]`);
    });
  }
});

/**
 * Issue 12 §10: values that broke the documented rules. Each case is the exact text
 * Postgres sends (session: DateStyle=ISO, TimeZone=UTC) and the JSON text the envelope must
 * hold, on the byte path and the string path alike.
 */
describe('postgres values that used to break the documented rules', () => {
  const arrays = new Map<number, PgTypeInfo>([
    ...types,
    [3807, { oid: 3807, name: '_jsonb', type: 'b', category: 'A', elem: OID.jsonb, base: 0, delim: ',' }],
    [199, { oid: 199, name: '_json', type: 'b', category: 'A', elem: OID.json, base: 0, delim: ',' }],
    [1182, { oid: 1182, name: '_date', type: 'b', category: 'A', elem: OID.date, base: 0, delim: ',' }],
    [1021, { oid: 1021, name: '_float4', type: 'b', category: 'A', elem: OID.float4, base: 0, delim: ',' }],
  ]);
  const both = (oid: number, text: string): [string, string] => {
    const b = Buffer.from(text, 'utf8');
    const w = new JsonBytes(4);
    jsonByteEncoderFor(oid, arrays)(w, b, 0, b.length);
    return [w.toString(), jsonEncoderFor(oid, arrays)(b, 0, b.length)];
  };
  const cases: [string, number, string, string][] = [
    ['json with newlines is compacted', OID.json, '{\n"a": 1,\r\n "s": "x\\ny \\" z"}', '{"a":1,"s":"x\\ny \\" z"}'],
    ['json keeps numbers beyond double range exact', OID.json, '{"big":\n 12345678901234567890123, "inf": 1e400, "z": -0}', '{"big":12345678901234567890123,"inf":1e400,"z":-0}'],
    ['json on one line is copied as written', OID.json, '{"a": 1.50}', '{"a": 1.50}'],
    ['jsonb[] elements keep every digit', 3807, '{"{\\"a\\": 12345678901234567890}","1e400",NULL,"null"}', '[{"a": 12345678901234567890},1e400,null,null]'],
    ['json[] elements are compacted', 199, '{"{\\"a\\":\\n 1}"}'.replace('\\n', '\n'), '[{"a":1}]'],
    ['timestamptz after 9999', OID.timestamptz, '12345-06-07 08:09:10+00', '"+012345-06-07T08:09:10Z"'],
    ['timestamp after 9999 with a fraction', OID.timestamp, '12345-06-07 08:09:10.5', '"+012345-06-07T08:09:10.5"'],
    ['the last date', OID.date, '5874897-12-31', '"+5874897-12-31"'],
    ['a date after 9999', OID.date, '12345-06-07', '"+012345-06-07"'],
    ['a BC date', OID.date, '4713-01-01 BC', '"-004712-01-01"'],
    ['a BC timestamptz', OID.timestamptz, '4713-01-01 00:00:00+00 BC', '"-004712-01-01T00:00:00Z"'],
    ['a BC timestamp, like timestamptz', OID.timestamp, '4713-01-01 00:00:00 BC', '"-004712-01-01T00:00:00"'],
    ['1 BC is year 0', OID.timestamp, '0001-12-31 23:59:59.999999 BC', '"0000-12-31T23:59:59.999999"'],
    ['date[] with an expanded year', 1182, '{12345-06-07,"4713-01-01 BC",infinity}', '["+012345-06-07","-004712-01-01","infinity"]'],
    ['infinity stays a string', OID.timestamptz, '-infinity', '"-infinity"'],
    ['-0 in double keeps its sign', OID.float8, '-0', '-0'],
    ['-0 in real keeps its sign', OID.float4, '-0', '-0'],
    ['real[] with -0', 1021, '{-0,0,1e-45}', '[-0,0,1e-45]'],
  ];
  for (const [what, oid, text, want] of cases) {
    it(what, () => {
      const [bytes, str] = both(oid, text);
      assert.equal(bytes, want, 'byte path');
      assert.equal(str, want, 'string path');
      assert.ok(!/[\r\n]/.test(bytes), 'one line');
    });
  }
  it('dates print their year as JavaScript does', () => {
    for (const y of [0, -1, -4712, 10000, 12345, 275760]) {
      const iso = new Date(Date.UTC(2000, 5, 7, 8, 9, 10)).setUTCFullYear(y);
      const js = new Date(iso).toISOString().replace('.000Z', 'Z');
      const pg = y <= 0 ? `${String(1 - y).padStart(4, '0')}-06-07 08:09:10+00 BC` : `${String(y).padStart(4, '0')}-06-07 08:09:10+00`;
      assert.equal(both(OID.timestamptz, pg)[0], JSON.stringify(js), pg);
    }
  });
});

describe('JsonBytes.json: a JSON text on one line, copied or compacted', () => {
  it('looks for line breaks only inside the value, short and long', () => {
    const cases: [string, number, number, string][] = [
      ['{"a": 1}\n', 0, 8, '{"a": 1}'],
      ['{"a":\n1}', 0, 8, '{"a":1}'],
      [`[${' 1,'.repeat(100)} 2]\r\n`, 0, 304, `[${' 1,'.repeat(100)} 2]`],
      [`[${' 1,'.repeat(100)}\r2]tail\n`, 0, 304, `[${'1,'.repeat(100)}2]`],
      ['{"s": "a\\nb \\" c",\t"t" :\r\n[ ]}', 0, 30, '{"s":"a\\nb \\" c","t":[]}'],
    ];
    for (const [text, s, e, want] of cases) {
      const b = Buffer.from(text);
      const w = new JsonBytes(4);
      w.json(b, s, e);
      assert.equal(w.toString(), want, JSON.stringify(text));
    }
  });
});
