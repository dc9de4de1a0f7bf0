import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LagHistory, samplesFromStatus, type LagSample } from '../../src/runtime/lag-history.js';

describe('lag history (the console charts, GET /history)', () => {
  it('keeps the last window of samples per sink, oldest first, and turns the written counter into events/s', () => {
    let now = 1_000_000;
    let samples: LagSample[] = [];
    const h = new LagHistory({ intervalMs: 1000, windowMs: 5000, sample: () => samples, now: () => now });
    for (let i = 0; i < 8; i++) {
      samples = [
        { pipeline: 'p', sink: 'a', lagEvents: i * 10, lagBytes: i * 100, lagSeconds: i / 2, eventsOut: i * 50 },
        { pipeline: 'p', sink: 'b', lagEvents: 0, lagBytes: null, lagSeconds: 0, eventsOut: 0 },
      ];
      h.tick();
      now += 1000;
    }
    const body = h.body();
    assert.equal(body.interval_ms, 1000);
    const a = body.series.find((s) => s.sink === 'a')!;
    assert.equal(a.points.length, 5, 'an hour is the window; here 5 s at 1 s');
    assert.deepEqual(a.points.map((p) => p[1]), [30, 40, 50, 60, 70], 'the oldest points were overwritten, order kept');
    assert.deepEqual(a.points[0], [1_003_000, 30, 300, 1.5, 50]);
    assert.ok(a.points.every((p) => p[4] === 50), '50 events per second');
    const b = body.series.find((s) => s.sink === 'b')!;
    assert.equal(b.points[0]![2], null, 'no lag bytes without a log');
    assert.deepEqual(h.body({ sink: 'b' }).series.map((s) => s.sink), ['b']);
    assert.deepEqual(h.body({ pipeline: 'other' }).series, []);
  });

  it('shows no throughput (not a negative one) when a restarted attempt starts its counter again', () => {
    let now = 0;
    let out = 1000;
    const h = new LagHistory({ intervalMs: 1000, sample: () => [{ pipeline: 'p', sink: 'a', lagEvents: 0, lagBytes: 0, lagSeconds: 0, eventsOut: out }], now: () => now });
    h.tick();
    now = 1000;
    out = 10;
    h.tick();
    now = 2000;
    out = 30;
    h.tick();
    assert.deepEqual(h.body().series[0]!.points.map((p) => p[4]), [0, 0, 20]);
  });

  it('samples /status views, and skips a tick whose sampling throws; close() is idempotent', () => {
    const views = [{ name: 'p', status: () => ({ sinks: [{ name: 'a', lagEvents: 3, lagSeconds: 1.5, eventsOut: 9, lag: { bytes: 77 } }, { name: 'b' }] }) }];
    assert.deepEqual(samplesFromStatus(views), [
      { pipeline: 'p', sink: 'a', lagEvents: 3, lagBytes: 77, lagSeconds: 1.5, eventsOut: 9 },
      { pipeline: 'p', sink: 'b', lagEvents: 0, lagBytes: null, lagSeconds: 0, eventsOut: 0 },
    ]);
    const h = new LagHistory({
      intervalMs: 60_000,
      sample: () => {
        throw new Error('between attempts');
      },
    }).start();
    assert.deepEqual(h.body().series, []);
    h.close();
    h.close();
  });
});
