import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecentTransactions, visibleIn, xidPrecedes, type TxnSnapshot } from '../../src/snapshot/visibility.js';
import { parsePgSnapshot } from '../../connectors/postgres/snapshot.js';

const snap = (xmin: number, xmax: number, ...xip: number[]): TxnSnapshot => ({ xmin, xmax, xip });

describe('transaction visibility of snapshots', () => {
  it('compares xids modulo 2^32 and decides visibility from xmin, xmax and xip', () => {
    assert.ok(xidPrecedes(5, 6));
    assert.ok(!xidPrecedes(6, 5));
    assert.ok(xidPrecedes(0xfffffff0, 3), 'across wraparound');
    const s = snap(100, 110, 103, 107);
    assert.ok(visibleIn(s, 99), 'below xmin');
    assert.ok(visibleIn(s, 104), 'between, not in progress');
    assert.ok(!visibleIn(s, 103), 'in progress');
    assert.ok(!visibleIn(s, 110), 'at xmax');
    assert.ok(!visibleIn(s, 200), 'above xmax');
  });

  it("parses pg_current_snapshot() text into the 32-bit xids of pgoutput's Begin", () => {
    assert.deepEqual(parsePgSnapshot('739:745:739,741'), snap(739, 745, 739, 741));
    assert.deepEqual(parsePgSnapshot('745:745:'), snap(745, 745));
    // Epoch 1: the low 32 bits.
    assert.deepEqual(parsePgSnapshot('4294967300:4294967310:4294967305'), snap(4, 14, 9));
  });
});

describe('remembered transactions around chunk windows', () => {
  it('a change before the low watermark that the read did not see wins over the chunk row', () => {
    const r = new RecentTransactions();
    r.note(500, 'public.t', 'k1', null);
    r.note(500, 'public.t', 'k3', 'k2');
    r.note(501, 'public.other', 'x', null);
    r.note(499, 'public.t', 'k0', null);
    // The low watermark's snapshot still shows 500 running (its commit record is written, it
    // has not left the ProcArray); 499 and 501 have finished.
    r.prune(snap(500, 502, 500));
    assert.equal(r.size, 3, 'only the keys of the transaction still in flight are kept');
    const c = r.capture('public.t');
    assert.deepEqual(c.txns.map((t) => t.xid), [500]);
    // The chunk's read did not see 500 either: its keys are dirty.
    assert.deepEqual(RecentTransactions.resolve(c, snap(500, 503, 500)), { keys: ['k1', 'k3', 'k2'], truncate: false, reread: false });
    // A read that saw it needs nothing.
    assert.deepEqual(RecentTransactions.resolve(c, snap(502, 503)), { keys: [], truncate: false, reread: false });
    r.prune(snap(502, 503));
    assert.ok(r.empty, 'forgotten once a snapshot saw it');
  });

  it('a truncate the read did not see makes the whole chunk stale', () => {
    const r = new RecentTransactions();
    r.note(700, 'public.t', null, null, true);
    const c = r.capture('public.t');
    assert.deepEqual(RecentTransactions.resolve(c, snap(690, 701, 700)), { keys: [], truncate: true, reread: false });
  });

  it("the capture is the window's own: later pruning does not shrink it", () => {
    const r = new RecentTransactions();
    r.note(10, 'public.t', 'a', null);
    const c = r.capture('public.t');
    r.prune(snap(11, 11));
    assert.ok(r.empty);
    assert.deepEqual(RecentTransactions.resolve(c, snap(10, 11, 10)).keys, ['a']);
  });

  it('past the cap keeps only the xid range; a read that did not see part of it must read again', () => {
    const r = new RecentTransactions(10);
    for (let x = 1000; x < 1010; x++) r.note(x, 'public.t', `k${x}`, null);
    assert.equal(r.size, 10);
    r.note(1010, 'public.t', 'k1010', null);
    assert.ok(r.size <= 5, `evicted down to half the cap (${r.size})`);
    const c = r.capture('public.t');
    assert.ok(c.lost && c.lost.lo === 1000 && c.lost.hi >= 1005, JSON.stringify(c.lost));
    assert.equal(RecentTransactions.resolve(c, snap(1003, 1020, 1003)).reread, true, 'an evicted xid in progress');
    assert.equal(RecentTransactions.resolve(c, snap(1004, 1020, 1015)).reread, false, 'every evicted xid seen');
    assert.equal(RecentTransactions.resolve(c, snap(900, 1002)).reread, true, 'evicted xids at or above xmax');
    // A long transaction below the range does not hold it.
    r.prune(snap(50, 1020, 50));
    assert.equal(r.capture('public.t').lost, null, 'the range is forgotten once a snapshot saw all of it');
  });

  it('one transaction larger than the cap is dropped whole and its later changes are not kept', () => {
    const r = new RecentTransactions(100);
    for (let i = 0; i < 1000; i++) r.note(42, 'public.t', `k${i}`, null);
    assert.ok(r.size <= 100, `bounded (${r.size})`);
    const c = r.capture('public.t');
    assert.deepEqual(c.lost, { lo: 42, hi: 42 });
    assert.equal(RecentTransactions.resolve(c, snap(42, 43, 42)).reread, true);
    assert.equal(RecentTransactions.resolve(c, snap(43, 44)).reread, false);
  });
});

describe('snapshot failures', () => {
  it('a step fails until it succeeds once; delays grow until the snapshot is healthy again', async () => {
    const { SnapshotFailures } = await import('../../src/snapshot/failures.js');
    const { TributaryError, ErrorCodes } = await import('../../src/core/errors.js');
    const f = new SnapshotFailures(1000, 60_000);
    const denied = new TributaryError(ErrorCodes.SNAPSHOT_PRIVILEGE, 'cannot read public.t');
    const a = f.fail('read public.t', denied);
    assert.equal(a.first, true, 'the first failure is worth an error log');
    assert.ok(a.delayMs >= 500 && a.delayMs <= 1000, String(a.delayMs));
    const b = f.fail('read public.t', denied);
    assert.equal(b.first, false, 'the same error again is not');
    assert.ok(b.delayMs >= 1000 && b.delayMs <= 2000, String(b.delayMs));
    f.fail('plan public.u', denied);
    assert.equal(f.succeed('plan public.t'), false, 'a step that was not failing changes nothing');
    assert.equal(f.succeed('read public.t'), false, 'another step still fails');
    assert.equal(f.current?.message, 'cannot read public.t');
    assert.equal(f.succeed('plan public.u'), true, 'the last failing step succeeded: healthy');
    assert.equal(f.current, null);
    assert.ok(f.fail('read public.t', denied).delayMs <= 1000, 'the backoff starts over');
  });
});
