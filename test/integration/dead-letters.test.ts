import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { REDIS_URL } from '../helpers/env.js';
import { Redis } from 'ioredis';
import { RedisStateStore } from '../../src/state/redis-store.js';

/**
 * Dead letters end to end: a Postgres source, a postgres sink whose target table gets a CHECK
 * constraint (the "bug" that makes it reject rows) and a jsonl sink beside it, run by
 * `tributary run`; then `tributary dlq` and the HTTP API, live and offline.
 */
describe('dead letters you can redrive', { concurrency: false }, () => {
  it('a rejected row parks with later events of its key behind it; list/show/discard, then retry live (HTTP) and offline (CLI) deliver in key order until the target equals the table', { timeout: 240_000 }, async () => {
    await using src = await PgTestDb.create('dlq_src');
    await using dst = await PgTestDb.create('dlq_dst');
    await using dir = new TempDir('tributary-dlq-');
    await src.query('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)');
    const token = 'dead-letter-test-token-0123456789';
    const port = await freePort();
    const name = `dlq_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const cfg = dir.file(
      'pipeline.yaml',
      `name: ${name}
source:
  type: postgres
  url: ${src.url}
  tables: [public.t]
  snapshot: never
  heartbeat_ms: 0
state: { type: file, dir: ${dir.path}/state }
sinks:
  - { name: audit, type: jsonl, path: ${dir.path}/audit.jsonl }
  - { name: mirror, type: postgres, url: ${dst.url}, schema: mirror, retry: { attempts: 1, backoff_ms: 10 } }
http: { port: ${port}, auth_token: ${token} }
`,
    );
    const cli = (args: string[]) => TributaryProcess.run(['dlq', ...args, '--config', cfg], { timeoutMs: 60_000 });
    const api = (path: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${port}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const mirror = async () => (await dst.query<{ id: number; v: number }>('SELECT id::int AS id, v::int AS v FROM mirror.t ORDER BY id')).rows;
    const table = async () => (await src.query<{ id: number; v: number }>('SELECT id, v FROM t ORDER BY id')).rows;
    const parked = async () => {
      const r = await cli(['list', '--sink', 'mirror', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { depth: number; items: { id: string; key: { id: number }; attempts: number; error: { code?: string; message: string }; event: { after: { id: number; v: number } } }[] };
    };

    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(/pipeline \S+ running/, 60_000);
    await src.query('INSERT INTO t VALUES (1, 1)');
    await waitFor(async () => (await dst.query("SELECT 1 FROM pg_tables WHERE schemaname = 'mirror' AND tablename = 't'")).rowCount && (await mirror()).length === 1, { timeoutMs: 60_000, what: 'the mirror table' });
    // The "bug": the target refuses negative values.
    await dst.query('ALTER TABLE mirror.t ADD CONSTRAINT nonneg CHECK (v >= 0)');
    for (const sql of ['INSERT INTO t VALUES (2, -1)', 'UPDATE t SET v = -2 WHERE id = 2', 'UPDATE t SET v = 7 WHERE id = 2', 'INSERT INTO t VALUES (3, 3)', 'INSERT INTO t VALUES (5, -5)', 'INSERT INTO t VALUES (6, 6)']) await src.query(sql);
    await waitFor(async () => (await mirror()).some((r) => r.id === 6), { timeoutMs: 60_000, what: 'other keys to flow past the rejected rows' });

    // list: the rejected rows with their errors, and key 2's later changes parked behind its first.
    const list = await parked();
    assert.equal(list.depth, 4);
    assert.deepEqual(list.items.map((i) => [i.key.id, i.event.after.v]), [[2, -1], [2, -2], [2, 7], [5, -5]], 'in stream order');
    assert.match(list.items[0]!.error.message, /nonneg|check constraint/);
    assert.equal(list.items[0]!.attempts, 1, 'the sink says the row can never go in (PoisonEventError): no retries before parking');
    assert.deepEqual(list.items.slice(1, 3).map((i) => [i.error.code, i.attempts]), [['TRB3030', 0], ['TRB3030', 0]], 'held behind, not tried');
    assert.deepEqual((await mirror()).map((r) => r.id), [1, 3, 6], 'nothing of keys 2 and 5 reached the target');
    assert.equal(readFileSync(join(dir.path, 'audit.jsonl'), 'utf8').trim().split('\n').length, 7, 'the jsonl sink got every event');

    const show = await cli(['show', '--sink', 'mirror', '--id', list.items[0]!.id]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /attempts\s+1/);
    assert.match(show.stdout, /nonneg|check constraint/);
    assert.match(show.stdout, /"after":\{"id":2,"v":-1\}/);

    // The HTTP API: depth per sink, pages, one item, the depth gauge.
    const depth = (await (await api('/dlq')).json()) as { sinks: { pipeline: string; sink: string; depth: number; oldest_at: string | null }[] };
    assert.deepEqual(depth.sinks.map((s) => [s.sink, s.depth]), [['audit', 0], ['mirror', 4]]);
    assert.ok(depth.sinks[1]!.oldest_at && !Number.isNaN(Date.parse(depth.sinks[1]!.oldest_at)));
    const p1 = (await (await api('/dlq/list?sink=mirror&limit=3')).json()) as { depth: number; items: { id: string }[]; next: string | null };
    assert.equal(p1.items.length, 3);
    const p2 = (await (await api(`/dlq/list?sink=mirror&limit=3&after=${p1.next}`)).json()) as { items: { id: string }[]; next: string | null };
    assert.deepEqual(p2.items.map((i) => i.id), [list.items[3]!.id]);
    assert.equal(p2.next, null);
    const one = (await (await api(`/dlq/show?sink=mirror&id=${list.items[3]!.id}`)).json()) as { key: unknown; event: { after: unknown } };
    assert.deepEqual(one.event.after, { id: 5, v: -5 });
    assert.equal((await api('/dlq/show?sink=mirror&id=nope')).status, 404);
    const status = (await (await api('/status')).json()) as { pipelines: { sinks: { name: string; deadLetters: number }[] }[] };
    assert.equal(status.pipelines[0]!.sinks.find((x) => x.name === 'mirror')!.deadLetters, 4);
    assert.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), new RegExp(`tributary_dead_letter_depth\\{pipeline="${name}",sink="mirror"\\} 4`));
    // Behind the admin token like every route that changes something.
    assert.equal((await fetch(`http://127.0.0.1:${port}/dlq/retry`, { method: 'POST', body: JSON.stringify({ sink: 'mirror', all: true }) })).status, 401);
    assert.equal((await fetch(`http://127.0.0.1:${port}/dlq/list?sink=mirror`)).status, 401);
    // Retrying a later event of key 2 alone would overtake its first: refused.
    const early = await api('/dlq/retry', { sink: 'mirror', ids: [list.items[2]!.id] });
    assert.equal(early.status, 409);
    assert.equal(((await early.json()) as { code: string }).code, 'TRB3033');

    // discard (CLI, the running process does it) records the reason.
    const discard = await cli(['discard', '--sink', 'mirror', '--id', list.items[3]!.id, '--reason', 'a test row nobody needs']);
    assert.equal(discard.code, 0, discard.stderr);
    assert.match(discard.stdout, /discarded 1 dead letter\(s\) \(by the running pipeline\)/);
    const history = readFileSync(join(dir.path, 'state', name, 'dlq.mirror.history.jsonl'), 'utf8');
    assert.match(history, /"outcome":"discarded","reason":"a test row nobody needs"/);
    await proc.waitForLog(/discarded 1 dead letter\(s\): a test row nobody needs/);

    // Fix the cause, retry everything over HTTP: key 2 arrives in order and ends at 7.
    await dst.query('ALTER TABLE mirror.t DROP CONSTRAINT nonneg');
    const retry = await api('/dlq/retry', { sink: 'mirror', all: true });
    assert.equal(retry.status, 200);
    assert.deepEqual(await retry.json(), { retried: 3, delivered: 3, parked: 0 });
    // Key 5 is no longer held: its delete flows (the discarded insert never reached the target).
    await src.query('DELETE FROM t WHERE id = 5');
    await src.query('UPDATE t SET v = 8 WHERE id = 2');
    await waitFor(async () => JSON.stringify(await mirror()) === JSON.stringify(await table()), { timeoutMs: 30_000, what: 'the mirror to equal the table' });
    assert.equal((await parked()).depth, 0);

    // Offline: park two changes of a key, stop the pipeline, fix, retry from the CLI.
    await dst.query('ALTER TABLE mirror.t ADD CONSTRAINT nonneg CHECK (v >= 0)');
    await src.query('INSERT INTO t VALUES (4, -4)');
    await src.query('UPDATE t SET v = 9 WHERE id = 4');
    await waitFor(async () => (await parked()).depth === 2, { timeoutMs: 30_000, what: 'two dead letters of key 4' });
    // The sink's last write failed; a live retry succeeds; a lone bad row right after parks,
    // with its later change behind it. (This sink rejects with PoisonEventError, which parks
    // whatever came before; a plain Error after a retry is the browser test's case.)
    await dst.query('ALTER TABLE mirror.t DROP CONSTRAINT nonneg');
    assert.deepEqual(await (await api('/dlq/retry', { sink: 'mirror', all: true })).json(), { retried: 2, delivered: 2, parked: 0 });
    await dst.query('ALTER TABLE mirror.t ADD CONSTRAINT nonneg CHECK (v >= 0)');
    await src.query('INSERT INTO t VALUES (7, -7)');
    await src.query('UPDATE t SET v = 10 WHERE id = 7');
    await waitFor(async () => (await parked()).depth === 2, { timeoutMs: 30_000, what: 'two dead letters of key 7 after a successful retry' });
    assert.equal(await proc.kill('SIGTERM'), 0);
    await dst.query('ALTER TABLE mirror.t DROP CONSTRAINT nonneg');
    const offline = await cli(['retry', '--sink', 'mirror', '--all']);
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.stdout, /retried 2 dead letter\(s\): 2 delivered, 0 still parked/);
    assert.deepEqual(await mirror(), await table(), 'the target equals the table');
    assert.deepEqual((await mirror()).find((r) => r.id === 4), { id: 4, v: 9 }, 'key 4 in order: 9 after -4');
    assert.deepEqual((await mirror()).find((r) => r.id === 7), { id: 7, v: 10 }, 'key 7 in order: 10 after -7');
    const empty = await cli(['list', '--sink', 'mirror']);
    assert.match(empty.stdout, /no dead letters/);
  });
});

describe('dead letters in the Redis state store', { concurrency: false }, () => {
  it('are shared through Redis, kept in id order with their history, and written only under the pipeline\'s lease', async () => {
    const pipeline = `dlqr_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const owner = new RedisStateStore(REDIS_URL);
    const other = new RedisStateStore(REDIS_URL);
    const redis = new Redis(REDIS_URL);
    try {
      await owner.lease(pipeline, undefined, () => undefined);
      const q = owner.deadLetters(pipeline, 'cache');
      const it = (id: string, v: number) => ({ id, pipeline, sink: 'cache', table: 'public.t', key: { id: 1 }, position: '0/1', index: 0, attempts: 1, error: { message: 'no' }, first_failed_at: 'a', last_failed_at: 'a', envelope: `{"after":{"id":1,"v":${v},"big":12345678901234567890}}` });
      await q.put([it('02', 2), it('01', 1)]);
      // Another process (the CLI on another machine) reads the same dead letters.
      assert.deepEqual((await other.deadLetters(pipeline, 'cache').list()).map((i) => i.id), ['01', '02']);
      assert.match((await other.deadLetters(pipeline, 'cache').list())[0]!.envelope, /12345678901234567890/);
      await q.remove([it('01', 1)], { outcome: 'discarded', reason: 'not needed', at: 'now' });
      assert.deepEqual((await q.list()).map((i) => i.id), ['02']);
      assert.deepEqual(await q.history(), [{ outcome: 'discarded', reason: 'not needed', at: 'now', ids: ['01'] }]);
      // Someone else holds the lease now: this process's dead-letter writes are refused.
      await redis.set(`tributary:${pipeline}:lock`, 'someone else');
      await assert.rejects(q.put([it('03', 3)]), { code: 'TRB3012' });
      assert.deepEqual((await other.deadLetters(pipeline, 'cache').list()).map((i) => i.id), ['02']);
    } finally {
      await redis.del(`tributary:${pipeline}:lock`, `tributary:${pipeline}:dlq:cache`, `tributary:${pipeline}:dlq:cache:history`);
      redis.disconnect();
      await owner.close();
      await other.close();
    }
  });
});

describe('dead letters with state: {type: redis}', { concurrency: false }, () => {
  it('are parked in Redis by the running pipeline, listed by another process, and retried offline under the lease', { timeout: 120_000 }, async () => {
    await using src = await PgTestDb.create('dlqr_src');
    await using dst = await PgTestDb.create('dlqr_dst');
    await using dir = new TempDir('tributary-dlqr-');
    const redis = new Redis(REDIS_URL);
    const name = `dlqr_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    try {
      await src.query('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)');
      const cfg = dir.file(
        'pipeline.yaml',
        `name: ${name}
source: { type: postgres, url: ${src.url}, tables: [public.t], snapshot: never, heartbeat_ms: 0 }
state: { type: redis, url: ${REDIS_URL}, check_durability: false }
stream: { type: memory }
sinks:
  - { name: mirror, type: postgres, url: ${dst.url}, schema: mirror }
http: { port: 0 }
`,
      );
      const cli = (args: string[]) => TributaryProcess.run(['dlq', ...args, '--config', cfg], { timeoutMs: 60_000 });
      const mirror = async () => (await dst.query<{ id: number; v: number }>('SELECT id::int AS id, v::int AS v FROM mirror.t ORDER BY id')).rows;
      await using proc = TributaryProcess.start(['run', '--config', cfg]);
      await proc.waitForLog(/pipeline \S+ running/, 60_000);
      await src.query('INSERT INTO t VALUES (1, 1)');
      await waitFor(async () => (await dst.query("SELECT 1 FROM pg_tables WHERE schemaname = 'mirror' AND tablename = 't'")).rowCount && (await mirror()).length === 1, { timeoutMs: 60_000, what: 'the mirror table' });
      await dst.query('ALTER TABLE mirror.t ADD CONSTRAINT nonneg CHECK (v >= 0)');
      await src.query('INSERT INTO t VALUES (2, -2)');
      await waitFor(async () => (await redis.hlen(`tributary:${name}:dlq:mirror`)) === 1, { timeoutMs: 30_000, what: 'the dead letter in Redis' });
      const list = await cli(['list', '--sink', 'mirror']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /1 dead letter\(s\)/);
      assert.match(list.stdout, /public\.t\s+\{"id":2\}\s+1\s/);
      const status = await TributaryProcess.run(['status', '--config', cfg]);
      assert.match(status.stdout, /sink mirror: .*, 1 dead letter\(s\) \(tributary dlq list --sink mirror\)/);
      // The running process holds the lease and this config has no HTTP API: refused, with the fix.
      const refused = await cli(['retry', '--sink', 'mirror', '--all']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /TRB3032 .*turns the HTTP API off/);
      assert.equal(await proc.kill('SIGTERM'), 0);
      await dst.query('ALTER TABLE mirror.t DROP CONSTRAINT nonneg');
      const retry = await cli(['retry', '--sink', 'mirror', '--all', '--json']);
      assert.equal(retry.code, 0, retry.stderr);
      assert.deepEqual(JSON.parse(retry.stdout), { retried: 1, delivered: 1, parked: 0 });
      assert.deepEqual(await mirror(), [{ id: 1, v: 1 }, { id: 2, v: -2 }]);
      assert.equal(await redis.hlen(`tributary:${name}:dlq:mirror`), 0);
      assert.match((await redis.lrange(`tributary:${name}:dlq:mirror:history`, 0, 0))[0]!, /"outcome":"delivered"/);
    } finally {
      const keys = await redis.keys(`tributary:${name}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
