import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { REDIS_URL } from '../helpers/env.js';
import { readJsonl } from '../helpers/pipeline.js';

/** Several pipelines in one file (issue 12, section 9): snapshot routing and run --worker. */
describe('several pipelines in one file', { concurrency: false }, () => {
  it('snapshot --table without --pipeline goes to the pipeline that captures the table, or names the candidates', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('multi');
    await using dir = new TempDir();
    await db.query('CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE shared (id int PRIMARY KEY)');
    await db.query('INSERT INTO a SELECT generate_series(1, 3); INSERT INTO b SELECT generate_series(1, 5)');
    const port = await freePort();
    const [p1, p2] = [`multa${process.pid}`, `multb${process.pid}`];
    const pipe = (name: string, tables: string) =>
      `  - name: ${name}\n    source: { type: postgres, url: "${db.url}", tables: [${tables}], snapshot: never }\n    state: { type: file, dir: state }\n    sinks: [{ name: out, type: jsonl, path: ${name}.jsonl }]\n`;
    const cfg = dir.file('multi.yaml', `pipelines:\n${pipe(p1, 'public.a, public.shared')}${pipe(p2, '"public.b*", public.shared')}http: { port: ${port}, auth_token: multi-pipeline-token-0123 }\n`);
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(new RegExp(`pipeline ${p2} running`));
    await proc.waitForLog(new RegExp(`pipeline ${p1} running`));

    const b = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.b']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.match(b.stdout, new RegExp(`started on pipeline ${p2}`));
    const a = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'a']); // a bare name is public.a
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.match(a.stdout, new RegExp(`started on pipeline ${p1}`));
    await waitFor(() => readJsonl(`${dir.path}/${p2}.jsonl`).length === 5 && readJsonl(`${dir.path}/${p1}.jsonl`).length === 3, { what: 'both snapshots' });

    const both = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.shared']);
    assert.equal(both.code, 1);
    assert.match(both.stderr, new RegExp(`TRB1014 table public\\.shared is captured by 2 pipelines: ${p1}, ${p2}\\n  fix: pass --pipeline`));
    const none = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.nothing']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /TRB1014 no pipeline here captures table public\.nothing/);
    const named = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.shared', '--pipeline', p2, '--json']);
    assert.equal(named.code, 0, named.stdout + named.stderr);
    assert.equal((JSON.parse(named.stdout) as { pipeline: string }).pipeline, p2, '--json prints the raw reply');
  });

  it('run --worker refuses a pipeline that cannot take jobs and exits at once; --pipeline serves the others', { timeout: 90_000 }, async () => {
    await using db = await PgTestDb.create('multiw');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const [jobs, plain] = [`mwjobs${process.pid}`, `mwplain${process.pid}`];
    const cfg = dir.file(
      'w.yaml',
      `pipelines:\n` +
        `  - name: ${jobs}\n    source: { type: postgres, url: "${db.url}", tables: [public.t] }\n    stream: { type: redis, url: "${REDIS_URL}" }\n    sinks: [{ name: out, type: jsonl, path: a.jsonl }]\n` +
        `  - name: ${plain}\n    source: { type: postgres, url: "${db.url}", tables: [public.t] }\n    sinks: [{ name: out, type: jsonl, path: b.jsonl }]\n`,
    );
    const started = Date.now();
    const r = await TributaryProcess.run(['run', '--worker', '--config', cfg], { timeoutMs: 30_000 });
    assert.equal(r.code, 2, `exits with its error instead of running on: ${r.stderr}`);
    assert.ok(Date.now() - started < 20_000);
    assert.match(r.stderr, new RegExp(`pipeline ${plain}: --worker cannot take its jobs: it has no snapshot\\.queue\\.redis`));
    assert.match(r.stderr, new RegExp(`fix: serve only the pipelines that can: --pipeline ${jobs}`));

    await using worker = TributaryProcess.start(['run', '--worker', '--pipeline', jobs, '--config', cfg]);
    await worker.waitForLog(/snapshot worker waiting for chunk jobs/);
    assert.equal(await worker.kill('SIGTERM'), 0);
  });
});
