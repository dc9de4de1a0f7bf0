/**
 * The clickhouse sink against a real clickhouse-server started for this file: the SDK
 * conformance kit, plus the mirror-specific behaviour (type inference, widening, TOAST fill,
 * truncate tombstones, fencing of an older event, poison classification).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { PoisonEventError, type SinkEvent, type SinkInstance } from '../../src/sdk/index.js';
import { describeSinkConformance, makeSinkEvent } from '../../src/testing/index.js';
import clickhouse from '../../sinks/clickhouse/index.js';
import { ClickHouseServer } from '../helpers/servers/clickhouse.js';

// Top-level await: the conformance kit needs the server's URL when the cases are declared.
const ch = await ClickHouseServer.start();
const DB = `conf_${process.pid}`;
after(() => ch[Symbol.asyncDispose]());

/** Rows of the mirror as the conformance kit wants them: after images keyed by JSON key. */
async function mirror(table: string): Promise<Map<string, Row>> {
  const rows = await ch.rows<Record<string, unknown>>(`SELECT * FROM ${DB}.${table} FINAL WHERE _deleted = 0 ORDER BY id`);
  const m = new Map<string, Row>();
  for (const r of rows) {
    const id = Number(r.id);
    m.set(JSON.stringify({ id }), { id, name: r.name as string, amount: r.amount as string, tags: JSON.parse(r.tags as string) });
  }
  return m;
}

describeSinkConformance({
  definition: clickhouse,
  module: new URL('../../sinks/clickhouse/index.js', import.meta.url),
  kind: 'keyed',
  config: { url: ch.url, database: DB },
  async reset() {
    await ch.query(`DROP TABLE IF EXISTS ${DB}.conformance`).catch(() => undefined);
    await ch.query(`DROP TABLE IF EXISTS ${DB}._tributary_positions`).catch(() => undefined);
  },
  readState: () => mirror('conformance'),
  // An event that can never be mirrored: an insert without an after image.
  poison: (base: ChangeEvent): ChangeEvent => ({ ...base, after: null }),
});

function ev(op: ChangeEvent['op'], table: string, key: Row | null, after: Row | null, extra: Partial<ChangeEvent['source']> = {}): ChangeEvent {
  return {
    op,
    before: null,
    after,
    key,
    source: { connector: 'postgresql', name: 'p', db: 'd', schema: 'public', table, ts_ms: 1, snapshot: 'false', ...extra },
    ts_ms: 1,
  };
}

async function sinkFor(): Promise<SinkInstance> {
  const s = await clickhouse.create(clickhouse.config.parse({ url: ch.url, database: DB }), {
    logger: pino({ level: 'silent' }),
    metrics: { inc() {}, set() {} },
    signal: new AbortController().signal,
    pipeline: 'p',
    sinkName: 'ch',
    stateDir: mkdtempSync(join(tmpdir(), 'trb-ch-')),
  });
  await s.open?.({ position: null, state: undefined });
  return s;
}
const w = (s: SinkInstance, evs: SinkEvent[], commit: string | null = null) => s.write(evs, { signal: new AbortController().signal, commit });

describe('clickhouse mirror behaviour', { concurrency: false }, () => {
  it('infers types, adds new columns and widens a column whose values stop fitting', async () => {
    const s = await sinkFor();
    try {
      await w(s, [makeSinkEvent(ev('c', 'types', { id: 1 }, { id: 1, n: 5, f: 1.5, s: 'x', j: { a: [1] }, b: true, z: null }), 1, 0)]);
      let cols = Object.fromEntries((await ch.rows<{ name: string; type: string }>(`SELECT name, type FROM system.columns WHERE database = '${DB}' AND table = 'types'`)).map((r) => [r.name, r.type]));
      assert.deepEqual(cols, { id: 'Int64', n: 'Nullable(Int64)', f: 'Nullable(Float64)', s: 'Nullable(String)', j: 'String', b: 'Nullable(UInt8)', z: 'Nullable(String)', _version: 'UInt64', _deleted: 'UInt8' });
      await w(s, [makeSinkEvent(ev('u', 'types', { id: 1 }, { id: 1, n: 2.25, f: 2, s: 'y', j: {}, b: false, z: null, added: 'new' }), 2, 0)]);
      cols = Object.fromEntries((await ch.rows<{ name: string; type: string }>(`SELECT name, type FROM system.columns WHERE database = '${DB}' AND table = 'types'`)).map((r) => [r.name, r.type]));
      assert.equal(cols.n, 'Nullable(Float64)', 'an Int64 column widens to Float64 when a fraction arrives');
      assert.equal(cols.added, 'Nullable(String)', 'a new column is added');
      const [row] = await ch.rows<Record<string, unknown>>(`SELECT * FROM ${DB}.types FINAL WHERE _deleted = 0`);
      assert.equal(row!.n, 2.25);
      assert.equal(row!.added, 'new');
      assert.equal(row!.j, '{}');
    } finally {
      await s.close();
    }
  });

  it('never lets an older event overwrite a newer row, and tombstones beat older inserts', async () => {
    const s = await sinkFor();
    try {
      const newer = makeSinkEvent(ev('u', 'fence', { id: 1 }, { id: 1, v: 'new' }), 10, 0);
      const older = makeSinkEvent(ev('c', 'fence', { id: 1 }, { id: 1, v: 'old' }), 5, 0);
      const del = makeSinkEvent(ev('d', 'fence', { id: 2 }, null), 10, 1);
      const oldIns = makeSinkEvent(ev('c', 'fence', { id: 2 }, { id: 2, v: 'zombie' }), 5, 1);
      await w(s, [newer, del]);
      await w(s, [older, oldIns]);
      const rows = await ch.rows<{ id: string; v: string }>(`SELECT id, v FROM ${DB}.fence FINAL WHERE _deleted = 0`);
      assert.deepEqual(rows, [{ id: '1', v: 'new' }]);
    } finally {
      await s.close();
    }
  });

  it('keeps unchanged TOAST columns from the mirror and from earlier events of the batch', async () => {
    const s = await sinkFor();
    try {
      await w(s, [makeSinkEvent(ev('c', 'toast', { id: 1 }, { id: 1, big: 'B1', n: 1 }), 1, 0), makeSinkEvent(ev('c', 'toast', { id: 2 }, { id: 2, big: 'B2', n: 1 }), 1, 1)]);
      await w(s, [
        makeSinkEvent(ev('u', 'toast', { id: 1 }, { id: 1, n: 2 }, { unchanged: ['big'] }), 2, 0),
        makeSinkEvent(ev('u', 'toast', { id: 2 }, { id: 2, big: 'B2b', n: 2 }), 2, 1),
        makeSinkEvent(ev('u', 'toast', { id: 2 }, { id: 2, n: 3 }, { unchanged: ['big'] }), 2, 2),
      ]);
      const rows = await ch.rows<{ id: string; big: string; n: string }>(`SELECT id, big, n FROM ${DB}.toast FINAL WHERE _deleted = 0 ORDER BY id`);
      assert.deepEqual(rows, [
        { id: '1', big: 'B1', n: '2' },
        { id: '2', big: 'B2b', n: '3' },
      ]);
    } finally {
      await s.close();
    }
  });

  it('a truncate tombstones older rows but not rows written after it', async () => {
    const s = await sinkFor();
    try {
      await w(s, [makeSinkEvent(ev('c', 'trunc', { id: 1 }, { id: 1 }), 1, 0), makeSinkEvent(ev('c', 'trunc', { id: 2 }, { id: 2 }), 1, 1)]);
      await w(s, [makeSinkEvent(ev('t', 'trunc', null, null), 2, 0), makeSinkEvent(ev('c', 'trunc', { id: 3 }, { id: 3 }), 3, 0)]);
      // Replaying the truncate must not remove row 3, which came later.
      await w(s, [makeSinkEvent(ev('t', 'trunc', null, null), 2, 0)]);
      const rows = await ch.rows<{ id: string }>(`SELECT id FROM ${DB}.trunc FINAL WHERE _deleted = 0 ORDER BY id`);
      assert.deepEqual(rows, [{ id: '3' }]);
    } finally {
      await s.close();
    }
  });

  it('a key value that cannot fit the key column is a PoisonEventError; the rest still lands', async () => {
    const s = await sinkFor();
    try {
      await w(s, [makeSinkEvent(ev('c', 'poison', { id: 1 }, { id: 1 }), 1, 0)]);
      const bad = makeSinkEvent(ev('c', 'poison', { id: 'abc' }, { id: 'abc' }), 2, 0);
      await assert.rejects(() => w(s, [bad]), (err: unknown) => err instanceof PoisonEventError && /key column id/.test(err.message));
      await w(s, [makeSinkEvent(ev('c', 'poison', { id: 2 }, { id: 2 }), 3, 0)], '3');
      const rows = await ch.rows<{ id: string }>(`SELECT id FROM ${DB}.poison FINAL WHERE _deleted = 0 ORDER BY id`);
      assert.deepEqual(rows, [{ id: '1' }, { id: '2' }]);
    } finally {
      await s.close();
    }
  });

  it('open() returns the committed position it stored in ClickHouse', async () => {
    const s = await sinkFor();
    await w(s, [makeSinkEvent(ev('c', 'pos', { id: 1 }, { id: 1 }), 7, 0)], '7');
    await s.close();
    const s2 = await clickhouse.create(clickhouse.config.parse({ url: ch.url, database: DB }), {
      logger: pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'p',
      sinkName: 'ch',
      stateDir: tmpdir(),
    });
    try {
      assert.deepEqual(await s2.open?.({ position: null, state: undefined }), { position: '7' });
    } finally {
      await s2.close();
    }
  });

  it('an unreachable server is a retryable error, not a poison one', async () => {
    const s = await clickhouse.create(clickhouse.config.parse({ url: 'http://127.0.0.1:1', database: DB, timeout_ms: 2000 }), {
      logger: pino({ level: 'silent' }),
      metrics: { inc() {}, set() {} },
      signal: new AbortController().signal,
      pipeline: 'p',
      sinkName: 'ch',
      stateDir: tmpdir(),
    });
    await assert.rejects(
      () => w(s, [makeSinkEvent(ev('c', 'x', { id: 1 }, { id: 1 }), 1, 0)]),
      (err: unknown) => !(err instanceof PoisonEventError) && (err as { retryable?: boolean }).retryable === true,
    );
    await s.close();
  });
});

describe('clickhouse TabSeparated bodies', { concurrency: false }, () => {
  it('round-trips every character and JSON kind, with upserts and tombstones in one batch', async () => {
    const s = await sinkFor();
    try {
      const notes = ['tab\there', 'new\nline\r\nend', 'back\\slash \\N', '\\N', 'nul\u0000byte', 'ünïcode 😀 "quoted" \'single\'', ''];
      await w(s, [
        makeSinkEvent(ev('c', 'tsv', { id: 1 }, { id: 1, note: 'first', j: { a: 1 }, b: true, f: 1.5 }), 1, 0),
        ...notes.map((note, i) => makeSinkEvent(ev('c', 'tsv', { id: i + 2 }, { id: i + 2, note, j: { s: note, n: [1, null] }, b: i % 2 === 0, f: i }), 1, i + 1)),
      ]);
      // One batch: a delete, an update with a null in the (not Nullable) JSON column, a number into the String column.
      await w(s, [makeSinkEvent(ev('d', 'tsv', { id: 1 }, null), 2, 0), makeSinkEvent(ev('u', 'tsv', { id: 2 }, { id: 2, note: 7, j: null, b: null, f: null }), 2, 1)]);
      const rows = await ch.rows<{ id: string; note: string | null; j: string; b: number | null; f: number | null }>(`SELECT id, note, j, b, f FROM ${DB}.tsv FINAL WHERE _deleted = 0 ORDER BY id`);
      assert.deepEqual(rows[0], { id: '2', note: '7', j: '', b: null, f: null });
      assert.deepEqual(
        rows.slice(1).map((r) => [r.id, r.note, JSON.parse(r.j), r.b, r.f]),
        notes.slice(1).map((note, i) => [String(i + 3), note, { s: note, n: [1, null] }, (i + 1) % 2 === 0 ? 1 : 0, i + 1]),
      );
      const [del] = await ch.rows<{ c: string }>(`SELECT count() AS c FROM ${DB}.tsv FINAL WHERE id = 1 AND _deleted = 1`);
      assert.equal(del!.c, '1', 'the delete is a tombstone row');
    } finally {
      await s.close();
    }
  });
});
