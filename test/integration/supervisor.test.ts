import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { PgTestDb, REPO, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { MYSQL_URL } from '../helpers/env.js';
import { readJsonl } from '../helpers/pipeline.js';
import { freePort } from '../helpers/servers/common.js';
import { PrivatePostgres } from '../helpers/servers/private-pg.js';

type Status = {
  pipelines: {
    name: string;
    state: string;
    error: string | null;
    restarts: number;
    nextRetryAt: string | null;
    source: { up: boolean; attempts: number; lastError: string | null };
  }[];
};

describe('several pipelines in one process, and failures that are not retried', { concurrency: false }, () => {
  it('a pipeline whose database goes away for good, and one that keeps failing, do not stop the others; /status and tributary status say why', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('sup');
    await using server = await PrivatePostgres.start();
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    await server.query('CREATE TABLE t (id int PRIMARY KEY)');
    const tag = `${process.pid}`;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const plugin = join(REPO, 'test', 'fixtures', 'failing-open-sink.js');
    const cfg = dir.file(
      'three.yaml',
      `pipelines:
  - name: good${tag}
    source: { type: postgres, url: "${db.url}", tables: [public.t], snapshot: never }
    state: { type: file, dir: ${dir.path}/state }
    sinks: [{ name: out, type: jsonl, path: ${dir.path}/good.jsonl }]
  - name: gone${tag}
    source: { type: postgres, url: "${server.url()}", tables: [public.t], snapshot: never, heartbeat_ms: 500 }
    state: { type: file, dir: ${dir.path}/state }
    sinks: [{ name: out, type: jsonl, path: ${dir.path}/gone.jsonl }]
  - name: broken${tag}
    source: { type: postgres, url: "${db.url}", tables: [public.t], snapshot: never }
    state: { type: file, dir: ${dir.path}/state }
    sinks: [{ name: out, type: ${plugin}, message: "the target rejected our certificate" }]
http: { port: ${port} }
`,
    );
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    const status = async () => (await (await fetch(`${base}/status`)).json()) as Status;
    const one = async (name: string) => (await status()).pipelines.find((p) => p.name === `${name}${tag}`)!;
    await waitFor(async () => (await one('good')).state === 'running' && (await one('gone')).state === 'running', { timeoutMs: 60_000, what: 'good and gone to run' });
    await db.query('INSERT INTO t SELECT generate_series(1, 10)');
    await server.query('INSERT INTO t SELECT generate_series(1, 10)');
    await waitFor(() => readJsonl(`${dir.path}/good.jsonl`).length === 10 && readJsonl(`${dir.path}/gone.jsonl`).length === 10, { what: 'both to deliver' });

    // The private server goes away for good; the shared one keeps taking writes.
    await server.stop('fast');
    await db.query('INSERT INTO t SELECT generate_series(11, 60)');
    await waitFor(() => readJsonl(`${dir.path}/good.jsonl`).length === 60, { what: 'good to deliver while the others are down or failing' });
    await waitFor(async () => (await one('gone')).source.attempts >= 3 && (await one('broken')).restarts >= 2, { timeoutMs: 60_000, what: 'reconnects and restarts' });

    const s = await status();
    const [good, gone, broken] = ['good', 'gone', 'broken'].map((n) => s.pipelines.find((p) => p.name === `${n}${tag}`)!);
    assert.equal(good!.state, 'running');
    assert.equal(good!.source.up, true);
    assert.equal(gone!.state, 'running', 'a lost database does not end the pipeline: it reconnects');
    assert.equal(gone!.source.up, false);
    assert.match(gone!.source.lastError!, /ECONNREFUSED|terminating connection/);
    assert.ok(['restarting', 'starting'].includes(broken!.state), broken!.state);
    assert.match(broken!.error!, /the target rejected our certificate/);
    assert.ok(broken!.restarts >= 2, `restarts ${broken!.restarts}`);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 503);

    const st = await TributaryProcess.run(['status', '--config', cfg]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`pipeline good${tag}: running\\n`));
    assert.match(st.stdout, new RegExp(`pipeline gone${tag}: running\\n  source: down for \\d+ s \\(\\d+ failed attempts(, next try in \\d+ s)?\\): .*(ECONNREFUSED|terminating connection)`));
    assert.match(st.stdout, new RegExp(`pipeline broken${tag}: (restarting|starting)\\n`));
    assert.match(st.stdout, /restarting \(\d+ restarts(, next try in \d+ s)?\) after: the target rejected our certificate/);

    assert.ok(proc.running, 'the process runs on');
    const log = proc.stdout + proc.stderr;
    assert.match(log, new RegExp(`pipeline broken${tag} could not start: the target rejected our certificate; starting it again from its checkpoints in`));
    assert.equal(await proc.kill('SIGTERM'), 0);
    console.log(`# good delivered 60 rows; gone: ${gone!.source.attempts} reconnect attempts, last error "${gone!.source.lastError}"; broken: ${broken!.restarts} restarts, "${broken!.error}"\n# ${st.stdout.trim().split('\n').join('\n# ')}`);
  });

  it('a login that was never accepted fails fast with TRB2200 and exit code 2', { timeout: 60_000 }, async () => {
    const user = `trb_auth_${process.pid}`;
    const admin = await mysql.createConnection({ uri: MYSQL_URL });
    await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'right-password'`);
    try {
      await using dir = new TempDir();
      const u = new URL(MYSQL_URL);
      const cfg = dir.file(
        'auth.yaml',
        `name: auth${process.pid}\nsource: { type: mysql, url: "mysql://${user}:wrong-password@${u.host}/", snapshot: never }\nstate: { type: file, dir: ${dir.path}/state }\nsinks: [{ name: out, type: jsonl, path: ${dir.path}/out.jsonl }]\nhttp: { port: 0 }\n`,
      );
      const t = Date.now();
      const r = await TributaryProcess.run(['run', '--config', cfg], { timeoutMs: 30_000 });
      assert.equal(r.code, 2, r.stderr.slice(-2000));
      assert.match(r.stderr, /TRB2200 the database refused the login of source\.url, and it has never been accepted for this pipeline: .*Access denied for user/);
      assert.match(r.stderr, /fix: check the user and password in source\.url/);
      assert.doesNotMatch(r.stdout + r.stderr, /wrong-password/, 'the password never reaches the output');
      console.log(`# exit ${r.code} after ${Date.now() - t} ms: ${r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'))[0]}`);
    } finally {
      await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
      await admin.end();
    }
  });

  it('source.reconnect.max_elapsed caps the wait for a database that never comes: TRB2201', { timeout: 60_000 }, async () => {
    await using dir = new TempDir();
    const nobody = await freePort(); // nothing listens there
    const cfg = dir.file(
      'cap.yaml',
      `name: cap${process.pid}\nsource:\n  type: postgres\n  url: postgres://postgres@127.0.0.1:${nobody}/postgres\n  snapshot: never\n  reconnect: { max_elapsed: 3s }\nstate: { type: file, dir: ${dir.path}/state }\nsinks: [{ name: out, type: jsonl, path: ${dir.path}/out.jsonl }]\nhttp: { port: 0 }\n`,
    );
    const t = Date.now();
    const r = await TributaryProcess.run(['run', '--config', cfg], { timeoutMs: 30_000 });
    const took = Date.now() - t;
    assert.equal(r.code, 1, r.stderr.slice(-2000));
    assert.match(r.stderr, /TRB2201 the source has been unreachable for \d+ s, longer than source\.reconnect\.max_elapsed: .*ECONNREFUSED/);
    assert.ok(took >= 3000 && took < 20_000, `gave up after ${took} ms`);
    const waits = (r.stderr.match(/cannot reach the database/g) ?? []).length;
    assert.equal(waits, 1, 'the wait is logged once, not per attempt');
    console.log(`# exit ${r.code} after ${took} ms: ${r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'))[0]}`);
  });
});
