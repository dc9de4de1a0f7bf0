import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { describeSinkConformance, makeSinkEvent } from '../../src/testing/index.js';
import postgresSink from '../../sinks/postgres/index.js';
import { PgTestDb } from '../helpers/context.js';
import { txnWriter } from '../helpers/txn-writer.js';

/**
 * The conformance kit against a real Postgres target, for both modes, plus the behaviours
 * the kit does not reach: type mapping and widening, new columns, unchanged TOAST columns,
 * key changes, fenced truncates and the position stored with the data.
 */
const db = await PgTestDb.create('pgsink');
after(() => db[Symbol.asyncDispose]());

const COLS = ['id', 'name', 'amount', 'tags'];
function ordered(r: Row | null): Row | null {
  if (!r) return null;
  const o: Row = {};
  for (const c of COLS) if (c in r) o[c] = r[c]!;
  return o;
}

async function reset(): Promise<void> {
  await db.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
}

describeSinkConformance(
  {
    definition: postgresSink,
    module: new URL('../../sinks/postgres/index.js', import.meta.url),
    config: { url: db.url, mode: 'mirror' },
    kind: 'keyed',
    reset,
    async readState() {
      const r = await db.query('SELECT id, name, amount, tags FROM public.conformance');
      return new Map(r.rows.map((x) => [JSON.stringify({ id: Number(x.id) }), { ...x, id: Number(x.id) } as Row]));
    },
    poison: (base) => ({ ...base, after: { ...base.after!, name: 'nul\u0000byte' } }),
  },
  'sink conformance: postgres (mirror)',
);

describeSinkConformance(
  {
    definition: postgresSink,
    module: new URL('../../sinks/postgres/index.js', import.meta.url),
    config: { url: db.url, mode: 'history' },
    kind: 'append',
    reset,
    async readState() {
      const r = await db.query('SELECT * FROM public.conformance ORDER BY _fence');
      return r.rows.map((x): ChangeEvent => {
        const ts = Number(x._ts_ms);
        return {
          op: x._op,
          before: ordered(x._before),
          after: x._op === 'd' ? null : ordered({ id: Number(x.id), name: x.name, amount: x.amount, tags: x.tags }),
          key: { id: Number(x.id) },
          source: { connector: 'postgresql', name: 'conformance', db: 'conformance', schema: 'public', table: 'conformance', ts_ms: ts, snapshot: 'false' },
          ts_ms: ts,
        };
      });
    },
    poison: (base) => ({ ...base, after: { ...base.after!, name: 'nul\u0000byte' } }),
  },
  'sink conformance: postgres (history)',
);

function ev(op: ChangeEvent['op'], before: Row | null, afterRow: Row | null, extra: Partial<ChangeEvent['source']> = {}): ChangeEvent {
  const row = afterRow ?? before;
  return {
    op,
    before,
    after: afterRow,
    key: op === 't' ? null : { id: row!.id! },
    source: { connector: 'postgresql', name: 'x', db: 'src', schema: 'app', table: 'items', ts_ms: 1, snapshot: 'false', ...extra },
    ts_ms: 1,
  };
}

describe('postgres sink: mapping and fencing', { concurrency: false }, () => {
  let sink: Awaited<ReturnType<typeof postgresSink.create>>;
  let txn = 100;
  const write = (evs: ChangeEvent[], commit = true) => {
    const t = txn++;
    const batch = evs.map((e, i) => makeSinkEvent(e, t, i));
    return sink.write(batch, { signal: new AbortController().signal, commit: commit ? String(t) : null }).then(() => batch);
  };
  const rows = async () => (await db.query('SELECT * FROM wh.items ORDER BY id')).rows;

  before(async () => {
    await db.query('DROP SCHEMA IF EXISTS wh CASCADE');
    sink = await postgresSink.create(postgresSink.config.parse({ url: db.url, schema: 'wh' }), {
      logger: (await import('pino')).pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'maptest',
      sinkName: 'pg',
      stateDir: '/tmp',
    });
    await sink.open?.({ position: null, state: undefined });
  });
  after(() => sink.close());

  it('creates the table with mapped types and stores the position in the same transaction', async () => {
    await write([ev('c', null, { id: 1, qty: 3, price: '12.30', ratio: 0.5, ok: true, at: '2024-01-15T10:30:00.123456Z', doc: { a: [1, 2] }, note: null })]);
    const types = await db.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'wh' AND table_name = 'items' ORDER BY ordinal_position`,
    );
    assert.deepEqual(
      Object.fromEntries(types.rows.map((r) => [r.column_name, r.data_type])),
      { id: 'bigint', qty: 'bigint', price: 'text', ratio: 'double precision', ok: 'boolean', at: 'text', doc: 'jsonb', _tributary_fence: 'text' },
    );
    const [r] = await rows();
    assert.deepEqual({ ...r, _tributary_fence: undefined }, { id: '1', qty: '3', price: '12.30', ratio: 0.5, ok: true, at: '2024-01-15T10:30:00.123456Z', doc: { a: [1, 2] }, _tributary_fence: undefined });
    const pos = await db.query(`SELECT position FROM public._tributary_positions WHERE pipeline = 'maptest' AND sink = 'pg'`);
    assert.equal(pos.rows[0]?.position, String(txn - 1));
    // A second instance learns the position from the target itself.
    const again = await postgresSink.create(postgresSink.config.parse({ url: db.url, schema: 'wh' }), {
      logger: (await import('pino')).pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'maptest',
      sinkName: 'pg',
      stateDir: '/tmp',
    });
    try {
      assert.deepEqual(await again.open?.({ position: null, state: undefined }), { position: String(txn - 1) });
    } finally {
      await again.close();
    }
  });

  it('adds new columns, fills late non-null columns, and widens bigint to double precision', async () => {
    await write([ev('u', null, { id: 1, qty: 2.5, price: '1', ratio: 1, ok: false, at: null, doc: null, note: 'late', extra: 7 })]);
    const [r] = await rows();
    assert.equal(r.qty, 2.5);
    assert.equal(r.note, 'late');
    assert.equal(r.extra, '7');
  });

  it('keeps unchanged TOAST columns, and takes them from an earlier change of the same batch', async () => {
    await write([ev('u', null, { id: 1, qty: 1, price: '2', ratio: 1, ok: true, at: null, doc: null, extra: 8 }, { unchanged: ['note'] })]);
    assert.equal((await rows())[0].note, 'late', 'a missing unchanged column must keep its value');
    await write([
      ev('u', null, { id: 1, qty: 1, price: '3', ratio: 1, ok: true, at: null, doc: null, extra: 8, note: 'set-in-batch' }),
      ev('u', null, { id: 1, qty: 1, price: '4', ratio: 1, ok: true, at: null, doc: null, extra: 8 }, { unchanged: ['note'] }),
    ]);
    const [r] = await rows();
    assert.equal(r.price, '4');
    assert.equal(r.note, 'set-in-batch');
  });

  it('an update that changes the key moves the row', async () => {
    await write([ev('u', { id: 1 }, { id: 2, qty: 1, price: '5', ratio: 1, ok: true, at: null, doc: null, extra: 8, note: 'moved' })]);
    assert.deepEqual((await rows()).map((r) => [r.id, r.note]), [['2', 'moved']]);
  });

  it('a truncate empties the table and fences out older replayed events', async () => {
    const old = await write([ev('c', null, { id: 5, qty: 1, price: '1', ratio: 1, ok: true, at: null, doc: null, extra: 1, note: 'n' })]);
    await write([ev('t', null, null)]);
    assert.equal((await rows()).length, 0);
    await sink.write(old, { signal: new AbortController().signal, commit: null });
    assert.equal((await rows()).length, 0, 'an insert older than the truncate must not come back');
    await write([ev('c', null, { id: 6, qty: 1, price: '1', ratio: 1, ok: true, at: null, doc: null, extra: 1, note: 'n' })]);
    assert.deepEqual((await rows()).map((r) => r.id), ['6']);
  });

  it('collapses many changes of one key in a batch to the last', async () => {
    const evs: ChangeEvent[] = [];
    for (let i = 0; i < 50; i++) evs.push(ev('u', null, { id: 7, qty: i, price: String(i), ratio: 1, ok: true, at: null, doc: null, extra: 1, note: 'x' }));
    evs.push(ev('d', { id: 6 }, null));
    await write(evs);
    assert.deepEqual((await rows()).map((r) => [r.id, r.qty]), [['7', 49]]);
  });

  it('a value the target cannot take is a poison event (PoisonEventError)', async () => {
    await assert.rejects(
      write([ev('u', null, { id: 7, qty: 'not-a-number', price: '1', ratio: 1, ok: true, at: null, doc: null, extra: 1, note: 'x' })]),
      (err: Error) => err.name === 'PoisonEventError' && /SQLSTATE 22P02/.test(err.message),
    );
    assert.deepEqual((await rows()).map((r) => [r.id, r.qty]), [['7', 49]], 'nothing of the rejected batch is applied');
  });
});

describe('postgres sink: COPY staging', { concurrency: false }, () => {
  let sink: Awaited<ReturnType<typeof postgresSink.create>>;
  const write = txnWriter(() => sink, 500);
  const rows = async () => (await db.query('SELECT id, note, doc, tags FROM wh2.items ORDER BY id')).rows;

  before(async () => {
    await db.query('DROP SCHEMA IF EXISTS wh2 CASCADE');
    // A hand-made table: a jsonb column that may receive a plain string, and an array column,
    // which COPY text cannot carry as JSON (such statements keep the json_to_recordset path).
    await db.query('CREATE SCHEMA wh2');
    await db.query(`CREATE TABLE wh2.items (id bigint PRIMARY KEY, note text, doc jsonb, tags integer[], _tributary_fence text COLLATE "C" NOT NULL)`);
    // Two rows per statement: a batch of five fills the same staging table three times in one transaction.
    sink = await postgresSink.create(postgresSink.config.parse({ url: db.url, schema: 'wh2', max_rows_per_statement: 2 }), {
      logger: (await import('pino')).pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'copytest',
      sinkName: 'pg',
      stateDir: '/tmp',
    });
    await sink.open?.({ position: null, state: undefined });
  });
  after(() => sink.close());

  it('stores every character and JSON kind exactly, across several statements of one batch', async () => {
    const notes = ['tab\there', 'new\nline\r\nend', 'back\\slash \\N', '\\N', 'ünïcode 😀 "quoted"', ''];
    const docs = ['just a string', { a: 'x\ty', b: [1, null, true] }, 42, true, [1, 'two'], null];
    await write(notes.map((note, i) => ev('c', null, { id: i + 1, note, doc: docs[i]! })));
    assert.deepEqual(
      (await rows()).map((r) => [r.id, r.note, r.doc]),
      notes.map((note, i) => [String(i + 1), note, docs[i]]),
    );
    // A null is NULL, not the text "\N" or an empty string.
    await write([ev('u', null, { id: 6, note: null, doc: null })]);
    assert.deepEqual((await db.query('SELECT note IS NULL AS n, doc IS NULL AS d FROM wh2.items WHERE id = 6')).rows, [{ n: true, d: true }]);
  });

  it('a row with an array column goes through json_to_recordset, next to rows that are COPYed', async () => {
    await write([ev('u', null, { id: 1, note: 'with tags', tags: [3, 4] }), ev('u', null, { id: 2, note: 'without' })]);
    const r = await rows();
    assert.deepEqual([r[0].note, r[0].tags, r[1].note, r[1].tags], ['with tags', [3, 4], 'without', null]);
  });

  it('deletes through the staging table leave tombstones that fence out a replayed insert', async () => {
    await write([ev('d', { id: 3 }, null), ev('d', { id: 4 }, null), ev('d', { id: 5 }, null)]);
    assert.deepEqual((await rows()).map((r) => r.id), ['1', '2', '6']);
    const old = makeSinkEvent(ev('c', null, { id: 4, note: 'zombie' }), 1, 0);
    await sink.write([old], { signal: new AbortController().signal, commit: null });
    assert.deepEqual((await rows()).map((r) => r.id), ['1', '2', '6']);
  });
});
