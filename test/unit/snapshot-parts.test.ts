import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { PgPosition } from '../../connectors/postgres/position.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { StateStore } from '../../src/state/store.js';
import { control, type Controlled } from '../../src/snapshot/control.js';
import { ChunkLedger } from '../../src/snapshot/ledger.js';
import { ProgressStore } from '../../src/snapshot/progress-store.js';
import type { SnapshotState, SnapshotTable } from '../../src/snapshot/types.js';

const T: SnapshotTable = { name: 'public.t', key: ['id'], keyKind: 'pk', estimate: null };
const quiet = pino({ level: 'silent' });

/** A snapshot of one table with `n` chunks, the first `done` of them done. */
function state(n: number, done = 0, id = 's1'): SnapshotState {
  const chunks = Array.from({ length: n }, (_, i) => ({ lo: i ? [i] : null, hi: i < n - 1 ? [i + 1] : null }));
  return { id, kind: 'initial', status: 'running', startedAt: 0, tables: [{ table: T, where: null, chunks, done: chunks.map((_, i) => i < done), rows: 0 }] };
}

describe('snapshot chunk ledger', () => {
  it('a chunk is free unless done, being read, or emitted and waiting for the sinks', () => {
    const s = state(4, 1);
    const l = new ChunkLedger();
    assert.deepEqual(l.nextFree(s), { ti: 0, ci: 1 });
    const release = l.take(s, 0, 1);
    l.emit({ snapshot: s.id, ti: 0, ci: 2, rows: 5, txn: new PgPosition(200n) });
    assert.equal(l.atStake, 2);
    assert.deepEqual(l.nextFree(s), { ti: 0, ci: 3 });
    assert.equal(l.freeCount(s), 1);
    release();
    assert.equal(l.freeCount(s), 2);
    assert.equal(l.hasUnread(s), true, 'chunk 2 is not done yet');
  });

  it('durable hands back the chunks the sinks hold, keeps later ones, and drops another snapshot’s', () => {
    const s = state(3);
    const l = new ChunkLedger();
    l.emit({ snapshot: 'old', ti: 0, ci: 0, rows: 1, txn: new PgPosition(50n) });
    l.emit({ snapshot: s.id, ti: 0, ci: 0, rows: 1, txn: new PgPosition(100n) });
    l.emit({ snapshot: s.id, ti: 0, ci: 1, rows: 1, txn: new PgPosition(300n) });
    assert.deepEqual(l.durable(s, new PgPosition(100n)).map((e) => e.ci), [0]);
    assert.equal(l.atStake, 1, 'the later chunk waits; the other snapshot’s is forgotten');
    assert.deepEqual(l.durable(s, new PgPosition(300n)).map((e) => e.ci), [1]);
    assert.equal(l.waiting, false);
  });
});

describe('snapshot progress store', () => {
  it('writes coalesce: requests during a write share the next one, which carries the latest state', async () => {
    const puts: unknown[] = [];
    let release!: () => void;
    let gate = new Promise<void>((r) => (release = r));
    const store = {
      get: async () => undefined,
      put: async (_p: string, _k: string, v: unknown) => {
        puts.push(v);
        await gate;
      },
    } as unknown as StateStore;
    let s = state(2);
    let stored = 0;
    const ps = new ProgressStore({ store, pipeline: 'p', logger: quiet, current: () => s, onStored: () => stored++ });
    const first = ps.save();
    await new Promise((r) => setImmediate(r));
    assert.equal(puts.length, 1, 'the first write started');
    ps.chunkDone();
    s.tables[0]!.done[0] = true;
    const second = ps.save();
    s = state(2, 2, 's2');
    assert.equal(ps.save(), second, 'a third request shares the queued write');
    assert.equal(ps.unpersisted, 1);
    release();
    gate = Promise.resolve();
    await first;
    await second;
    assert.equal(puts.length, 2, 'two writes for three requests');
    assert.equal((puts[1] as SnapshotState).id, 's2', 'the queued write copied the state when it started');
    assert.equal(ps.unpersisted, 0, 'the done flag is stored');
    assert.equal(stored, 2);
  });
});

describe('snapshot control rules', () => {
  function controlled(s: SnapshotState | null, begin?: () => Promise<SnapshotState>): Controlled & { changes: string[] } {
    const changes: string[] = [];
    let cur = s;
    return {
      changes,
      current: () => cur,
      begin: async () => (cur = await (begin ?? (async () => state(1, 0, 'new')))()),
      changed: async (st, a) => void changes.push(`${a}:${st.status}`),
    };
  }

  it('one snapshot at a time; pause, resume and cancel need a live one', async () => {
    assert.equal((await control(controlled(state(1)), 'start', null, null)).status, 409);
    const fresh = controlled(null);
    const started = await control(fresh, 'start', 'public.t', null);
    assert.equal(started.status, 202);
    assert.equal((started.body as { started: string }).started, 'new');
    assert.equal((await control(controlled(null), 'pause', null, null)).status, 404);
    const done = state(1, 1);
    done.status = 'done';
    assert.equal((await control(controlled(done), 'cancel', null, null)).status, 404);
    assert.equal((await control(controlled(done), 'start', null, null)).status, 202, 'a done snapshot does not block a new one');
  });

  it('pause, resume and cancel set the status, clear a failure, and are applied once', async () => {
    const s = state(1);
    s.status = 'failed';
    s.error = { code: 'TRB4010', message: 'denied', since: 1 };
    const c = controlled(s);
    assert.equal((await control(c, 'pause', null, null)).status, 200);
    assert.equal(s.status, 'paused');
    assert.equal(s.error, undefined);
    await control(c, 'resume', null, null);
    await control(c, 'cancel', null, null);
    assert.deepEqual(c.changes, ['pause:paused', 'resume:running', 'cancel:cancelled']);
  });

  it('a refused start answers 400 with the code and the fix', async () => {
    const c = controlled(null, async () => {
      throw new TributaryError(ErrorCodes.SNAPSHOT_PRIVILEGE, 'cannot read public.t', { fix: 'GRANT SELECT' });
    });
    const r = await control(c, 'start', 'public.t', 'id > 1');
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, { error: 'TRB4010 cannot read public.t', code: 'TRB4010', fix: 'GRANT SELECT' });
  });
});
