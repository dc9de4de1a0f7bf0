import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TempDir, TributaryProcess } from '../helpers/context.js';
import { readJsonl } from '../helpers/pipeline.js';

describe('tributary demo', () => {
  it('runs an embedded Postgres with live traffic and streams it to the screen and a file', { timeout: 120_000 }, async () => {
    await using dir = new TempDir('tributary-demo-test-');
    const r = await TributaryProcess.run(['demo', '--duration', '6', '--rate', '10', '--out', dir.path], { timeoutMs: 110_000 });
    assert.equal(r.code, 0, r.stderr);
    const events = readJsonl(`${dir.path}/events.jsonl`);
    assert.ok(events.length >= 10, `expected live events, got ${events.length}`);
    assert.ok(events.some((e) => e.source.table === 'orders' && e.op === 'c'));
    assert.ok(events.every((e) => e.source.connector === 'postgresql' && e.source.db === 'shop'));
    assert.match(r.stdout, /INSERT public\.orders \[id=\d+\]/);
    assert.match(r.stderr, /done: \d+ events written/);
    // Every line on screen has a counterpart in the file.
    assert.equal(r.stdout.trim().split('\n').length, events.length);
  });
});
