import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';

describe('HTTP API and tributary status', { concurrency: false }, () => {
  it('serves /healthz, /readyz, /metrics with lag, /status; status reads positions; logs carry no password', { timeout: 90_000 }, async () => {
    await using db = await PgTestDb.create('http');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY); ALTER TABLE t REPLICA IDENTITY FULL');
    await db.query("CREATE ROLE cdc_http LOGIN REPLICATION PASSWORD 'hunter2-secret'").catch(() => undefined);
    await db.query('GRANT SELECT ON t TO cdc_http');
    await db.query(`GRANT CREATE ON DATABASE "${db.name}" TO cdc_http`);
    await db.query('ALTER TABLE t OWNER TO cdc_http');
    const port = await freePort();
    const url = db.url.replace('postgres@', 'cdc_http:hunter2-secret@');
    const cfg = dir.file(
      'http.yaml',
      `name: http\nsource:\n  type: postgres\n  url: ${url}\n  tables: [public.t]\n  snapshot: never\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - { name: audit, type: jsonl, path: ${dir.path}/out.jsonl }\nhttp: { port: ${port} }\nlog: { level: debug }\n`,
    );
    await using proc = TributaryProcess.start(['run', '--config', cfg], { env: { TRIBUTARY_LOG_LEVEL: 'debug' } });
    await proc.waitForLog(/http server listening/);
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { what: 'readyz' });
    await db.query('INSERT INTO t SELECT generate_series(1, 50)');
    await waitFor(async () => /tributary_events_out_total\{pipeline="http",sink="audit"\} 50/.test(await (await fetch(`${base}/metrics`)).text()), { what: 'metrics' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /# TYPE tributary_sink_lag_seconds gauge/);
    assert.match(metrics, /tributary_sink_lag_events\{pipeline="http",sink="audit"\} 0/);
    assert.match(metrics, /tributary_source_up\{pipeline="http"\} 1/);
    assert.match(metrics, /tributary_stream_buffer_bytes/);
    type Status = { pipelines: { name: string; state: string; sinks: { name: string; position: string | null }[] }[] };
    // The checkpoint record is written just after the batch is counted: wait for it.
    const status = (await waitFor(async () => {
      const s = (await (await fetch(`${base}/status`)).json()) as Status;
      return s.pipelines[0]!.sinks[0]!.position ? s : null;
    }, { what: 'the checkpoint in /status' }))!;
    assert.equal(status.pipelines[0]!.state, 'running');
    assert.match(status.pipelines[0]!.sinks[0]!.position!, /^[0-9A-F]+\/[0-9A-F]+$/);
    const st = await TributaryProcess.run(['status', '--config', cfg]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /pipeline http: running/);
    assert.match(st.stdout, /sink audit: position [0-9A-F]+\/[0-9A-F]+ \(committed .*\), lag 0 events/);
    assert.equal(await proc.kill('SIGTERM'), 0);
    assert.doesNotMatch(proc.stdout + proc.stderr, /hunter2-secret/, 'the password never reaches the logs');
    const offline = await TributaryProcess.run(['status', '--config', cfg]);
    assert.match(offline.stdout, /not running \(positions from the state store\)/);
  });
});
