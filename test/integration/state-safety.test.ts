/**
 * Issue 12, section 5: checkpoints that cannot vanish, and one process per pipeline. Real
 * `tributary run` processes, the shared Postgres as the source, and a private redis-server
 * (own port and directory) wherever Redis is configured or killed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { readJsonl } from '../helpers/pipeline.js';
import { RedisServer } from '../helpers/servers/redis.js';

const uniq = () => `${process.pid}_${Math.floor(Math.random() * 1e6)}`;

/** A pipeline config: the items table of `db` into a jsonl file, with the given state block. */
function config(dir: TempDir, name: string, db: PgTestDb, state: string, out = `${dir.path}/out.jsonl`): string {
  return dir.file(
    `${name}.yaml`,
    `name: ${name}
source:
  type: postgres
  url: ${db.url}
  tables: [public.items]
  snapshot: never
  status_interval_ms: 200
${state}
sinks:
  - name: audit
    type: jsonl
    path: ${out}
http: { port: 0 }
`,
  );
}

async function itemsDb(): Promise<PgTestDb> {
  const db = await PgTestDb.create('state');
  await db.query('CREATE TABLE items (id int PRIMARY KEY, v text)');
  return db;
}

const running = (name: string) => new RegExp(`pipeline ${name} running`);

/** Insert ids [from, to) one per transaction; returns the ids. */
async function insert(db: PgTestDb, from: number, to: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = from; i < to; i++) {
    await db.query('INSERT INTO items VALUES ($1, $2)', [i, `v${i}`]);
    ids.push(i);
  }
  return ids;
}

async function waitForIds(out: string, ids: number[], what: string): Promise<void> {
  await waitFor(() => readJsonl(out).length >= ids.length, { timeoutMs: 60_000, what });
  await new Promise((r) => setTimeout(r, 500)); // a duplicate would show up as extra lines
  assert.deepEqual(readJsonl(out).map((e) => e.after!.id), ids, `${what}: every row exactly once, in order`);
}

describe('state safety: one process per pipeline, durable checkpoints', { concurrency: false }, () => {
  it('file state: a second run of the pipeline refuses (TRB3011); a SIGKILLed holder does not block the next start', { timeout: 180_000 }, async () => {
    await using db = await itemsDb();
    await using dir = new TempDir('tributary-lock-');
    const name = `lock_${uniq()}`;
    const cfg = config(dir, name, db, `state: { type: file, dir: ${dir.path}/state }`);
    const out = `${dir.path}/out.jsonl`;
    await using a = TributaryProcess.start(['run', '--config', cfg]);
    await a.waitForLog(running(name));

    const b = await TributaryProcess.run(['run', '--config', cfg], { timeoutMs: 60_000 });
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.stderr, /TRB3011 pipeline .* is already running \(pid (\d+) on host/);
    assert.match(b.stderr, new RegExp(`pid ${a.child.pid} on host`), 'the error names the holder');
    assert.match(b.stderr, /fix: stop the other `tributary run`/);
    assert.equal(a.running, true, 'the first process runs on');

    const ids = await insert(db, 1, 21);
    await waitForIds(out, ids, 'the holder delivers');
    await a.kill('SIGKILL');

    // The lock file is left behind by the kill; the next start takes it over at once.
    assert.ok(readFileSync(`${dir.path}/state/${name}/pipeline.lock`, 'utf8').includes(`"pid":${a.child.pid}`));
    await using c = TributaryProcess.start(['run', '--config', cfg]);
    await c.waitForLog(running(name));
    assert.match(c.stderr, new RegExp(`left by pid ${a.child.pid} .*not running: taken over`));
    ids.push(...(await insert(db, 21, 31)));
    await waitForIds(out, ids, 'after the takeover');
    assert.equal(await c.kill('SIGTERM'), 0);
    console.log(`# file lock: second run refused with TRB3011 naming pid ${a.child.pid}; after its SIGKILL the next start took over; ${ids.length} rows exactly once`);
  });

  it('redis state: refuses a Redis without AOF, or with appendfsync everysec (TRB3010)', { timeout: 120_000 }, async () => {
    await using db = await itemsDb();
    await using dir = new TempDir('tributary-redis-state-');
    for (const [opts, why] of [[{ appendonly: 'no' }, /appendonly is no/], [{ appendonly: 'yes', appendfsync: 'everysec' }, /appendfsync is everysec/]] as const) {
      await using redis = await RedisServer.start(opts);
      const name = `nodur_${uniq()}`;
      const r = await TributaryProcess.run(['run', '--config', config(dir, name, db, `state: { type: redis, url: ${redis.url} }`)], { timeoutMs: 60_000, cwd: dir.path });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /TRB3010 the Redis state store could lose acknowledged checkpoints/);
      assert.match(r.stderr, why);
      assert.match(r.stderr, /fix: run Redis with `appendonly yes` and `appendfsync always`/);
      assert.deepEqual(await redis.client((c) => c.keys('tributary:*')), [], 'nothing was written');
      console.log(`# ${JSON.stringify(opts)}: refused: ${/TRB3010[^\n]*/.exec(r.stderr)![0].slice(0, 120)}`);
    }
  });

  it('redis state: a second run refuses (TRB3011); a SIGKILLed holder is taken over; a lost lease stops the pipeline (TRB3012)', { timeout: 180_000 }, async () => {
    await using db = await itemsDb();
    await using dir = new TempDir('tributary-lease-');
    await using redis = await RedisServer.start({ appendonly: 'yes', appendfsync: 'always' });
    const name = `lease_${uniq()}`;
    const cfg = config(dir, name, db, `state: { type: redis, url: ${redis.url} }`);
    const out = `${dir.path}/out.jsonl`;
    const cwd = dir.path; // the sinks' local directory (./.tributary) lands in the temp dir
    await using a = TributaryProcess.start(['run', '--config', cfg], { cwd });
    await a.waitForLog(running(name));
    const b = await TributaryProcess.run(['run', '--config', cfg], { timeoutMs: 60_000, cwd });
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.stderr, new RegExp(`TRB3011 pipeline ${name} is already running \\(pid ${a.child.pid} on host .*Redis key tributary:${name}:lock`));
    const ids = await insert(db, 1, 11);
    await waitForIds(out, ids, 'the lease holder delivers');

    await a.kill('SIGKILL');
    await using c = TributaryProcess.start(['run', '--config', cfg], { cwd });
    await c.waitForLog(running(name), 20_000); // at once, not after the 15 s lease
    assert.match(c.stderr, /not running: taken over/);
    ids.push(...(await insert(db, 11, 21)));
    await waitForIds(out, ids, 'after the takeover');

    // Someone else takes the lease: the pipeline stops, and its checkpoints are refused.
    await redis.client((cl) => cl.set(`tributary:${name}:lock`, '{"token":"intruder","pid":1,"host":"elsewhere","since":"now"}'));
    assert.equal(await Promise.race([c.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]), 1);
    assert.match(c.stderr, /TRB3012 pipeline .* lost its lease/);
    console.log('# redis lease: second run refused with TRB3011; SIGKILLed holder taken over at once; a taken lease stopped the pipeline with TRB3012');
  });

  it('redis state with AOF always: a SIGKILL of Redis under a running pipeline loses no checkpoint, and nothing is lost or doubled', { timeout: 240_000 }, async () => {
    await using db = await itemsDb();
    await using dir = new TempDir('tributary-redis-kill-');
    await using redis = await RedisServer.start({ appendonly: 'yes', appendfsync: 'always' });
    const name = `rkill_${uniq()}`;
    const cfg = config(dir, name, db, `state: { type: redis, url: ${redis.url} }`);
    const out = `${dir.path}/out.jsonl`;
    const cwd = dir.path;
    await using p1 = TributaryProcess.start(['run', '--config', cfg], { cwd });
    await p1.waitForLog(running(name));

    const w = await db.connect();
    let next = 1;
    let stop = false;
    const writing = (async () => {
      while (!stop) {
        await w.query('INSERT INTO items VALUES ($1, $2)', [next, `v${next}`]);
        next++;
      }
    })();
    // Watch the checkpoint while the writer runs: the last one Redis acknowledged before the
    // kill is the one that must survive it.
    const offsetNow = async () => {
      const v = await redis.client((c) => c.hget(`tributary:${name}:sinks`, 'audit'));
      return v ? (JSON.parse(v) as { state: { offset: number } }).state.offset : 0;
    };
    await waitFor(async () => (await offsetNow()) > 2000, { timeoutMs: 60_000, what: 'checkpoints under load' });
    const seen = await offsetNow();
    await redis.kill();
    await p1.kill('SIGKILL');
    await redis.restart();
    const after = await offsetNow();
    assert.ok(after >= seen, `the checkpoint survived the Redis SIGKILL (offset ${after} >= ${seen} acknowledged before it)`);

    await using p2 = TributaryProcess.start(['run', '--config', cfg], { cwd });
    await p2.waitForLog(running(name));
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await writing;
    await w.end();
    const ids = Array.from({ length: next - 1 }, (_, i) => i + 1);
    await waitForIds(out, ids, 'after Redis and the pipeline restarted');
    assert.equal(await p2.kill('SIGTERM'), 0);
    console.log(`# redis SIGKILL under load: checkpoint offset ${seen} acknowledged before the kill, ${after} after the restart; ${ids.length} rows exactly once`);
  });

  it('jsonl: a copied config with only `name:` changed refuses (TRB3013) instead of emptying the other pipeline\'s file', { timeout: 120_000 }, async () => {
    await using db = await itemsDb();
    await using dir = new TempDir('tributary-copied-');
    const out = `${dir.path}/shared.jsonl`;
    const first = `first_${uniq()}`;
    await using a = TributaryProcess.start(['run', '--config', config(dir, first, db, `state: { type: file, dir: ${dir.path}/state }`, out)]);
    await a.waitForLog(running(first));
    const ids = await insert(db, 1, 31);
    await waitForIds(out, ids, 'the first pipeline');
    assert.equal(await a.kill('SIGTERM'), 0);
    const before = readFileSync(out, 'utf8');

    const copy = `copy_${uniq()}`;
    const r = await TributaryProcess.run(['run', '--config', config(dir, copy, db, `state: { type: file, dir: ${dir.path}/state }`, out)], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /TRB3013 jsonl sink audit: .*shared\.jsonl already holds \d+ bytes that this sink did not write/);
    assert.equal(readFileSync(out, 'utf8'), before, 'the first pipeline\'s file is intact');
    console.log(`# copied config: refused with TRB3013; the first pipeline's ${ids.length} lines are intact`);
  });
});
