import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStream, type StreamEntry } from '../../src/runtime/memory-stream.js';
import { tableMatcher } from '../../src/runtime/table-filter.js';
import { backoffDelay, isRetryableError } from '../../src/runtime/retry.js';
import { redactUrl } from '../../src/core/log.js';
import { PgPosition } from '../../connectors/postgres/position.js';
import { PoisonEventError } from '../../src/core/errors.js';

const commit = (n: number, bytes = 100): StreamEntry => ({ kind: 'commit', txn: new PgPosition(BigInt(n)), resume: new PgPosition(BigInt(n + 1)), bytes });

describe('memory stream', () => {
  it('refuses more once over its byte budget and drains when consumers release', async () => {
    const s = new MemoryStream(1000);
    const at = s.register('a');
    s.register('b');
    let ok = true;
    let n = 0;
    while (ok) ok = s.push(commit(n++));
    assert.equal(n, 10, 'push returns false at the budget');
    assert.equal(s.bytes, 1000);
    let drained = false;
    const d = s.drained().then(() => (drained = true));
    s.release('a', at + 10);
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, false, 'one slow consumer keeps the data');
    s.release('b', at + 5);
    await d;
    assert.equal(s.bytes, 500);
    assert.equal(s.read(at + 5, 100, 1 << 20).length, 5);
    assert.equal(s.read(at + 5, 100, 150).length, 2, 'reads stop at the byte limit (at least one entry)');
  });
  it('wait() resolves on push and on abort', async () => {
    const s = new MemoryStream(1 << 20);
    const at = s.register('a');
    const ac = new AbortController();
    const w = s.wait(at, ac.signal);
    s.push(commit(1));
    await w;
    const w2 = s.wait(at + 1, ac.signal);
    ac.abort();
    await w2;
  });
});

describe('table filters', () => {
  it('matches globs with include and exclude', () => {
    const m = tableMatcher(['public.order_*', 'public.customers', 'shop.*'], ['public.order_archive']);
    assert.equal(m('public.order_items'), true);
    assert.equal(m('public.order_archive'), false);
    assert.equal(m('public.customers'), true);
    assert.equal(m('public.customersx'), false);
    assert.equal(m('shop.anything'), true);
    assert.equal(tableMatcher(undefined, undefined)('x.y'), true);
  });
});

describe('retry classification', () => {
  it('network errors retry; poison and plain errors do not', () => {
    assert.equal(isRetryableError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), true);
    assert.equal(isRetryableError(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isRetryableError(new PoisonEventError('bad row')), false);
    assert.equal(isRetryableError(new TypeError('x is undefined')), false);
    for (let i = 1; i < 30; i++) assert.ok(backoffDelay(i, 100, 5000) <= 5000);
  });
});

describe('secret redaction', () => {
  it('removes URL passwords', () => {
    assert.equal(redactUrl('connect to postgres://cdc:s3cret@db:5432/shop failed'), 'connect to postgres://cdc:***@db:5432/shop failed');
    assert.equal(redactUrl('redis://:pw@127.0.0.1:6379'), 'redis://:***@127.0.0.1:6379');
  });
});
