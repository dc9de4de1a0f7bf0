/**
 * The warehouse helpers keyed SQL sinks share (postgres and duckdb today): batch planning,
 * type inference, the DDL a table gets from the values it sees, quoting. They are pure, so
 * every edge case is tested here directly, without a database.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { PoisonEventError } from '../../src/core/errors.js';
import { fillUnchanged, requireAfter, requireKey, type SinkEvent } from '../../src/sdk/index.js';
import { makeSinkEvent } from '../../src/testing/events.js';
import { REPO } from '../helpers/context.js';
import * as warehouse from '../../src/sdk/warehouse/index.js';
import {
  bySignature,
  chunks,
  groupByTable,
  inferKinds,
  kindOf,
  mergeKind,
  planMirror,
  quoteBackslashLiteral,
  quoteIdent,
  quoteLiteral,
  rowJson,
  splitChanges,
  TableCache,
  type Segment,
  type TableChanges,
  type WarehouseDialect,
} from '../../src/sdk/warehouse/index.js';

let txn = 1;

/** One event of `table` (default `s.t`), keyed by `keyCols` of its row. */
function ev(op: ChangeEvent['op'], o: { before?: Row | null; after?: Row | null; key?: Row | null; table?: string; unchanged?: string[] } = {}): SinkEvent {
  const [schema, table] = (o.table ?? 's.t').split('.') as [string, string];
  const row = o.after ?? o.before ?? null;
  const key = o.key !== undefined ? o.key : row && 'id' in row ? { id: row.id! } : null;
  const event: ChangeEvent = {
    op,
    before: o.before ?? null,
    after: o.after ?? null,
    key: op === 't' ? null : key,
    source: { connector: 'postgresql', name: 'p', db: 'd', schema, table, ts_ms: 0, snapshot: 'false', ...(o.unchanged ? { unchanged: o.unchanged } : {}) },
    ts_ms: 0,
  };
  return makeSinkEvent(event, txn++, 0, { bytes: false });
}

function changesOf(seg: Segment | undefined, table = 's.t'): TableChanges {
  assert.equal(seg?.kind, 'changes');
  const t = (seg as Extract<Segment, { kind: 'changes' }>).tables.get(table);
  assert.ok(t, `changes for ${table}`);
  return t;
}

/** The net changes of one table as plain data: keyId → op, row and the fence's event. */
function net(t: TableChanges, events: SinkEvent[]): Array<[string, string, Row | null, number]> {
  return [...t.changes.values()].map((c) => [c.keyId, c.op, c.row, events.findIndex((e) => e.fence === c.fence)]);
}

describe('planMirror: a batch to the last change per key, cut at truncates', () => {
  it('insert, update and delete of one key in one batch leave only the delete, with its fence', () => {
    const es = [ev('c', { after: { id: 1, v: 'a' } }), ev('u', { before: { id: 1 }, after: { id: 1, v: 'b' } }), ev('d', { before: { id: 1, v: 'b' } })];
    const plan = planMirror(es);
    assert.equal(plan.length, 1);
    assert.deepEqual(net(changesOf(plan[0]), es), [['1', 'delete', null, 2]]);
    assert.deepEqual(changesOf(plan[0]).changes.get('1')!.key, { id: 1 });
  });

  it('insert then update leave one upsert of the last row; a re-insert after a delete is an upsert again', () => {
    const es = [ev('c', { after: { id: 1, v: 'a' } }), ev('u', { after: { id: 1, v: 'b' } }), ev('c', { after: { id: 2 } }), ev('d', { before: { id: 2 } }), ev('c', { after: { id: 2, v: 'again' } })];
    assert.deepEqual(net(changesOf(planMirror(es)[0]), es), [
      ['1', 'upsert', { id: 1, v: 'b' }, 1],
      ['2', 'upsert', { id: 2, v: 'again' }, 4],
    ]);
  });

  it('an update that changes the key deletes the old key (with the update\'s fence) and upserts the new one', () => {
    const es = [ev('c', { after: { id: 1, v: 'a' } }), ev('u', { before: { id: 1, v: 'a' }, after: { id: 2, v: 'a' } })];
    const t = changesOf(planMirror(es)[0]);
    assert.deepEqual(net(t, es), [
      ['1', 'delete', null, 1],
      ['2', 'upsert', { id: 2, v: 'a' }, 1],
    ]);
    assert.deepEqual(t.changes.get('1')!.key, { id: 1 }, 'the old key, from the before image');
  });

  it('an update whose before image lacks the key columns (or has none) deletes nothing', () => {
    const es = [ev('u', { before: { v: 'old' }, after: { id: 2, v: 'a' } }), ev('u', { before: null, after: { id: 3 } }), ev('u', { before: { id: 4, v: 'x' }, after: { id: 4, v: 'y' } })];
    assert.deepEqual(
      net(changesOf(planMirror(es)[0]), es).map(([k, op]) => [k, op]),
      [
        ['2', 'upsert'],
        ['3', 'upsert'],
        ['4', 'upsert'],
      ],
    );
  });

  it('a truncate in the middle cuts the batch: changes before it, the truncate, changes after it', () => {
    const es = [ev('c', { after: { id: 1 } }), ev('c', { after: { id: 2 } }), ev('t'), ev('c', { after: { id: 1, v: 'after' } })];
    const plan = planMirror(es);
    assert.deepEqual(
      plan.map((s) => s.kind),
      ['changes', 'truncate', 'changes'],
    );
    assert.deepEqual(net(changesOf(plan[0]), es).map(([k]) => k), ['1', '2']);
    assert.equal((plan[1] as Extract<Segment, { kind: 'truncate' }>).event, es[2]);
    assert.deepEqual(net(changesOf(plan[2]), es), [['1', 'upsert', { id: 1, v: 'after' }, 3]], 'key 1 after the truncate is not merged with key 1 before it');
  });

  it('a truncate first, last or twice in a row makes no empty change segment', () => {
    const es = [ev('t'), ev('t'), ev('c', { after: { id: 1 } }), ev('t')];
    assert.deepEqual(
      planMirror(es).map((s) => s.kind),
      ['truncate', 'truncate', 'changes', 'truncate'],
    );
    assert.deepEqual(planMirror([]), []);
  });

  it('an update with unchanged TOAST columns takes them from the earlier change of the key in this batch', () => {
    const first = ev('c', { after: { id: 1, a: 'x', big: 'BIG', doc: { k: 1 } } });
    const second = ev('u', { after: { id: 1, a: 'y' }, unchanged: ['big', 'doc'] });
    const es = [first, second];
    assert.deepEqual(net(changesOf(planMirror(es)[0]), es), [['1', 'upsert', { id: 1, a: 'y', big: 'BIG', doc: { k: 1 } }, 1]]);
    assert.deepEqual(second.event.after, { id: 1, a: 'y' }, 'the shared envelope is not modified');
  });

  it('unchanged TOAST columns with no earlier upsert in the batch stay out of the row (the target keeps its value)', () => {
    const alone = [ev('u', { after: { id: 1, a: 'y' }, unchanged: ['big'] })];
    assert.deepEqual(net(changesOf(planMirror(alone)[0]), alone), [['1', 'upsert', { id: 1, a: 'y' }, 0]]);
    // After a delete of the key there is nothing to take them from either.
    const afterDelete = [ev('c', { after: { id: 1, big: 'B' } }), ev('d', { before: { id: 1 } }), ev('u', { after: { id: 1, a: 'z' }, unchanged: ['big'] })];
    assert.deepEqual(net(changesOf(planMirror(afterDelete)[0]), afterDelete), [['1', 'upsert', { id: 1, a: 'z' }, 2]]);
    // A column the update did send wins over the earlier value.
    const sent = [ev('c', { after: { id: 1, big: 'old' } }), ev('u', { after: { id: 1, big: 'new' }, unchanged: ['big'] })];
    assert.deepEqual(net(changesOf(planMirror(sent)[0]), sent), [['1', 'upsert', { id: 1, big: 'new' }, 1]]);
  });

  it('composite keys: one key id per value tuple, in key-column order; a single key is its JSON value', () => {
    const es = [
      ev('c', { after: { a: 1, b: 'x', v: 1 }, key: { a: 1, b: 'x' } }),
      ev('c', { after: { a: 1, b: 'y', v: 2 }, key: { a: 1, b: 'y' } }),
      ev('u', { after: { a: 1, b: 'x', v: 3 }, key: { a: 1, b: 'x' } }),
      ev('d', { before: { a: 1, b: 'y' }, key: { a: 1, b: 'y' } }),
    ];
    const t = changesOf(planMirror(es)[0]);
    assert.deepEqual(t.keyCols, ['a', 'b']);
    assert.deepEqual(net(t, es), [
      ['[1,"x"]', 'upsert', { a: 1, b: 'x', v: 3 }, 2],
      ['[1,"y"]', 'delete', null, 3],
    ]);
    // The key id is stored in the target's tombstones: its form must not change.
    const single = [ev('c', { after: { id: 'abc' } }), ev('c', { after: { id: '9007199254740993' } })];
    assert.deepEqual([...changesOf(planMirror(single)[0]).changes.keys()], ['"abc"', '"9007199254740993"']);
  });

  it('a key change of a composite key deletes the old tuple', () => {
    const es = [ev('u', { before: { a: 1, b: 'x', v: 0 }, after: { a: 1, b: 'z', v: 0 }, key: { a: 1, b: 'z' } })];
    assert.deepEqual(net(changesOf(planMirror(es)[0]), es).map(([k, op]) => [k, op]), [
      ['[1,"x"]', 'delete'],
      ['[1,"z"]', 'upsert'],
    ]);
  });

  it('tables are planned apart, each in first-seen order', () => {
    const es = [ev('c', { after: { id: 1 }, table: 's.b' }), ev('c', { after: { id: 1 }, table: 's.a' }), ev('u', { after: { id: 1, v: 2 }, table: 's.b' })];
    const seg = planMirror(es)[0] as Extract<Segment, { kind: 'changes' }>;
    assert.deepEqual([...seg.tables.keys()], ['s.b', 's.a']);
    assert.equal(seg.tables.get('s.b')!.sample, es[0]);
    assert.deepEqual(net(seg.tables.get('s.b')!, es), [['1', 'upsert', { id: 1, v: 2 }, 2]]);
  });

  it('an event without a key, or an insert without an after image, is a poison event', () => {
    assert.throws(() => planMirror([ev('c', { after: { v: 1 }, key: null })]), (err: unknown) => err instanceof PoisonEventError && /s\.t has no primary key/.test(err.message) && /key_columns/.test(err.message));
    assert.throws(() => planMirror([ev('c', { after: null, key: { id: 1 } })]), PoisonEventError);
  });
});

describe('splitChanges', () => {
  it('separates upserts from deletes and types the columns of both (a delete-only batch types the key)', () => {
    const es = [ev('c', { after: { id: 1, v: 1.5 } }), ev('d', { before: { id: 2 }, key: { id: 2 } }), ev('c', { after: { id: 3, v: 2, doc: null } })];
    const { upserts, deletes, kinds } = splitChanges(changesOf(planMirror(es)[0]));
    assert.deepEqual(upserts.map((u) => u.keyId), ['1', '3']);
    assert.deepEqual(deletes.map((d) => d.keyId), ['2']);
    assert.deepEqual(Object.fromEntries(kinds), { id: 'int', v: 'float' });
    const onlyDeletes = splitChanges(changesOf(planMirror([ev('d', { before: { id: 'k' }, key: { id: 'k' } })])[0]));
    assert.deepEqual(Object.fromEntries(onlyDeletes.kinds), { id: 'text' });
  });
});

describe('keyed-sink rules (tributary/sdk)', () => {
  it('requireKey returns the key, and makes a keyless event (null or empty key) a poison event naming the table, the event and the fixes', () => {
    const keyed = ev('c', { after: { id: 1 } });
    assert.equal(requireKey(keyed, 'x'), keyed.event.key);
    for (const key of [null, {}]) {
      const e = ev('c', { after: { v: 1 }, key });
      assert.throws(
        () => requireKey(e, 'index documents are keyed by it'),
        (err: unknown) =>
          err instanceof PoisonEventError &&
          err.message === `s.t has no primary key, and index documents are keyed by it (event at ${e.position}#0); add a primary key to the source table or set the source's key_columns for it`,
      );
    }
    const e = ev('d', { before: { v: 1 }, key: null });
    assert.throws(() => requireKey(e, 'a mirror keeps rows by key', ['use mode: history']), /key_columns for it, or use mode: history$/);
  });

  it('requireAfter returns the after image, and makes its absence a poison event', () => {
    const e = ev('u', { after: { id: 1 } });
    assert.equal(requireAfter(e), e.event.after);
    assert.throws(() => requireAfter(ev('u', { after: null, key: { id: 1 } })), (err: unknown) => err instanceof PoisonEventError && /a "u" event without an "after" row image/.test(err.message));
  });

  it('fillUnchanged takes only the named columns the row lacks from the previous state, in a copy', () => {
    const row = { id: 1, a: 'new' };
    assert.equal(fillUnchanged(row, undefined, { big: 'B' }), row, 'nothing unchanged: the row itself');
    assert.equal(fillUnchanged(row, [], { big: 'B' }), row);
    const filled = fillUnchanged(row, ['big', 'a', 'gone'], { id: 1, a: 'old', big: 'B', other: 'O' });
    assert.deepEqual(filled, { id: 1, a: 'new', big: 'B' }, 'a sent column wins; a column prev lacks stays out; other columns are not copied');
    assert.deepEqual(row, { id: 1, a: 'new' }, 'the event row is not modified');
    assert.deepEqual(fillUnchanged(row, ['big'], null), { id: 1, a: 'new' }, 'no previous state: the columns stay out');
  });
});

describe('groupByTable (history mode)', () => {
  it('keeps every event, in order, per table', () => {
    const es = [ev('c', { after: { id: 1 }, table: 's.a' }), ev('c', { after: { id: 1 }, table: 's.b' }), ev('d', { before: { id: 1 }, table: 's.a' })];
    const g = groupByTable(es);
    assert.deepEqual([...g.keys()], ['s.a', 's.b']);
    assert.deepEqual(g.get('s.a'), [es[0], es[2]]);
  });
});

describe('type inference from JSON values', () => {
  it('kindOf: numbers by integrality, strings stay text (big integers, NUMERIC, timestamps), objects and arrays are json, null says nothing', () => {
    assert.equal(kindOf(42), 'int');
    assert.equal(kindOf(-1.5), 'float');
    assert.equal(kindOf(true), 'bool');
    assert.equal(kindOf('9223372036854775807'), 'text', 'an int64 beyond 2^53 arrives as a string and stays exact');
    assert.equal(kindOf('12345.6789'), 'text', 'NUMERIC is text');
    assert.equal(kindOf('2024-01-02T03:04:05Z'), 'text');
    assert.equal(kindOf({ a: 1 }), 'json');
    assert.equal(kindOf([1, 2]), 'json');
    assert.equal(kindOf(null), null);
    assert.equal(kindOf(undefined), null);
  });

  it('mergeKind: int and float widen to float; other mixes keep the first kind; null takes the other', () => {
    assert.equal(mergeKind('int', 'float'), 'float');
    assert.equal(mergeKind('float', 'int'), 'float');
    assert.equal(mergeKind('int', 'text'), 'int');
    assert.equal(mergeKind('text', 'json'), 'text');
    assert.equal(mergeKind(null, 'bool'), 'bool');
    assert.equal(mergeKind('bool', null), 'bool');
    assert.equal(mergeKind(null, null), null);
  });

  it('inferKinds: nulls first do not fix a type; null-only columns are left out; whole numbers then fractions give float', () => {
    const kinds = inferKinds([
      { id: 1, n: null, only_null: null, amount: 1, big: '18446744073709551615', doc: null, price: '10.50' },
      { id: 2, n: 'text now', amount: 2.5, doc: { a: [1] }, flag: false },
      { id: 3, n: 7, amount: 3 },
    ]);
    assert.deepEqual(Object.fromEntries(kinds), { id: 'int', n: 'text', amount: 'float', big: 'text', doc: 'json', price: 'text', flag: 'bool' });
    assert.equal(kinds.has('only_null'), false);
    assert.deepEqual([...inferKinds([])], []);
  });
});

/** A dialect with recognizable names, to see which one each DDL piece uses. */
const DIALECT: WarehouseDialect = {
  types: { int: 'INT8', float: 'FLOAT8', bool: 'BOOL', text: 'TXT', json: 'JSONB' },
  historyCols: [
    ['_op', 'TXT'],
    ['_position', 'TXT'],
    ['_index', 'INT4'],
    ['_fence', 'FENCE'],
    ['_ts_ms', 'INT8'],
    ['_before', 'JSONB'],
  ],
  text: 'KEYTXT',
  fence: 'FENCE',
  fenceAdded: "FENCE DEFAULT ''",
  isInteger: (t) => t === 'INT8',
};

describe('the DDL a table gets from the values it sees (TableCache)', () => {
  it('a mirror table: typed columns, NOT NULL keys, an untyped key as text, the fence column, the primary key', () => {
    const c = new TableCache('mirror', 'meta', DIALECT);
    assert.deepEqual(c.createDefs(new Map([['id', 'int'], ['v', 'json']]), ['id', 'k2']), ['"id" INT8 NOT NULL', '"v" JSONB', '"k2" KEYTXT NOT NULL', '"_tributary_fence" FENCE NOT NULL', 'PRIMARY KEY ("id", "k2")']);
    assert.equal(c.tombstones, '"meta"._tributary_tombstones');
    assert.equal(c.positions, '"meta"._tributary_positions');
  });

  it('a history table: the history columns first (the unique fence), then the row columns', () => {
    const c = new TableCache('history', 'meta', DIALECT);
    assert.deepEqual(c.createDefs(new Map([['id', 'int']]), []), [
      '"_op" TXT NOT NULL',
      '"_position" TXT NOT NULL',
      '"_index" INT4',
      '"_fence" FENCE NOT NULL UNIQUE',
      '"_ts_ms" INT8',
      '"_before" JSONB',
      '"id" INT8',
    ]);
  });

  it('alterActions: new columns are added, an integer column widens for a fraction, a missing fence column is added with a default', () => {
    const c = new TableCache('mirror', 'meta', DIALECT);
    const t = c.table('s', 'x');
    assert.equal(t.q, '"s"."x"');
    assert.equal(t.id, 's.x');
    assert.equal(c.table('s', 'x'), t, 'cached');
    t.cols = new Map([['id', 'INT8'], ['amount', 'INT8'], ['name', 'TXT']]);
    t.loaded = true;
    assert.deepEqual(c.alterActions(t, new Map([['id', 'int'], ['amount', 'float'], ['name', 'text'], ['new', 'bool']])), [
      `ADD COLUMN IF NOT EXISTS "_tributary_fence" FENCE DEFAULT ''`,
      'ALTER COLUMN "amount" TYPE FLOAT8',
      'ADD COLUMN IF NOT EXISTS "new" BOOL',
    ]);
    t.cols.set('_tributary_fence', 'FENCE');
    assert.deepEqual(c.alterActions(t, new Map([['id', 'int'], ['name', 'int']])), [], 'nothing to do; a kind that does not match is left to the database');
    c.reset();
    assert.notEqual(c.table('s', 'x'), t, 'reset() forgets every table');
  });

  it('tableFor renders the schema and table templates once per source table; reset() renders them again', () => {
    const c = new TableCache('mirror', 'meta', DIALECT);
    const e = ev('c', { after: { id: 1 }, table: 'src.items' });
    const t = c.tableFor(e, { table: 'copy_{table}' });
    assert.deepEqual([t.schema, t.name, t.q], ['src', 'copy_items', '"src"."copy_items"'], 'the schema defaults to the source schema');
    assert.equal(c.tableFor(e, { table: 'ignored once cached' }), t);
    c.reset();
    const again = c.tableFor(e, { schema: 'wh_{pipeline}', table: '{schema}_{table}' });
    assert.notEqual(again, t);
    assert.deepEqual([again.schema, again.name], ['wh_p', 'src_items']);
  });
});

describe('rows and statements', () => {
  it('bySignature groups rows by the columns they carry, and a row lacking a column never joins a group that writes it', () => {
    const rows: Array<Row | null> = [{ id: 1, a: 1 }, { id: 2, a: 2 }, { id: 3 }, { a: 4, id: 4 }, null, { id: 5, a: 5, skip: 1 }];
    const g = bySignature(rows, (r) => r, (c) => c !== 'skip');
    assert.deepEqual(
      g.map((x) => [x.cols, x.items.map((r) => (r ? r.id : null))]),
      [
        [['id', 'a'], [1, 2, 5]],
        [['id'], [3]],
        [['a', 'id'], [4]],
        [[], [null]],
      ],
    );
  });

  it('rowJson puts the extra members first, without rebuilding the row', () => {
    assert.equal(rowJson({ id: 1, v: 'x' }, { _f: 'F', _k: '1' }), '{"_f":"F","_k":"1","id":1,"v":"x"}');
    assert.equal(rowJson({}, { _f: 'F' }), '{"_f":"F"}');
    assert.equal(rowJson(null, { _f: 'F' }), '{"_f":"F"}');
  });

  it('chunks splits at most n per chunk, keeping order', () => {
    assert.deepEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
    const xs = [1, 2];
    assert.equal(chunks(xs, 2)[0], xs, 'a list that fits is not copied');
  });

  it('identifiers and string literals are quoted the standard SQL way, doubling the quote', () => {
    assert.equal(quoteIdent('plain'), '"plain"');
    assert.equal(quoteIdent('we"ird'), '"we""ird"');
    assert.equal(quoteLiteral("it's"), "'it''s'");
    assert.equal(quoteLiteral('back\\slash'), "'back\\slash'", 'a backslash is an ordinary character');
  });

  it('quoteBackslashLiteral escapes backslash and quote with a backslash (ClickHouse, SphinxQL)', () => {
    assert.equal(quoteBackslashLiteral("it's"), "'it\\'s'");
    assert.equal(quoteBackslashLiteral('a\\b'), "'a\\\\b'");
    assert.equal(quoteBackslashLiteral("\\'"), "'\\\\\\''", 'an escaped backslash cannot swallow the quote escape');
  });
});

describe('package exports', () => {
  it('a plugin imports these helpers as tributary/sdk/warehouse, and the keyed-sink rules from tributary/sdk', async () => {
    // A variable specifier: TypeScript would otherwise resolve it against a dist/ not built yet.
    const load = (spec: string) => import(spec) as Promise<Record<string, unknown>>;
    const pub = await load('tributary/sdk/warehouse');
    assert.equal(pub.planMirror, warehouse.planMirror, 'the same module as the built-in sinks use');
    assert.deepEqual(Object.keys(pub).sort(), Object.keys(warehouse).sort());
    const sdk = await load('tributary/sdk');
    for (const name of ['requireKey', 'requireAfter', 'fillUnchanged', 'settledWithin']) assert.equal(typeof sdk[name], 'function', name);
  });
});

describe('docs/sink-sdk.md', () => {
  it('the warehouse example is test/fixtures/warehouse-sink-example.ts (which the conformance kit runs), with the package imports', () => {
    const doc = readFileSync(join(REPO, 'docs', 'sink-sdk.md'), 'utf8');
    const at = doc.indexOf('### Example: a mirror in a Postgres-compatible database');
    assert.ok(at > 0, 'the example section is there');
    const block = /```ts\n([\s\S]*?)```/.exec(doc.slice(at))?.[1];
    const fixture = readFileSync(join(REPO, 'test', 'fixtures', 'warehouse-sink-example.ts'), 'utf8')
      .replace("'../../src/sdk/index.js'", "'tributary/sdk'")
      .replace("'../../src/sdk/warehouse/index.js'", "'tributary/sdk/warehouse'");
    assert.equal(block, fixture, 'copy test/fixtures/warehouse-sink-example.ts into the doc (imports from tributary/sdk and tributary/sdk/warehouse)');
  });
});
