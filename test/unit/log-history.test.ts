import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SegmentLog } from '../../src/log/segment-log.js';
import { keyRangeOf } from '../../src/log/json-scan.js';
import { TimeTravel } from '../../src/log/time-travel.js';
import { Compactor } from '../../src/log/compaction.js';
import type { DecodedEvent } from '../../src/log/format.js';
import { TempDir } from '../helpers/context.js';

type Row = Record<string, unknown>;
type Change = { op: 'c' | 'u' | 'd' | 't'; table: string; key: Row | null; after: Row | null; unchanged?: string[] };

/** A tiny random workload and a model of each table's rows after every transaction. */
class Workload {
  private seed: number;
  readonly model = new Map<string, Map<string, Row>>();
  /** Per commit time: the model's rows then, per table (JSON of sorted rows). */
  readonly snapshots: { ts: number; tables: Map<string, string[]> }[] = [];
  private txnNo = 0;

  constructor(
    private readonly log: SegmentLog,
    seed: number,
  ) {
    this.seed = seed;
  }

  rand(n: number): number {
    this.seed = (Math.imul(this.seed, 1103515245) + 12345) >>> 0;
    return this.seed % n;
  }

  commit(changes: Change[], ts: number): void {
    const txn = `0/${(0x100 + this.txnNo++ * 16).toString(16).toUpperCase()}`;
    changes.forEach((c, i) => {
      const key = Buffer.from(c.key ? JSON.stringify(c.key) : 'null');
      const source = `{"table":"${c.table}"${c.unchanged ? `,"unchanged":${JSON.stringify(c.unchanged)}` : ''}}`;
      // A number no double holds, written as the source would: it must come back exact.
      const after = c.after ? JSON.stringify(c.after).replace('"BIGNUM"', '12345678901234567890') : 'null';
      const env = Buffer.from(`{"op":"${c.op}","before":null,"after":${after},"key":${key.toString()},"source":${source},"ts_ms":${ts}}`);
      this.log.appendEvent(txn, i, c.table, ts, env[7]!, env, ...keyRangeOf(env, 0, env.length), 0, env.length);
      const rows = this.model.get(c.table) ?? new Map<string, Row>();
      this.model.set(c.table, rows);
      if (c.op === 't') rows.clear();
      else if (c.op === 'd') rows.delete(JSON.stringify(c.key));
      else {
        const prev = rows.get(JSON.stringify(c.key));
        const row = { ...c.after! };
        for (const col of c.unchanged ?? []) row[col] = prev![col];
        rows.set(JSON.stringify(c.key), row);
      }
    });
    this.log.appendCommit(txn, ts, txn + '+');
    const tables = new Map<string, string[]>();
    for (const [t, rows] of this.model) tables.set(t, [...rows.values()].map(canonical).sort());
    this.snapshots.push({ ts, tables });
  }

  /** Random transactions on tables a (key id) and b (key org, id), with updates, deletes, a truncate and unchanged TOAST. */
  run(txns: number, t0: number): void {
    for (let n = 0; n < txns; n++) {
      const changes: Change[] = [];
      const k = 1 + this.rand(4);
      for (let j = 0; j < k; j++) {
        const r = this.rand(100);
        if (r < 50) {
          const id = this.rand(60);
          const exists = this.model.get('s.a')?.has(JSON.stringify({ id }));
          if (r < 8 && exists) changes.push({ op: 'u', table: 's.a', key: { id }, after: { id, n: n * 10 + j }, unchanged: ['doc'] });
          else changes.push({ op: exists ? 'u' : 'c', table: 's.a', key: { id }, after: { id, n: n * 10 + j, doc: `doc-${n}-${j}`, big: 'BIGNUM' } });
        } else if (r < 70) {
          changes.push({ op: 'd', table: 's.a', key: { id: this.rand(60) }, after: null });
        } else if (r < 98) {
          const org = `o${this.rand(3)}`;
          const id = this.rand(20);
          changes.push({ op: 'c', table: 's.b', key: { org, id }, after: { org, id, v: n } });
        } else {
          changes.push({ op: 't', table: 's.b', key: null, after: null });
        }
      }
      this.commit(changes, t0 + n * 10);
    }
  }
}

function canonical(row: Row): string {
  return JSON.stringify(Object.fromEntries(Object.entries(row).sort(([a], [b]) => a.localeCompare(b))));
}

/** Rows (JSON bytes, numbers exact) to canonical text for comparing with the model. */
function rowsOf(bufs: Buffer[]): string[] {
  return bufs.map((b) => canonical(JSON.parse(b.toString('utf8').replace(/12345678901234567890/g, '"BIGNUM"')) as Row)).sort();
}

function modelRows(rows: string[] | undefined): string[] {
  return [...(rows ?? [])].sort();
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe('log history: time travel and compaction', () => {
  it('state at T equals the model at many instants, per key and per table, across segments', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { segmentBytes: 8 << 10 });
    const w = new Workload(log, 7);
    w.run(400, 1_000_000);
    await log.flush();
    assert.ok(log.segmentList.length > 5);
    const tt = new TimeTravel(log, null);
    for (const i of [0, 1, 57, 133, 200, 271, 399]) {
      const snap = w.snapshots[i]!;
      const cut = await tt.cutAt(snap.ts);
      for (const table of ['s.a', 's.b']) {
        const got = rowsOf(await collect(tt.tableAt(table, cut)));
        assert.deepEqual(got, modelRows(snap.tables.get(table)), `${table} at txn ${i}`);
      }
      // One key at a time agrees too (present and absent keys), big numbers kept exact.
      for (let id = 0; id < 60; id += 7) {
        const row = await tt.rowAt('s.a', Buffer.from(`{"id":${id}}`), cut);
        const want = modelRows(snap.tables.get('s.a')).find((r) => JSON.parse(r).id === id);
        assert.equal(row ? rowsOf([row])[0] : undefined, want, `s.a id ${id} at txn ${i}`);
        if (row && /"big"/.test(row.toString())) assert.match(row.toString(), /"big":12345678901234567890/);
      }
      // A composite key given in another column order.
      const b = await tt.rowAt('s.b', Buffer.from('{"id":3,"org":"o1"}'), cut);
      const wantB = modelRows(snap.tables.get('s.b')).find((r) => r.includes('"id":3,') && r.includes('"org":"o1"'));
      assert.equal(b ? rowsOf([b])[0] : undefined, wantB);
    }
    await assert.rejects(tt.cutAt(999_999), (e: Error & { code?: string }) => e.code === 'TRB5003');
    await log.close();
  });

  it('compaction keeps the latest row per key beyond retention; state after the horizon stays exact', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { segmentBytes: 8 << 10 });
    const w = new Workload(log, 11);
    w.run(300, 2_000_000);
    await log.flush();
    const compactor = new Compactor(dir.path, { tombstonesMs: 10 });
    await compactor.load();
    // Remove about half the segments, folding them first.
    const cutTs = 2_000_000 + 150 * 10;
    const removed = await log.retain({ now: cutTs + 1, maxAgeMs: 1, keepFrom: Infinity, before: async (segs) => void (await compactor.fold(log, segs, cutTs + 1)) });
    assert.ok(removed.length > 2, `removed ${removed.length}`);
    const state = compactor.state!;
    assert.equal(state.horizon, log.start);
    const tt = new TimeTravel(log, state);
    await assert.rejects(tt.cutAt(2_000_000 + 10), (e: Error & { code?: string }) => e.code === 'TRB5003');
    const firstExact = w.snapshots.findIndex((s) => s.ts >= state.horizonTs);
    for (const i of [firstExact, firstExact + 13, 250, 299]) {
      const snap = w.snapshots[i]!;
      const cut = await tt.cutAt(snap.ts);
      for (const table of ['s.a', 's.b']) assert.deepEqual(rowsOf(await collect(tt.tableAt(table, cut))), modelRows(snap.tables.get(table)), `${table} at txn ${i}`);
    }
    // The compacted generation holds one record per live key, as r events (tombstones expired).
    const seen = new Set<string>();
    for (let at = 0; ; ) {
      const r = await state.log.read(at, 500, 1 << 20);
      if (!r.records.length) break;
      for (const rec of r.records) {
        if (rec.kind !== 'event') continue;
        const e = rec as DecodedEvent;
        const env = e.buf.toString('utf8', e.envStart, e.envEnd);
        assert.match(env, /^\{"op":"r","before":null,"after":\{/);
        const k = `${e.table}|${e.buf.toString('utf8', e.keyStart, e.keyEnd)}`;
        assert.ok(!seen.has(k), `key ${k} twice`);
        seen.add(k);
      }
      at = r.next;
    }
    // A second fold on top of the first gives the same answers.
    await log.retain({ now: 9e15, maxAgeMs: 1, keepFrom: Infinity, before: async (segs) => void (await compactor.fold(log, segs, 9e15)) });
    const tt2 = new TimeTravel(log, compactor.state);
    const last = w.snapshots[299]!;
    const cut = await tt2.cutAt(last.ts);
    for (const table of ['s.a', 's.b']) assert.deepEqual(rowsOf(await collect(tt2.tableAt(table, cut))), modelRows(last.tables.get(table)));
    // Reloaded from disk, the pointer finds the generation in force.
    const again = new Compactor(dir.path, { tombstonesMs: 10 });
    assert.equal((await again.load())?.gen, 2);
    await again.close();
    await compactor.close();
    await log.close();
  });

  it('one key among a million events answers in well under a second', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { segmentBytes: 32 << 20 });
    const envs = Array.from({ length: 50_000 }, (_, i) => Buffer.from(`{"op":"u","before":null,"after":{"id":${i},"v":"${'z'.repeat(100)}"},"key":{"id":${i}},"source":{},"ts_ms":0}`));
    const keyAt = envs.map((e) => keyRangeOf(e, 0, e.length));
    let ts = 1;
    for (let t = 0; t < 100_000; t++) {
      const txn = `0/${(t * 16 + 16).toString(16)}`;
      for (let i = 0; i < 10; i++) {
        const n = (t * 10 + i) % envs.length;
        const env = envs[n]!;
        log.appendEvent(txn, i, 's.t', ts, 0x75, env, keyAt[n]![0], keyAt[n]![1], 0, env.length);
      }
      if (!log.appendCommit(txn, ts++, txn)) await log.drained();
    }
    await log.flush();
    const tt = new TimeTravel(log, null);
    const t0 = performance.now();
    const cut = await tt.cutAt(50_000);
    const row = await tt.rowAt('s.t', Buffer.from('{"id":4242}'), cut);
    const ms = performance.now() - t0;
    assert.ok(row);
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    console.log(`# one key over ${log.durableEnd} records in ${log.segmentList.length} segments: ${ms.toFixed(1)} ms`);
    await log.close();
  });
});
