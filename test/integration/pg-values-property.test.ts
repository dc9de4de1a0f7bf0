import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import pg from 'pg';
import { SESSION_OPTIONS } from '../../connectors/postgres/replication.js';
import { PgTestDb, waitFor } from '../helpers/context.js';
import { InProcessPipeline } from '../helpers/pipeline.js';
import { Mismatches, Num, Rng, canonical, parseLossless, propertyRows, propertySeed, type Lossless } from '../helpers/value-property.js';

/**
 * Issue 12 §10, Postgres: seeded random values of every type, written with SQL, read back
 * from the envelopes the jsonl sink holds (snapshot rows `r`, streamed inserts `c`, and
 * updates `u` whose before and after images take the byte path, or the string path when an
 * unchanged TOAST value has to be filled from the old row), each compared with what Postgres
 * itself prints for it (`col::text` in the replication session's settings), converted by
 * this test's own reading of the documented rules (DESIGN.md "Change event", docs/postgres.md
 * "Values"). Numbers are compared as the text they are written with, never through a double.
 * The first rows hold the exact cases of the issue.
 */

/** How one column's database text becomes the value the envelope must hold. */
type Rule = 'int' | 'int8' | 'numeric' | 'float' | 'bool' | 'text' | 'bytea' | 'date' | 'timestamp' | 'timestamptz' | 'json' | 'array';

interface Col {
  name: string;
  sql: string;
  rule: Rule;
  /** Array columns: the rule of their elements. */
  elem?: Rule;
  gen: (r: Rng) => string | null;
  /** How the reference query reads the database's text of it (default `name::text`). */
  select?: string;
}

const BIG_NUMBERS = ['12345678901234567890', '123456789012345678901234567890', '1e400', '-1E-400', '-0', '0.0', '1.50', '-2.5e+300', '9007199254740993'];

function jsonDoc(r: Rng, depth = 0, ws = true): string {
  const sp = (): string => (ws ? r.pick(['', '', ' ', '\n', '\r\n  ', '\t']) : '');
  const k = r.int(0, depth > 2 ? 3 : 6);
  if (k === 0) return r.pick(BIG_NUMBERS);
  if (k === 1) return String(r.int(-1000, 1000));
  if (k === 2) return JSON.stringify(text(r, 8));
  if (k === 3) return r.pick(['true', 'false', 'null']);
  if (k === 4) return `[${sp()}${Array.from({ length: r.int(0, 3) }, () => jsonDoc(r, depth + 1, ws)).join(`,${sp()}`)}${sp()}]`;
  const keys = Array.from({ length: r.int(0, 3) }, (_, i) => `${JSON.stringify(r.pick(['a', 'b', 'é', 'x y', 'n"q']) + i)}${sp()}:${sp()}${jsonDoc(r, depth + 1, ws)}`);
  return `{${sp()}${keys.join(`,${sp()}`)}${sp()}}`;
}

const CHARS = ['a', 'b', 'Z', ' ', '0', 'é', 'ß', '✓', '😀', '中', '"', "'", '\\', ',', '{', '}', '\n', '\t', '\r', '\u0001', '\u001f', '\u2028', 'NULL'];
function text(r: Rng, max: number): string {
  let s = '';
  for (let n = r.int(0, max); n > 0; n--) s += r.pick(CHARS);
  return s;
}

const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const pad = (n: number, w: number): string => String(n).padStart(w, '0');

function dateText(r: Rng, maxYear: number): string {
  const k = r.int(0, 9);
  if (k === 0) return r.pick(['infinity', '-infinity']);
  const bc = k === 1;
  const year = bc ? r.int(1, 4713) : k === 2 ? r.int(10000, maxYear) : r.int(1, 9999);
  return `${pad(year, 4)}-${pad(r.int(1, 12), 2)}-${pad(r.int(1, 28), 2)}${bc ? ' BC' : ''}`;
}
function timeText(r: Rng): string {
  const frac = r.int(0, 6);
  return `${pad(r.int(0, 23), 2)}:${pad(r.int(0, 59), 2)}:${pad(r.int(0, 59), 2)}${frac ? '.' + r.digits(frac) : ''}`;
}
function timestampText(r: Rng, zone: boolean): string {
  const d = dateText(r, 294275);
  if (d.endsWith('infinity')) return d;
  const bc = d.endsWith(' BC');
  return `${bc ? d.slice(0, -3) : d} ${timeText(r)}${zone ? '+00' : ''}${bc ? ' BC' : ''}`;
}

function float8(r: Rng): string {
  const k = r.int(0, 9);
  if (k === 0) return r.pick(['NaN', 'Infinity', '-Infinity', '-0', '0', '5e-324', '-1.7976931348623157e308', '2.2250738585072014e-308']);
  const b = new DataView(new ArrayBuffer(8));
  b.setUint32(0, r.u32());
  b.setUint32(4, r.u32());
  const v = b.getFloat64(0);
  return Number.isFinite(v) ? String(v) : 'NaN';
}
function float4(r: Rng): string {
  const k = r.int(0, 9);
  if (k === 0) return r.pick(['NaN', 'Infinity', '-Infinity', '-0', '1.4e-45', '1e-45', '3.4028235e38', '1.1754944e-38']);
  const b = new DataView(new ArrayBuffer(4));
  b.setUint32(0, r.u32());
  const v = b.getFloat32(0);
  return Number.isFinite(v) ? String(v) : '-0';
}
function int8(r: Rng): string {
  const k = r.int(0, 4);
  if (k === 0) return r.pick(['9223372036854775807', '-9223372036854775808', '9007199254740991', '9007199254740992', '-9007199254740993', '0']);
  if (k === 1) return String(r.int(-1000, 1000));
  const neg = r.chance(0.5) ? '-' : '';
  return neg + r.digits(r.int(1, 18));
}
function numeric(r: Rng): string {
  if (r.chance(0.1)) return 'NaN';
  const neg = r.chance(0.4) ? '-' : '';
  const whole = r.digits(r.int(1, r.chance(0.2) ? 40 : 8));
  const scale = r.int(0, 12);
  return `${neg}${whole}${scale ? '.' + Array.from({ length: scale }, () => r.int(0, 9)).join('') : ''}`;
}
function interval(r: Rng): string {
  const s = (): string => (r.chance(0.5) ? '-' : '');
  return `${s()}${r.int(0, 30)} years ${s()}${r.int(0, 11)} mons ${s()}${r.int(0, 40)} days ${s()}${r.int(0, 99)}:${pad(r.int(0, 59), 2)}:${pad(r.int(0, 59), 2)}${r.chance(0.5) ? '.' + r.digits(r.int(1, 6)) : ''}`;
}
function arrayOf(r: Rng, elem: (r: Rng) => string | null, quote = true): string {
  const items = Array.from({ length: r.int(0, 4) }, () => {
    const v = r.chance(0.15) ? null : elem(r);
    return v === null ? 'NULL' : quote ? `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : v;
  });
  return `{${items.join(',')}}`;
}

/** int4[]: plain, with explicit lower bounds (`[-2:0]={…}`), or two-dimensional. */
function intArray(r: Rng): string {
  const k = r.int(0, 2);
  if (k === 0) return arrayOf(r, (q) => String(q.int(-99, 99)), false);
  if (k === 1) {
    const n = r.int(1, 4);
    const lo = r.int(-3, 5);
    return `[${lo}:${lo + n - 1}]={${Array.from({ length: n }, () => r.int(-99, 99)).join(',')}}`;
  }
  return `{{${r.int(0, 9)},${r.int(0, 9)}},{${r.int(0, 9)},NULL}}`;
}

const COLUMNS: Col[] = [
  { name: 'i2', sql: 'int2', rule: 'int', gen: (r) => String(r.int(-32768, 32767)) },
  { name: 'i4', sql: 'int4', rule: 'int', gen: (r) => String(r.int(-2147483648, 2147483647)) },
  { name: 'i8', sql: 'int8', rule: 'int8', gen: int8 },
  { name: 'num', sql: 'numeric', rule: 'numeric', gen: numeric },
  { name: 'f4', sql: 'float4', rule: 'float', gen: float4 },
  { name: 'f8', sql: 'float8', rule: 'float', gen: float8 },
  { name: 'b', sql: 'bool', rule: 'bool', gen: (r) => r.pick(['t', 'f']) },
  { name: 'txt', sql: 'text', rule: 'text', gen: (r) => text(r, 20) },
  { name: 'vc', sql: 'varchar(40)', rule: 'text', gen: (r) => text(r, 20) },
  // bpchar's own output keeps the padding (a cast to text would drop it), as pgoutput sends it.
  { name: 'ch', sql: 'char(6)', rule: 'text', gen: (r) => text(r, 6), select: 'ch' },
  { name: 'by', sql: 'bytea', rule: 'bytea', gen: (r) => '\\x' + Buffer.from(Array.from({ length: r.int(0, 12) }, () => r.int(0, 255))).toString('hex') },
  { name: 'd', sql: 'date', rule: 'date', gen: (r) => dateText(r, 5874897) },
  { name: 'tm', sql: 'time', rule: 'text', gen: timeText },
  { name: 'ttz', sql: 'timetz', rule: 'text', gen: (r) => `${timeText(r)}${r.pick(['+00', '-05:30', '+14'])}` },
  { name: 'ts', sql: 'timestamp', rule: 'timestamp', gen: (r) => timestampText(r, false) },
  { name: 'tstz', sql: 'timestamptz', rule: 'timestamptz', gen: (r) => timestampText(r, true) },
  { name: 'iv', sql: 'interval', rule: 'text', gen: interval },
  { name: 'js', sql: 'json', rule: 'json', gen: (r) => jsonDoc(r) },
  { name: 'jsb', sql: 'jsonb', rule: 'json', gen: (r) => jsonDoc(r) },
  { name: 'jsba', sql: 'jsonb[]', rule: 'array', elem: 'json', gen: (r) => arrayOf(r, (q) => jsonDoc(q)) },
  { name: 'jsa', sql: 'json[]', rule: 'array', elem: 'json', gen: (r) => arrayOf(r, (q) => jsonDoc(q)) },
  { name: 'ia', sql: 'int4[]', rule: 'array', elem: 'int', gen: intArray },
  { name: 'ta', sql: 'text[]', rule: 'array', elem: 'text', gen: (r) => arrayOf(r, (q) => text(q, 6)) },
  { name: 'da', sql: 'date[]', rule: 'array', elem: 'date', gen: (r) => arrayOf(r, (q) => dateText(q, 5874897)) },
  { name: 'fa', sql: 'float8[]', rule: 'array', elem: 'float', gen: (r) => arrayOf(r, float8, false) },
  { name: 'u', sql: 'uuid', rule: 'text', gen: (r) => [8, 4, 4, 4, 12].map((n) => Array.from({ length: n }, () => r.int(0, 15).toString(16)).join('')).join('-') },
  // inet's own output leaves out a host's /32 (a cast to text adds it).
  { name: 'ip', sql: 'inet', rule: 'text', select: 'ip', gen: (r) => `${r.int(0, 255)}.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(0, 255)}/${r.int(8, 32)}` },
  { name: 'm', sql: 'money', rule: 'text', gen: (r) => `${r.chance(0.3) ? '-' : ''}${r.int(0, 99999999)}.${pad(r.int(0, 99), 2)}` },
  { name: 'mood', sql: 'mood', rule: 'text', gen: (r) => r.pick(['sad', 'ok', 'happy 😀', 'très "bien"']) },
  { name: 'dom', sql: 'posint', rule: 'int', gen: (r) => String(r.int(1, 1000000)) },
];

/** The exact cases of the issue, as the first rows (column → SQL text; others random). */
const ISSUE_ROWS: Record<string, string | null>[] = [
  { js: '{\n"a": 1}', jsba: '{"{\\"a\\": 12345678901234567890}"}', tstz: '12345-06-07 08:09:10+00', d: '5874897-12-31', f4: '-0', f8: '-0' },
  { ts: '4713-01-01 00:00:00 BC', tstz: '4713-01-01 00:00:00+00 BC', d: '4713-01-01 BC', iv: '-1 years 2 mons -3 days -04:05:06.5', ia: '[0:1]={7,8}', m: '12.50' },
  { js: 'null', jsb: 'null', jsba: '{"null",NULL}', ts: 'infinity', tstz: '-infinity', d: 'infinity', f4: '1.4e-45', f8: 'NaN' },
  { js: null, jsb: null, jsa: '{"{\\n\\"x\\":\\n-0}"}'.replace(/\\n/g, '\n'), ts: '12345-06-07 08:09:10.5', num: '-0.000' },
];

function rowValues(r: Rng, i: number): Record<string, string | null> {
  const row: Record<string, string | null> = {};
  for (const c of COLUMNS) row[c.name] = r.chance(0.08) ? null : c.gen(r);
  return { ...row, ...(ISSUE_ROWS[i] ?? {}) };
}

// ---------------------------------------------------------------------------------------
// The documented rules, as this test reads them (an implementation independent of values.ts).
// ---------------------------------------------------------------------------------------

const MAX_SAFE = 2n ** 53n - 1n;

/**
 * A date or timestamp as ISO 8601 with JavaScript's year form, computed through Date for
 * every year it can hold; a BC year counts astronomically (1 BC = year 0).
 */
function isoFromPg(t: string, zone: boolean): string {
  if (t === 'infinity' || t === '-infinity') return t;
  const m = /^(\d{4,})-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(\.\d+)?)?(\+00)?( BC)?$/.exec(t);
  if (!m) throw new Error(`unexpected date text ${t}`);
  const year = m[9] ? 1 - Number(m[1]) : Number(m[1]);
  let datePart: string;
  if (Math.abs(year) > 275760) datePart = `${year < 0 ? '-' : '+'}${String(Math.abs(year)).padStart(6, '0')}-${m[2]}-${m[3]}`;
  else {
    const d = new Date(Date.UTC(2000, Number(m[2]) - 1, Number(m[3])));
    d.setUTCFullYear(year);
    const iso = d.toISOString(); // [±YY]YYYY-MM-DDTHH:MM:SS.000Z
    datePart = iso.slice(0, iso.indexOf('T'));
  }
  if (m[4] === undefined) return datePart;
  return `${datePart}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}${zone ? 'Z' : ''}`;
}

/** The envelope value a database text must become under `rule`. */
function expected(rule: Rule, t: string): Lossless {
  switch (rule) {
    case 'int':
      return new Num(String(Number(t)));
    case 'int8':
      return BigInt(t) <= MAX_SAFE && BigInt(t) >= -MAX_SAFE ? new Num(t) : t;
    case 'numeric':
    case 'text':
      return t;
    case 'float':
      return t === 'NaN' || t === 'Infinity' || t === '-Infinity' ? t : new Num(t);
    case 'bool':
      return t === 't' || t === 'true';
    case 'bytea':
      return Buffer.from(t.slice(2), 'hex').toString('base64');
    case 'date':
      return isoFromPg(t, false);
    case 'timestamp':
      return isoFromPg(t, false);
    case 'timestamptz':
      return isoFromPg(t, true);
    case 'json':
      return parseLossless(t);
    case 'array':
      throw new Error('arrays are compared element by element');
  }
}

/** True when the envelope holds `want`: numbers equal as numbers (exact text for integers, the same double with its sign for floats). */
function same(rule: Rule, want: Lossless, got: Lossless): boolean {
  if (want instanceof Num || got instanceof Num) {
    if (!(want instanceof Num && got instanceof Num)) return false;
    if (rule === 'float') return Object.is(Number(want.text), Number(got.text));
    return want.text === got.text;
  }
  return canonical(want) === canonical(got);
}

describe('postgres: random values of every type equal what Postgres prints, snapshot and stream', { concurrency: false }, () => {
  it('every value of every row, on every path, follows the documented rules', async () => {
    const seed = propertySeed(20251205);
    const total = propertyRows(240);
    const rng = new Rng(seed);
    await using db = await PgTestDb.create('pgprop');
    await db.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy 😀', 'très "bien"');
      CREATE DOMAIN posint AS int CHECK (VALUE > 0);
      CREATE TABLE t (id int PRIMARY KEY, rev int NOT NULL DEFAULT 0, big text, ${COLUMNS.map((c) => `${c.name} ${c.sql}`).join(', ')});
      ALTER TABLE t REPLICA IDENTITY FULL;`);
    const rows: Record<string, string | null>[] = [];
    const insert = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        const v = rowValues(rng, i);
        rows[i] = v;
        // `big` is random text past the TOAST threshold: an update that leaves it alone
        // sends it as unchanged ('u'), so that row takes the decoder's string path.
        const big = i % 3 === 0 ? lit(Array.from({ length: 3000 }, () => String.fromCharCode(rng.int(33, 126))).join('')) : 'NULL';
        await db.query(`INSERT INTO t (id, big, ${COLUMNS.map((c) => c.name).join(', ')}) VALUES (${i}, ${big}, ${COLUMNS.map((c) => (v[c.name] === null ? 'NULL' : `${lit(v[c.name]!)}::${c.sql}`)).join(', ')})`);
      }
    };
    const half = Math.floor(total / 2);
    await insert(0, half);
    // Postgres' own decoding of the same WAL (test_decoding), for the LSN of every change and
    // watermark: `source.lsn` must be the change's own LSN (docs/postgres.md).
    const decodingSlot = `td_${db.name}`.slice(0, 63);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [decodingSlot]);
    await using p = await InProcessPipeline.start({
      name: `pgprop_${process.pid}_${Math.floor(Math.random() * 1e6)}`,
      source: `type: postgres\nurl: ${db.url}\ntables: [public.t]\nsnapshot: initial`,
    });
    await waitForLines(p.out, half);
    await insert(half, total);
    // Updates: before and after images (the whole old row), a third with an unchanged TOAST value.
    const updated = Array.from({ length: total }, (_, i) => i).filter((i) => i % 4 === 1 || i % 12 === 0);
    await db.query(`UPDATE t SET rev = rev + 1 WHERE id = ANY($1)`, [updated]);
    const want = total + updated.length;
    await waitForLines(p.out, want);

    // test_decoding: INSERT/UPDATE of each id, and the high watermarks, by LSN.
    const changeLsn = new Map<string, string>();
    const highLsns = new Set<string>();
    for (const row of (await db.query<{ lsn: string; data: string }>(`SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_changes($1, NULL, NULL)`, [decodingSlot])).rows) {
      const m = /^table public\.t: (INSERT|UPDATE): .*?\bid\[integer\]:(\d+)/.exec(row.data);
      if (m) changeLsn.set(`${m[1] === 'INSERT' ? 'c' : 'u'}${m[2]}`, row.lsn);
      else if (/^message: transactional: 1 prefix: tributary_wm, .*"mark":"high"/.test(row.data)) highLsns.add(row.lsn);
    }

    // What Postgres prints for every value, in the replication session's settings.
    const ref = new pg.Client({ connectionString: db.url, options: SESSION_OPTIONS } as pg.ClientConfig);
    await ref.connect();
    const printed = new Map<number, Record<string, string | null>>();
    const elems = new Map<number, Record<string, (string | null)[] | null>>();
    const dims = new Map<number, Record<string, number>>();
    try {
      const arrays = COLUMNS.filter((c) => c.rule === 'array');
      const res = await ref.query({
        text: `SELECT id, ${COLUMNS.map((c) => `${c.select ?? `${c.name}::text`} AS ${c.name}`).join(', ')}, ${arrays.map((c) => `(SELECT array_agg(x::text) FROM unnest(${c.name}) x) AS ${c.name}__e, array_ndims(${c.name}) AS ${c.name}__n`).join(', ')} FROM t`,
      });
      for (const row of res.rows as Record<string, unknown>[]) {
        const id = Number(row.id);
        printed.set(id, Object.fromEntries(COLUMNS.map((c) => [c.name, row[c.name] as string | null])));
        elems.set(id, Object.fromEntries(arrays.map((c) => [c.name, (row[`${c.name}__e`] as (string | null)[] | null) ?? (row[c.name] === null ? null : [])])));
        dims.set(id, Object.fromEntries(arrays.map((c) => [c.name, Number(row[`${c.name}__n`] ?? 1)])));
      }
    } finally {
      await ref.end();
    }

    // Every line of the jsonl file must be one envelope (the framing a json newline broke).
    const lines = readFileSync(p.out, 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'the file ends with a newline');
    const bad = new Mismatches(seed);
    const broken: string[] = [];
    const lsnWrong: string[] = [];
    const ops = { r: 0, c: 0, u: 0 };
    for (const line of lines) {
      let ev: { [k: string]: Lossless };
      try {
        ev = parseLossless(line) as { [k: string]: Lossless };
        if (ev === null || typeof ev !== 'object' || !('op' in ev)) throw new Error('not an envelope');
      } catch (err) {
        broken.push(`${(err as Error).message}: ${line.slice(0, 120)}`);
        continue;
      }
      const op = ev.op as 'r' | 'c' | 'u';
      ops[op]++;
      const lsn = (ev.source as { lsn: string }).lsn;
      const rowId = Number(((ev.after as { id: Num }).id).text);
      const lsnOk = op === 'r' ? highLsns.has(lsn) : changeLsn.get(`${op}${rowId}`) === lsn;
      if (!lsnOk) {
        lsnWrong.push(`row ${rowId} ${op}: source.lsn ${lsn}, test_decoding has ${op === 'r' ? `high watermarks at ${[...highLsns].join(' ')}` : changeLsn.get(`${op}${rowId}`)}`);
      }
      const images: [string, Lossless][] = op === 'u' ? [['before', ev.before!], ['after', ev.after!]] : [['after', ev.after!]];
      for (const [which, img] of images) {
        const image = img as { [k: string]: Lossless };
        const id = Number((image.id as Num).text);
        const db = printed.get(id)!;
        for (const c of COLUMNS) {
          const where = `row ${id} ${op} ${which}.${c.name}`;
          bad.checked++;
          const got = image[c.name];
          const t = db[c.name]!;
          if (t === null) {
            if (got !== null) bad.add(where, c.sql, null, null, got);
            continue;
          }
          if (c.rule === 'array') {
            const es = elems.get(id)![c.name]!;
            const flat = flatten(got, dims.get(id)![c.name]!);
            const ok = flat !== null && flat.length === es.length && es.every((e, k) => (e === null ? flat[k] === null : same(c.elem!, expected(c.elem!, e), flat[k]!)));
            if (!ok) bad.add(where, c.sql, t, es.map((e) => (e === null ? null : expected(c.elem!, e))), got);
            continue;
          }
          let w: Lossless;
          try {
            w = expected(c.rule, t);
          } catch (err) {
            bad.add(where, c.sql, t, `(no rule: ${(err as Error).message})`, got);
            continue;
          }
          if (got === undefined || !same(c.rule, w, got)) bad.add(where, c.sql, t, w, got);
        }
      }
    }
    assert.equal(broken.length, 0, `${broken.length} of ${lines.length} jsonl lines are not one JSON envelope each:\n${broken.slice(0, 5).join('\n')}`);
    assert.equal(bad.list.length, 0, bad.report());
    assert.equal(lsnWrong.length, 0, `source.lsn is not the change's own LSN (snapshot rows: the high watermark's):\n${lsnWrong.slice(0, 5).join('\n')}`);
    assert.deepEqual(ops, { r: half, c: total - half, u: updated.length }, 'the snapshot, stream and update paths each ran');
    process.stdout.write(`# pg property: ${bad.checked} values in ${lines.length} envelopes (${JSON.stringify(ops)}), seed ${seed}: all equal\n`);
  });
});

/** Waits until the jsonl file holds `n` lines (generous: the machine is shared). */
async function waitForLines(path: string, n: number): Promise<void> {
  const count = (): number => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').length - 1 : 0);
  await waitFor(() => count() >= n, { timeoutMs: 180_000, what: `${n} lines in ${path} (have ${count()})` });
}

/**
 * The elements of an `ndims`-dimensional array in order (as `unnest` lists them), or null
 * when `v` is not nested that deep. Deeper arrays are elements (a jsonb element may be one).
 */
function flatten(v: Lossless | undefined, ndims: number): Lossless[] | null {
  if (!Array.isArray(v)) return null;
  const out: Lossless[] = [];
  const walk = (a: Lossless[], depth: number): boolean => {
    for (const x of a) {
      if (depth < ndims) {
        if (!Array.isArray(x) || !walk(x, depth + 1)) return false;
      } else out.push(x);
    }
    return true;
  };
  return walk(v, 1) ? out : null;
}
