import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { pino } from 'pino';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { describeSinkConformance, makeSinkEvent } from '../../src/testing/index.js';
import duckdbSink from '../../sinks/duckdb/index.js';
import { txnWriter } from '../helpers/txn-writer.js';

/**
 * The conformance kit against a real DuckDB file, for both modes, plus mapping, widening, new
 * columns, key changes, fenced truncates and the position stored with the data.
 */
const dir = mkdtempSync(join(tmpdir(), 'tributary-duckdb-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The same process-wide instance the sink uses (two instances on one file must not coexist).
 * Released after each query: the kit's crash case runs the sink in a child process, which
 * needs the file's lock.
 */
async function query(path: string, sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.fromCache(path);
  const c = await db.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

const COLS = ['id', 'name', 'amount', 'tags'];
function ordered(r: Row | null): Row | null {
  if (!r) return null;
  const o: Row = {};
  for (const c of COLS) if (c in r) o[c] = r[c]!;
  return o;
}
const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);

for (const mode of ['mirror', 'history'] as const) {
  const path = join(dir, `${mode}.duckdb`);
  const reset = async () => {
    await query(path, 'DROP SCHEMA IF EXISTS public CASCADE');
    await query(path, 'DROP TABLE IF EXISTS main._tributary_positions');
    await query(path, 'DROP TABLE IF EXISTS main._tributary_tombstones');
  };
  describeSinkConformance(
    {
      definition: duckdbSink,
      module: new URL('../../sinks/duckdb/index.js', import.meta.url),
      config: { path, mode },
      kind: mode === 'mirror' ? 'keyed' : 'append',
      reset,
      async readState() {
        if (mode === 'mirror') {
          const r = await query(path, 'SELECT id, name, amount, tags FROM public.conformance');
          return new Map(r.map((x) => [JSON.stringify({ id: Number(x.id) }), { id: Number(x.id), name: x.name, amount: x.amount, tags: parse(x.tags) } as Row]));
        }
        const r = await query(path, 'SELECT * FROM public.conformance ORDER BY _fence');
        return r.map((x): ChangeEvent => {
          const ts = Number(x._ts_ms);
          return {
            op: x._op as ChangeEvent['op'],
            before: ordered(parse(x._before)),
            after: x._op === 'd' ? null : ordered({ id: Number(x.id), name: x.name as string, amount: x.amount as string, tags: parse(x.tags) }),
            key: { id: Number(x.id) },
            source: { connector: 'postgresql', name: 'conformance', db: 'conformance', schema: 'public', table: 'conformance', ts_ms: ts, snapshot: 'false' },
            ts_ms: ts,
          };
        });
      },
      // A lone UTF-16 surrogate is not valid Unicode: DuckDB can never store it.
      poison: (base) => ({ ...base, after: { ...base.after!, name: 'broken \uD800 text' } }),
    },
    `sink conformance: duckdb (${mode})`,
  );
}

function ev(op: ChangeEvent['op'], before: Row | null, afterRow: Row | null, extra: Partial<ChangeEvent['source']> = {}): ChangeEvent {
  const row = afterRow ?? before;
  return {
    op,
    before,
    after: afterRow,
    key: op === 't' ? null : { id: row!.id! },
    source: { connector: 'mysql', name: 'x', db: 'shop', table: 'items', ts_ms: 1, snapshot: 'false', ...extra },
    ts_ms: 1,
  };
}

describe('duckdb sink: mapping and fencing', { concurrency: false }, () => {
  const path = join(dir, 'map.duckdb');
  let sink: Awaited<ReturnType<typeof duckdbSink.create>>;
  let txn = 100;
  const make = () =>
    duckdbSink.create(duckdbSink.config.parse({ path }), {
      logger: pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'maptest',
      sinkName: 'duck',
      stateDir: dir,
    });
  const write = (evs: ChangeEvent[], commit = true) => {
    const t = txn++;
    const batch = evs.map((e, i) => makeSinkEvent(e, t, i));
    return sink.write(batch, { signal: new AbortController().signal, commit: commit ? String(t) : null }).then(() => batch);
  };
  const rows = () => query(path, 'SELECT * FROM shop.items ORDER BY id');

  before(async () => {
    sink = await make();
    await sink.open?.({ position: null, state: undefined });
  });
  after(() => sink.close());

  it('creates the table with mapped types (MySQL source: schema = database) and stores the position with the data', async () => {
    await write([ev('c', null, { id: 1, qty: 3, price: '12.30', ratio: 0.5, ok: true, at: '2024-01-15T10:30:00.123456Z', doc: { a: [1, 2] }, note: null })]);
    const types = await query(path, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'shop' AND table_name = 'items' ORDER BY ordinal_position`);
    assert.deepEqual(Object.fromEntries(types.map((r) => [r.column_name, r.data_type])), {
      id: 'BIGINT', qty: 'BIGINT', price: 'VARCHAR', ratio: 'DOUBLE', ok: 'BOOLEAN', at: 'VARCHAR', doc: 'JSON', _tributary_fence: 'VARCHAR',
    });
    const [r] = await rows();
    assert.deepEqual({ ...r, _tributary_fence: undefined, doc: parse(r!.doc) }, { id: '1', qty: '3', price: '12.30', ratio: 0.5, ok: true, at: '2024-01-15T10:30:00.123456Z', doc: { a: [1, 2] }, _tributary_fence: undefined });
    const again = await make();
    try {
      assert.deepEqual(await again.open?.({ position: null, state: undefined }), { position: String(txn - 1) });
    } finally {
      await again.close();
    }
  });

  it('adds new columns and widens BIGINT to DOUBLE instead of rounding', async () => {
    await write([ev('u', null, { id: 1, qty: 2.5, price: '1', ratio: 1, ok: false, at: null, doc: null, note: 'late', extra: 7 })]);
    const [r] = await rows();
    assert.equal(r!.qty, 2.5);
    assert.equal(r!.note, 'late');
    assert.equal(r!.extra, '7');
  });

  it('keeps unchanged TOAST columns, and moves a row whose key changed', async () => {
    await write([ev('u', null, { id: 1, qty: 1, price: '2', ratio: 1, ok: true, at: null, doc: null, extra: 8 }, { unchanged: ['note'] })]);
    assert.equal((await rows())[0]!.note, 'late');
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

  it('a value the target cannot take is a poison event, and nothing of its batch lands', async () => {
    await assert.rejects(
      write([
        ev('c', null, { id: 9, qty: 1, price: '1', ratio: 1, ok: true, at: null, doc: null, extra: 1, note: 'n' }),
        ev('u', null, { id: 6, qty: 'not-a-number', price: '1', ratio: 1, ok: true, at: null, doc: null, extra: 1, note: 'x' }),
      ]),
      (err: Error) => err.name === 'PoisonEventError',
    );
    assert.deepEqual((await rows()).map((r) => r.id), ['6']);
  });
});

describe('duckdb sink: staging tables', { concurrency: false }, () => {
  const path = join(dir, 'stage.duckdb');
  let sink: Awaited<ReturnType<typeof duckdbSink.create>>;
  const write = txnWriter(() => sink, 500);
  const rows = () => query(path, 'SELECT id, note, doc FROM shop.items ORDER BY id');

  before(async () => {
    // Two rows per statement: a batch of six loads the same staging table three times in one transaction.
    sink = await duckdbSink.create(duckdbSink.config.parse({ path, max_rows_per_statement: 2 }), {
      logger: pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'stagetest',
      sinkName: 'duck',
      stateDir: dir,
    });
    await sink.open?.({ position: null, state: undefined });
  });
  after(() => sink.close());

  it('stores every character and JSON kind exactly, across several statements of one batch', async () => {
    const notes = ['tab\there', 'new\nline\r\nend', 'back\\slash \\N', '\\N', 'ünïcode 😀 "quoted"', ''];
    const docs = [{ a: 'x\ty', b: [1, null, true] }, 'just a string', 42, true, [1, 'two'], null];
    await write(notes.map((note, i) => ev('c', null, { id: i + 1, note, doc: docs[i]! })));
    assert.deepEqual(
      (await rows()).map((r) => [r.id, r.note, r.doc === null ? null : parse(r.doc)]),
      notes.map((note, i) => [String(i + 1), note, docs[i]]),
    );
  });

  it('deletes through the staging table leave tombstones that fence out a replayed insert', async () => {
    await write([ev('d', { id: 3 }, null), ev('d', { id: 4 }, null), ev('d', { id: 5 }, null)]);
    assert.deepEqual((await rows()).map((r) => r.id), ['1', '2', '6']);
    const old = makeSinkEvent(ev('c', null, { id: 4, note: 'zombie' }), 1, 0);
    await sink.write([old], { signal: new AbortController().signal, commit: null });
    assert.deepEqual((await rows()).map((r) => r.id), ['1', '2', '6']);
    // A newer insert of a deleted key is applied (the tombstone check lets it through).
    await write([ev('c', null, { id: 4, note: 'reborn', doc: null })]);
    assert.deepEqual((await rows()).map((r) => [r.id, r.note]), [['1', 'tab\there'], ['2', 'new\nline\r\nend'], ['4', 'reborn'], ['6', '']]);
  });
});
