/**
 * What the source holds back, end to end: `/status` `held_back` and the retained WAL / binlog
 * metrics from a real Postgres slot and a real MariaDB binlog; and every metric name the
 * Grafana dashboard and the alert rules use is on the `/metrics` of a real `tributary run`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { MysqlTestDb, mysqlSrc } from '../helpers/mysql.js';
import { InProcessPipeline } from '../helpers/pipeline.js';
import { deployMetricNames } from '../helpers/deploy-metrics.js';

type HeldBack = { wal_bytes?: number; wal_status?: string; binlog_files?: number; binlog_bytes?: number; oldest_binlog_file?: string; checked_at: string; error?: string };

describe('source hold-back and the deploy metrics on a live /metrics', { concurrency: false }, () => {
  it('Postgres: /status held_back.wal_bytes is the slot\'s retained WAL, on /metrics too; every dashboard and alert metric is exported', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('heldback');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    // Rows before the start: the initial snapshot reads them (with an estimate, after ANALYZE).
    await db.query("INSERT INTO t SELECT g, 'snap' FROM generate_series(10001, 10300) g; ANALYZE t");
    const port = await freePort();
    const cfg = dir.file(
      'hb.yaml',
      `name: hb_${process.pid}\nsource:\n  type: postgres\n  url: ${db.url}\n  tables: [public.t]\n  snapshot: initial\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - { name: audit, type: jsonl, path: ${dir.path}/out.jsonl }\nhttp: { port: ${port} }\n`,
    );
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, { what: 'readyz', timeoutMs: 60_000 });
    // The snapshot is done before the writes, so it reads exactly the 300 rows written before the start.
    await waitFor(async () => new RegExp(`^tributary_snapshot_remaining_tables\\{pipeline="hb_${process.pid}"\\} 0$`, 'm').test(await (await fetch(`${base}/metrics`)).text()), { what: 'the snapshot', timeoutMs: 60_000 });
    await db.query("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 500) g");
    type Status = { pipelines: { name: string; held_back: HeldBack | null }[] };
    const held = (await waitFor(async () => ((await (await fetch(`${base}/status`)).json()) as Status).pipelines[0]!.held_back, { what: 'held_back in /status' }))!;
    assert.equal(held.error, undefined);
    assert.equal(typeof held.wal_bytes, 'number');
    assert.ok(held.wal_bytes! >= 0);
    assert.equal(held.wal_status, 'reserved');
    assert.ok(Date.now() - Date.parse(held.checked_at) < 60_000);
    // The slot exists and the figure is of its order: never more than the WAL written since it began.
    const slot = (await db.query<{ total: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS total FROM pg_replication_slots WHERE slot_name = $1`, [`tributary_hb_${process.pid}`])).rows[0];
    assert.ok(slot, 'the pipeline\'s slot exists');
    assert.ok(held.wal_bytes! <= Number(slot.total));

    const name = `hb_${process.pid}`;
    await waitFor(async () => new RegExp(`^tributary_events_out_total\\{pipeline="${name}",sink="audit"\\} 800$`, 'm').test(await (await fetch(`${base}/metrics`)).text()), { what: 'events out' });
    // The runtime's gauges are published once a second.
    await waitFor(async () => /^tributary_source_last_event_seconds\{/m.test(await (await fetch(`${base}/metrics`)).text()), { what: 'the gauges' });
    const res = await fetch(`${base}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, new RegExp(`^tributary_source_retained_wal_bytes\\{pipeline="${name}"\\} \\d+$`, 'm'));
    assert.match(text, new RegExp(`^tributary_source_last_event_seconds\\{pipeline="${name}"\\} [\\d.e-]+$`, 'm'));
    assert.match(text, new RegExp(`^tributary_pipeline_running\\{pipeline="${name}"\\} 1$`, 'm'));
    assert.match(text, /^tributary_process_resident_memory_bytes \d+$/m);
    // Snapshot progress per table: the rows delivered, and the estimate they are measured against.
    assert.match(text, new RegExp(`^tributary_snapshot_table_rows\\{pipeline="${name}",table="public.t"\\} 300$`, 'm'));
    assert.match(text, new RegExp(`^tributary_snapshot_table_rows_estimate\\{pipeline="${name}",table="public.t"\\} 300$`, 'm'));
    assert.match(text, new RegExp(`^tributary_snapshot_rows_total\\{pipeline="${name}",table="public.t"\\} 300$`, 'm'));
    // Every name the dashboard and the rules use is a family of this live exposition.
    const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const used = deployMetricNames();
    assert.ok(used.size > 20);
    for (const n of used) assert.ok(families.has(n), `${n} (deploy/) is on /metrics`);
    const st = await TributaryProcess.run(['status', '--config', cfg]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /source holds back: \d+\.\d MiB of WAL in the slot \(measured \d{4}-/);
    assert.equal(await proc.kill('SIGTERM'), 0);
  });

  it('MariaDB: held_back names the binlog file of the acknowledged position and counts it and the later ones', { timeout: 90_000 }, async () => {
    await using db = await MysqlTestDb.create('heldback');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    await using p = await InProcessPipeline.start({ name: `hbm_${process.pid}`, source: mysqlSrc(db) });
    await db.query("INSERT INTO t VALUES (1, 'a'), (2, 'b')");
    await p.waitForEvents(2);
    const held = (await waitFor(() => (p.pipeline.status().held_back as HeldBack | null) ?? null, { what: 'held_back' }))!;
    assert.equal(held.error, undefined);
    const logs = await db.query<{ Log_name: string }[]>('SHOW BINARY LOGS');
    const names = logs.map((l) => l.Log_name);
    assert.ok(held.oldest_binlog_file && names.includes(held.oldest_binlog_file), `${held.oldest_binlog_file} is one of ${names.join(', ')}`);
    const expected = names.length - names.indexOf(held.oldest_binlog_file!);
    assert.ok(held.binlog_files! >= 1 && held.binlog_files! <= expected, `${held.binlog_files} files from ${held.oldest_binlog_file}`);
    assert.ok(held.binlog_bytes! > 0);
    assert.equal(p.metrics.get('tributary_source_retained_binlog_files', { pipeline: `hbm_${process.pid}` }), held.binlog_files);
  });
});
