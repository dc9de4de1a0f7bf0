import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PgTestDb, REPO, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { InProcessPipeline, readJsonl } from '../helpers/pipeline.js';
import { FileStateStore } from '../../src/state/file-store.js';

const good = (extra = '') => `name: shop
source:
  type: postgres
  url: postgres://cdc@127.0.0.1:5432/shop
  tables: [public.orders]
sinks:
  - name: audit
    type: jsonl
    path: ./out/shop.jsonl
${extra}`;

async function validate(dir: TempDir, name: string, text: string, env: NodeJS.ProcessEnv = {}) {
  const file = dir.file(name, text);
  return TributaryProcess.run(['validate', '--config', file], { env });
}

describe('bad input: clear errors, exit code 2', { concurrency: false }, () => {
  it('a valid config passes validate with exit 0', async () => {
    await using dir = new TempDir();
    const r = await validate(dir, 'ok.yaml', good());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pipeline shop: postgres source, 1 sink\(s\): ok/);
  });

  it('malformed YAML names the file and line', async () => {
    await using dir = new TempDir();
    const r = await validate(dir, 'broken.yaml', 'name: shop\nsource:\n  type: postgres\n  url: "unterminated\nsinks: []\n');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /broken\.yaml:\d+: YAML syntax error/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  });

  it('an unknown key names file, line, field path and the likely key', async () => {
    await using dir = new TempDir();
    const r = await validate(dir, 'tributary.yaml', good().replace('path: ./out/shop.jsonl', 'pathh: ./out/shop.jsonl'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /tributary\.yaml:9: sinks\[0\]\.pathh: unknown key \(did you mean "path"\?\)/);
  });

  it('an unknown source key and a wrong value type are reported with their lines', async () => {
    await using dir = new TempDir();
    const r = await validate(dir, 't.yaml', good().replace('  tables: [public.orders]', '  tables: [public.orders]\n  slott: x\n  heartbeat_ms: soon'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /t\.yaml:6: source\.slott: unknown key \(did you mean "slot"\?\)/);
    assert.match(r.stderr, /t\.yaml:7: source\.heartbeat_ms: /);
  });

  it('an unknown sink type lists the known ones', async () => {
    await using dir = new TempDir();
    const r = await validate(dir, 't.yaml', good().replace('type: jsonl', 'type: jsonll'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /t\.yaml:8: sinks\[0\]\.type: unknown sink type "jsonll"/);
    assert.match(r.stderr, /jsonl, /);
  });

  it('a missing environment variable is named with its line; defaults apply', async () => {
    await using dir = new TempDir();
    const text = good().replace('postgres://cdc@127.0.0.1:5432/shop', 'postgres://cdc:${PGPASS}@${PGHOST:-127.0.0.1}:5432/shop');
    const r = await validate(dir, 'env.yaml', text, { PGPASS: '' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /env\.yaml:4: source\.url: environment variable PGPASS is not set/);
    const ok = await validate(dir, 'env2.yaml', text, { PGPASS: 'secret' });
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('usage errors exit 2', async () => {
    const r = await TributaryProcess.run(['run']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing --config/);
    const u = await TributaryProcess.run(['frobnicate']);
    assert.equal(u.code, 2);
  });

  it('run with a bad config exits 2 before touching the database', async () => {
    await using dir = new TempDir();
    const file = dir.file('bad.yaml', good().replace('type: jsonl', 'type: nope'));
    const r = await TributaryProcess.run(['run', '--config', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown sink type "nope"/);
  });

  it('a missing table fails preflight with the fix; validate --check-source reports it', async () => {
    await using db = await PgTestDb.create('preflight');
    await using dir = new TempDir();
    const file = dir.file('p.yaml', good().replace('postgres://cdc@127.0.0.1:5432/shop', db.url));
    const r = await TributaryProcess.run(['validate', '--config', file, '--check-source']);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /ERROR TRB2008 shop: table public\.orders does not exist/);
    await db.query('CREATE TABLE orders (id int PRIMARY KEY)');
    const r2 = await TributaryProcess.run(['validate', '--config', file, '--check-source']);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
    assert.match(r2.stdout, /warning TRB2004 shop: public\.orders has REPLICA IDENTITY DEFAULT/);
    assert.match(r2.stdout, /fix: ALTER TABLE "public"\."orders" REPLICA IDENTITY FULL;/);
  });
});

describe('poison events go to the dead-letter store; the pipeline does not stall', { concurrency: false }, () => {
  it('parks exactly the rejected event with its error and delivers the rest', async () => {
    await using db = await PgTestDb.create('poison');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, poison bool NOT NULL DEFAULT false)');
    const plugin = join(REPO, 'test', 'fixtures', 'poison-sink.js');
    await using p = await InProcessPipeline.start({
      name: 'poison',
      source: `type: postgres\nurl: ${db.url}\ntables: [public.t]\nsnapshot: never`,
      sinksYaml: `  - name: picky\n    type: ${plugin}\n    path: PICKY\n    retry: { attempts: 2, backoff_ms: 10 }\n`.replace('PICKY', join('/tmp', `picky-${process.pid}.jsonl`)),
    });
    await db.query('INSERT INTO t SELECT g, g = 5 FROM generate_series(1, 10) g');
    await db.query('INSERT INTO t VALUES (11, false)');
    const picky = join('/tmp', `picky-${process.pid}.jsonl`);
    await waitFor(() => readJsonl(picky).some((e) => e.after?.id === 11), { what: 'the event after the poison one' });
    const delivered = readJsonl(picky).map((e) => e.after!.id);
    assert.deepEqual([...new Set(delivered)].sort((a, b) => Number(a) - Number(b)), [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]);
    // Parked in the dead-letter store beside the checkpoints (docs/dead-letters.md).
    const dlq = await new FileStateStore(join(p.dir.path, 'state')).deadLetters('poison', 'picky').list();
    assert.equal(dlq.length, 1, 'exactly the poison event is parked');
    assert.equal(JSON.parse(dlq[0]!.envelope).after.id, 5);
    assert.deepEqual(dlq[0]!.key, { id: 5 });
    assert.match(dlq[0]!.error.message, /violates the target's constraint/);
    assert.equal(dlq[0]!.sink, 'picky');
    assert.equal(dlq[0]!.attempts, 2, 'max_attempts (default: retry.attempts, 2) writes on its own');
    assert.equal(p.metrics.get('tributary_dead_letter_total', { pipeline: 'poison', sink: 'picky' }), 1);
    assert.equal(p.metrics.get('tributary_dead_letter_depth', { pipeline: 'poison', sink: 'picky' }), 1);
    // The well-behaved sink got everything, poison included.
    assert.equal(p.events().length, 11);
  });

  it('a target that rejects everything is retried, not dead-lettered, and catches up once fixed', async () => {
    await using db = await PgTestDb.create('broken');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, poison bool NOT NULL DEFAULT false)');
    const plugin = join(REPO, 'test', 'fixtures', 'poison-sink.js');
    const flag = `/tmp/broken-flag-${process.pid}`;
    const out = `/tmp/broken-out-${process.pid}.jsonl`;
    writeFileSync(flag, '');
    await using p = await InProcessPipeline.start({
      name: 'broken',
      source: `type: postgres\nurl: ${db.url}\ntables: [public.t]\nsnapshot: never`,
      sinksYaml: `  - name: picky\n    type: ${plugin}\n    path: ${out}\n    broken_flag: ${flag}\n    retry: { attempts: 2, backoff_ms: 10, max_backoff_ms: 200 }\n`,
    });
    await db.query('INSERT INTO t SELECT g FROM generate_series(1, 20) g');
    await waitFor(() => p.metrics.get('tributary_sink_retries_total', { pipeline: 'broken', sink: 'picky' }) > 10, { what: 'retries' });
    assert.equal(p.metrics.get('tributary_dead_letter_total', { pipeline: 'broken', sink: 'picky' }), 0, 'nothing parked while the target is broken');
    assert.equal(p.pipeline.state, 'running');
    rmSync(flag);
    await waitFor(() => readJsonl(out).length >= 20, { timeoutMs: 20_000, what: 'the backlog after the fix' });
    assert.deepEqual([...new Set(readJsonl(out).map((e) => e.after!.id))].length, 20);
    rmSync(out, { force: true });
  });

  it('dead_letter.policy: stop fails the pipeline with a clear error instead', async () => {
    await using db = await PgTestDb.create('poisonstop');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, poison bool NOT NULL DEFAULT false)');
    const plugin = join(REPO, 'test', 'fixtures', 'poison-sink.js');
    await using p = await InProcessPipeline.start({
      name: 'poisonstop',
      source: `type: postgres\nurl: ${db.url}\ntables: [public.t]\nsnapshot: never`,
      sinksYaml: `  - name: picky\n    type: ${plugin}\n    path: /tmp/picky-stop-${process.pid}.jsonl\n    retry: { attempts: 1, backoff_ms: 10 }\n    dead_letter: { policy: stop }\n`,
    });
    await db.query('INSERT INTO t VALUES (1, true)');
    await waitFor(() => p.pipeline.state === 'failed', { what: 'the pipeline to fail' });
    assert.match(String(p.pipeline.error?.message), /sink picky rejected an event of public\.t/);
  });
});
