import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb } from '../helpers/context.js';
import { InProcessPipeline } from '../helpers/pipeline.js';

const src = (url: string, tables: string) => `type: postgres\nurl: ${url}\ntables: [${tables}]\nsnapshot: never\nheartbeat_ms: 0`;

describe('postgres: inserts, updates, deletes, truncates', { concurrency: false }, () => {
  it('REPLICA IDENTITY FULL: before is the whole old row', async () => {
    await using db = await PgTestDb.create('full');
    await db.query('CREATE TABLE o (id int PRIMARY KEY, status text, amount numeric(8,2)); ALTER TABLE o REPLICA IDENTITY FULL');
    await using p = await InProcessPipeline.start({ name: 'full', source: src(db.url, 'public.o') });
    await db.query("INSERT INTO o VALUES (7, 'placed', 12.30)");
    await db.query("UPDATE o SET status = 'paid' WHERE id = 7");
    await db.query('UPDATE o SET id = 8 WHERE id = 7');
    await db.query('DELETE FROM o WHERE id = 8');
    const evs = await p.waitForEvents(4);
    assert.deepEqual(
      evs.map((e) => [e.op, e.before, e.after, e.key]),
      [
        ['c', null, { id: 7, status: 'placed', amount: '12.30' }, { id: 7 }],
        ['u', { id: 7, status: 'placed', amount: '12.30' }, { id: 7, status: 'paid', amount: '12.30' }, { id: 7 }],
        ['u', { id: 7, status: 'paid', amount: '12.30' }, { id: 8, status: 'paid', amount: '12.30' }, { id: 8 }],
        ['d', { id: 8, status: 'paid', amount: '12.30' }, null, { id: 8 }],
      ],
    );
    // One transaction per statement: each has its own txId, in commit order.
    const tx = evs.map((e) => e.source.txId!);
    assert.deepEqual([...tx].sort((a, b) => a - b), tx);
  });

  it('REPLICA IDENTITY DEFAULT: before holds the key only', async () => {
    await using db = await PgTestDb.create('dflt');
    await db.query('CREATE TABLE o (id int PRIMARY KEY, status text)');
    await using p = await InProcessPipeline.start({ name: 'dflt', source: src(db.url, 'public.o') });
    await db.query("INSERT INTO o VALUES (1, 'a')");
    await db.query("UPDATE o SET status = 'b' WHERE id = 1");
    await db.query('UPDATE o SET id = 2 WHERE id = 1');
    await db.query('DELETE FROM o WHERE id = 2');
    const evs = await p.waitForEvents(4);
    assert.deepEqual(
      evs.map((e) => [e.op, e.before, e.after]),
      [
        ['c', null, { id: 1, status: 'a' }],
        ['u', { id: 1 }, { id: 1, status: 'b' }],
        ['u', { id: 1 }, { id: 2, status: 'b' }],
        ['d', { id: 2 }, null],
      ],
    );
  });

  it('TRUNCATE is delivered, and a multi-statement transaction keeps its order', async () => {
    await using db = await PgTestDb.create('trunc');
    await db.query('CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)');
    await using p = await InProcessPipeline.start({ name: 'trunc', source: src(db.url, 'public.*') });
    await db.query('BEGIN; INSERT INTO a VALUES (1); INSERT INTO b VALUES (1); INSERT INTO a VALUES (2); COMMIT');
    await db.query('TRUNCATE a, b');
    const evs = await p.waitForEvents(5);
    assert.deepEqual(
      evs.map((e) => [e.op, e.source.table, e.after]),
      [
        ['c', 'a', { id: 1 }],
        ['c', 'b', { id: 1 }],
        ['c', 'a', { id: 2 }],
        ['t', 'a', null],
        ['t', 'b', null],
      ],
    );
    assert.equal(new Set(evs.slice(0, 3).map((e) => e.source.txId)).size, 1, 'one transaction');
  });

  it('unchanged TOAST: filled from the old row with FULL, never a placeholder without it', async () => {
    await using db = await PgTestDb.create('toast');
    await db.query('CREATE TABLE full_t (id int PRIMARY KEY, big text, n int); ALTER TABLE full_t REPLICA IDENTITY FULL');
    await db.query('CREATE TABLE dflt_t (id int PRIMARY KEY, big text, n int)');
    // Random text does not compress, so it is stored out of line (TOASTed).
    const big = Array.from({ length: 40000 }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join('');
    await using p = await InProcessPipeline.start({ name: 'toast', source: src(db.url, 'public.full_t, public.dflt_t') });
    await db.query('INSERT INTO full_t VALUES (1, $1, 0)', [big]);
    await db.query('INSERT INTO dflt_t VALUES (1, $1, 0)', [big]);
    await db.query('UPDATE full_t SET n = 1');
    await db.query('UPDATE dflt_t SET n = 1');
    const evs = await p.waitForEvents(4);
    const fullUpd = evs[2]!;
    assert.equal(fullUpd.source.table, 'full_t');
    assert.equal(fullUpd.after!.big, big, 'FULL: the TOAST value is filled from the old row');
    assert.equal(fullUpd.source.unchanged, undefined);
    const dfltUpd = evs[3]!;
    assert.equal(dfltUpd.source.table, 'dflt_t');
    assert.equal('big' in dfltUpd.after!, false, 'DEFAULT: the unknown TOAST value is left out of after');
    assert.deepEqual(dfltUpd.source.unchanged, ['big']);
    assert.equal(dfltUpd.after!.n, 1);
  });
});
