/**
 * The metrics facade over prom-client (src/runtime/metrics.ts): define/inc/set/get keep their
 * meaning, counters published as totals move by the difference, label sets are fixed per
 * metric, and the exposition is prom-client's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ErrorCodes } from '../../src/core/errors.js';
import type { HeldBack, Source } from '../../src/core/source.js';
import { HeldBackPoller } from '../../src/runtime/held-back.js';
import { Metrics, defineRuntimeMetrics } from '../../src/runtime/metrics.js';
import { REPO } from '../helpers/context.js';

describe('Metrics on prom-client', () => {
  it('inc, set and get per label set; label order does not matter; the text is Prometheus exposition', async () => {
    const m = new Metrics();
    defineRuntimeMetrics(m);
    const labels = { pipeline: 'p', sink: 's' };
    m.inc('tributary_events_out_total', 3, labels);
    m.inc('tributary_events_out_total', 4, labels); // the cached series
    m.inc('tributary_events_out_total', 1, { sink: 's', pipeline: 'p' }); // the same series, another object and order
    m.inc('tributary_events_out_total', 5, { pipeline: 'p', sink: 't' });
    m.set('tributary_sink_lag_seconds', 2.5, labels);
    m.set('tributary_sink_lag_seconds', 1.25, labels);
    assert.equal(m.get('tributary_events_out_total', labels), 8);
    assert.equal(m.get('tributary_events_out_total', { sink: 't', pipeline: 'p' }), 5);
    assert.equal(m.get('tributary_sink_lag_seconds', labels), 1.25);
    assert.equal(m.get('tributary_no_such_metric'), 0);
    const text = await m.render();
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
    assert.match(text, /^# HELP tributary_events_out_total Change events written durably by a sink\.$/m);
    assert.match(text, /^# TYPE tributary_events_out_total counter$/m);
    assert.match(text, /^tributary_events_out_total\{pipeline="p",sink="s"\} 8$/m);
    assert.match(text, /^tributary_events_out_total\{pipeline="p",sink="t"\} 5$/m);
    assert.match(text, /^# TYPE tributary_sink_lag_seconds gauge$/m);
    assert.match(text, /^tributary_sink_lag_seconds\{pipeline="p",sink="s"\} 1\.25$/m);
    // Defined with labels: listed before its first sample.
    assert.match(text, /^# TYPE tributary_source_retained_wal_bytes gauge$/m);
    assert.match(text, /^# TYPE tributary_dead_letter_depth gauge$/m);
  });

  it('a counter set to a running total moves by the difference; a smaller total starts the series over', async () => {
    const m = new Metrics();
    defineRuntimeMetrics(m);
    const l = { pipeline: 'p' };
    m.set('tributary_events_in_total', 10, l);
    m.set('tributary_events_in_total', 25, l);
    assert.equal(m.get('tributary_events_in_total', l), 25);
    assert.match(await m.render(), /^tributary_events_in_total\{pipeline="p"\} 25$/m);
    m.set('tributary_events_in_total', 4, l); // a new pipeline attempt counts from 0
    assert.equal(m.get('tributary_events_in_total', l), 4);
    assert.match(await m.render(), /^tributary_events_in_total\{pipeline="p"\} 4$/m);
    m.inc('tributary_events_in_total', 1, l);
    assert.match(await m.render(), /^tributary_events_in_total\{pipeline="p"\} 5$/m);
  });

  it('label names are fixed per metric: another name is refused with TRB6010; an undeclared metric takes its first labels', async () => {
    const m = new Metrics();
    defineRuntimeMetrics(m);
    assert.throws(() => m.set('tributary_source_up', 1, { pipeline: 'p', sink: 's' }), (e: { code?: string; message: string }) => e.code === ErrorCodes.METRIC_LABELS && /label "sink"/.test(e.message));
    m.inc('tributary_plugin_things_total', 2, { pipeline: 'p', sink: 's', topic: 'a' });
    assert.deepEqual(m.labelNames('tributary_plugin_things_total'), ['pipeline', 'sink', 'topic']);
    assert.match(await m.render(), /^# TYPE tributary_plugin_things_total counter$/m);
    assert.throws(() => m.inc('tributary_plugin_things_total', 1, { pipeline: 'p', other: 'x' }), /TRB6010|label "other"/);
  });

  it('scoped() adds the fixed labels; process metrics are prefixed tributary_ and opt-in', async () => {
    const m = new Metrics();
    defineRuntimeMetrics(m);
    const s = m.scoped({ pipeline: 'p', sink: 's' });
    s.inc('tributary_sink_item_retries_total', 2);
    s.inc('tributary_sink_item_retries_total');
    s.set('tributary_sink_lag_events', 7);
    assert.equal(m.get('tributary_sink_item_retries_total', { pipeline: 'p', sink: 's' }), 3);
    assert.equal(m.get('tributary_sink_lag_events', { pipeline: 'p', sink: 's' }), 7);
    assert.ok(!m.names().includes('tributary_process_resident_memory_bytes'));
    m.collectProcessMetrics();
    m.collectProcessMetrics(); // twice is harmless
    assert.ok(m.names().includes('tributary_process_resident_memory_bytes'));
    assert.match(await m.render(), /^tributary_process_resident_memory_bytes \d+$/m);
  });

  it('the old hand-written series keep their names and types', async () => {
    const m = new Metrics();
    defineRuntimeMetrics(m);
    const text = await m.render();
    // The series the hand-written registry published (docs/metrics.md lists them all).
    for (const [name, type] of [
      ['tributary_events_in_total', 'counter'], ['tributary_transactions_in_total', 'counter'], ['tributary_events_out_total', 'counter'],
      ['tributary_sink_lag_events', 'gauge'], ['tributary_sink_lag_seconds', 'gauge'], ['tributary_sink_batches_total', 'counter'],
      ['tributary_sink_retries_total', 'counter'], ['tributary_dead_letter_total', 'counter'], ['tributary_stream_buffer_bytes', 'gauge'],
      ['tributary_source_paused', 'gauge'], ['tributary_source_up', 'gauge'], ['tributary_source_down_seconds', 'gauge'],
      ['tributary_source_reconnects_total', 'counter'], ['tributary_pipeline_restarts_total', 'counter'], ['tributary_source_lag_seconds', 'gauge'],
      ['tributary_acknowledged_position', 'gauge'], ['tributary_snapshot_rows_total', 'counter'], ['tributary_snapshot_remaining_tables', 'gauge'],
      ['tributary_log_bytes', 'gauge'], ['tributary_sink_committed_offset', 'gauge'], ['tributary_sink_lag_bytes', 'gauge'],
    ]) assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
  });
});

describe('docs/metrics.md', () => {
  it('lists every runtime metric with its type and labels, and names no metric that does not exist', async () => {
    const doc = readFileSync(join(REPO, 'docs', 'metrics.md'), 'utf8');
    const m = new Metrics();
    defineRuntimeMetrics(m);
    const rows = new Map([...doc.matchAll(/^\| `(tributary_[a-z0-9_]+)` \| (counter|gauge) \| ([a-z, ]+) \|/gm)].map((r) => [r[1]!, { type: r[2]!, labels: r[3]!.split(', ') }]));
    const text = await m.render();
    for (const name of m.names()) {
      const row = rows.get(name);
      assert.ok(row, `docs/metrics.md has a row for ${name}`);
      assert.match(text, new RegExp(`^# TYPE ${name} ${row.type}$`, 'm'), `${name} is a ${row.type}`);
      assert.deepEqual(row.labels, m.labelNames(name), `${name} labels`);
    }
    m.collectProcessMetrics();
    const all = new Set(m.names());
    for (const r of doc.matchAll(/`(tributary_[a-z0-9_]+)`/g)) assert.ok(all.has(r[1]!), `${r[1]} (docs/metrics.md) exists`);
  });
});

describe('HeldBackPoller', () => {
  const logger = pino({ level: 'silent' });
  const fakeSource = (answers: (HeldBack | Error)[]) => {
    let calls = 0;
    const source = {
      heldBack: async () => {
        const a = answers[Math.min(calls++, answers.length - 1)]!;
        if (a instanceof Error) throw a;
        return a;
      },
    } as unknown as Source;
    return { source, calls: () => calls };
  };

  it('publishes the figures, keeps them through a failed measure with its error, and logs the failure once', async () => {
    const m = new Metrics();
    defineRuntimeMetrics(m);
    const denied = () => Object.assign(new Error('permission denied for function pg_current_wal_lsn'), { code: '42501' });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { source } = fakeSource([{ wal_bytes: 4096 }, refused, denied(), denied(), { wal_bytes: 8192 }]);
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
    const p = new HeldBackPoller(source, 'p', m, log, 60_000);
    assert.equal(p.status(), null);
    p.start();
    await p.poll();
    assert.equal(p.status()!.wal_bytes, 4096);
    assert.match(p.status()!.checked_at, /^\d{4}-\d\d-\d\dT/);
    assert.equal(m.get('tributary_source_retained_wal_bytes', { pipeline: 'p' }), 4096);
    await p.poll();
    assert.equal(p.status()!.wal_bytes, 4096, 'the last figures stay');
    assert.match(p.status()!.error!, /ECONNREFUSED/);
    assert.equal(warnings.length, 0, 'a lost database is the source link\'s to report');
    await p.poll();
    await p.poll();
    assert.equal(p.status()!.error, 'permission denied for function pg_current_wal_lsn');
    assert.equal(warnings.length, 1, 'one warning until a measure works again');
    assert.match(warnings[0]!, /TRB6011/);
    await p.poll();
    assert.equal(p.status()!.wal_bytes, 8192);
    assert.equal(p.status()!.error, undefined);
    assert.equal(m.get('tributary_source_retained_wal_bytes', { pipeline: 'p' }), 8192);
    await p.close();
    await p.close();
  });

  it('MySQL figures go to the binlog gauge; a source without heldBack is never polled', async () => {
    const m = new Metrics();
    defineRuntimeMetrics(m);
    const { source } = fakeSource([{ binlog_files: 3, oldest_binlog_file: 'mysql-bin.000007' }]);
    const p = new HeldBackPoller(source, 'q', m, logger, 60_000);
    p.start();
    await p.poll();
    assert.equal(m.get('tributary_source_retained_binlog_files', { pipeline: 'q' }), 3);
    assert.equal(p.status()!.oldest_binlog_file, 'mysql-bin.000007');
    await p.close();
    const none = new HeldBackPoller({} as Source, 'r', m, logger, 60_000);
    none.start();
    assert.equal(none.status(), null);
    await none.close();
  });
});
