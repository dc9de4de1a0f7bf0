import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { REDIS_URL } from '../helpers/env.js';
import { freePort } from '../helpers/embedded-pg.js';
import { InProcessPipeline, replay } from '../helpers/pipeline.js';
import type { LogStream } from '../../src/stream/log-stream.js';

type Row = Record<string, unknown>;
type Env = { op: string; key: Row | null; after: Row | null; source: { table: string; ts_ms: number; lsn: string } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const byId = (a: Row, b: Row) => Number(a.id) - Number(b.id);
const lines = (text: string) => text.split('\n').filter(Boolean);

/**
 * A `tributary run` of a Postgres pipeline (jsonl sink `audit` on every table, redis sink
 * `cache` on the stock table), fed a fixed workload of six transactions; between commits the
 * test records, with SQL, the instant and the tables' contents then.
 */
class PgLogRun implements AsyncDisposable {
  proc!: TributaryProcess;
  /** instants[i]: after transaction i (0: before the first), with both tables' rows then. */
  readonly instants: { ts: number; items: Row[]; stock: Row[] }[] = [];
  readonly token = 'log-tools-test-token-0123456789';
  readonly suffix = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  readonly name = `lt_${this.suffix}`;
  readonly stock = `stock_${this.suffix}`;
  readonly redis = new Redis(REDIS_URL);
  cfg!: string;
  port!: number;

  private constructor(
    readonly db: PgTestDb,
    readonly dir: TempDir,
  ) {}

  static async start(): Promise<PgLogRun> {
    const r = new PgLogRun(await PgTestDb.create('logtools'), new TempDir('tributary-logtools-'));
    await r.db.query(`CREATE TABLE items (id int PRIMARY KEY, name text, qty int); CREATE TABLE ${r.stock} (id int PRIMARY KEY, qty int)`);
    r.port = await freePort();
    r.cfg = r.dir.file(
      'pipeline.yaml',
      `name: ${r.name}
source:
  type: postgres
  url: ${r.db.url}
  tables: [public.items, public.${r.stock}]
  snapshot: never
  heartbeat_ms: 0
state: { type: file, dir: ${r.dir.path}/state }
sinks:
  - { name: audit, type: jsonl, path: ${r.dir.path}/audit.jsonl }
  - { name: cache, type: redis, url: ${REDIS_URL}, tables: [public.${r.stock}] }
http: { port: ${r.port}, auth_token: ${r.token} }
`,
    );
    await r.run();
    await r.workload();
    return r;
  }

  async run(): Promise<void> {
    this.proc = TributaryProcess.start(['run', '--config', this.cfg]);
    await this.proc.waitForLog(/pipeline \S+ running/, 60_000);
  }

  /** Six transactions; after each, the instant (floor ms, as ts_ms is) and the tables' rows. */
  private async workload(): Promise<void> {
    const s = this.stock;
    const txns = [
      `INSERT INTO items VALUES (1,'a',1),(2,'b',2),(3,'c',3),(4,'d',4),(5,'e',5); INSERT INTO ${s} VALUES (1,10),(2,20),(3,30)`,
      `UPDATE items SET qty = qty + 10 WHERE id = 1; DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (6,'f',6); UPDATE ${s} SET qty = 11 WHERE id = 1`,
      `UPDATE items SET name = 'c3' WHERE id = 3; UPDATE items SET qty = 40 WHERE id = 4; INSERT INTO items VALUES (7,'g',7); INSERT INTO ${s} VALUES (4,40)`,
      `TRUNCATE items; INSERT INTO items VALUES (10,'j',10),(11,'k',11); DELETE FROM ${s} WHERE id = 2`,
      `UPDATE items SET qty = 99 WHERE id = 10; INSERT INTO items VALUES (1,'a2',1); UPDATE ${s} SET qty = 31 WHERE id = 3; UPDATE ${s} SET qty = 41 WHERE id = 4`,
      `DELETE FROM items WHERE id = 11; UPDATE ${s} SET qty = 12 WHERE id = 1`,
    ];
    await this.record();
    for (const t of txns) {
      await sleep(20);
      await this.db.query(`BEGIN; ${t}; COMMIT`);
      await sleep(20);
      await this.record();
    }
    await waitFor(() => this.audit().length === 26, { timeoutMs: 60_000, what: 'the 26 events in the jsonl sink' });
  }

  private async record(): Promise<void> {
    const ts = Number((await this.db.query<{ ms: string }>('SELECT floor(extract(epoch from clock_timestamp()) * 1000)::bigint AS ms')).rows[0]!.ms);
    const items = (await this.db.query('SELECT id, name, qty FROM items ORDER BY id')).rows;
    const stock = (await this.db.query(`SELECT id, qty FROM ${this.stock} ORDER BY id`)).rows;
    this.instants.push({ ts, items, stock });
  }

  at(i: number): string {
    return new Date(this.instants[i]!.ts).toISOString();
  }

  /** The jsonl sink's lines. */
  audit(): string[] {
    try {
      return lines(readFileSync(join(this.dir.path, 'audit.jsonl'), 'utf8'));
    } catch {
      return [];
    }
  }

  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return TributaryProcess.run([...args, '--config', this.cfg], { timeoutMs: 60_000 });
  }

  api(path: string, init: RequestInit & { token?: boolean } = {}): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (init.token !== false) headers.authorization = `Bearer ${this.token}`;
    return fetch(`http://127.0.0.1:${this.port}${path}`, { ...init, headers });
  }

  /** The cache as {id: row} for the stock table. */
  async cache(): Promise<Row[]> {
    const keys = await this.redis.keys(`public.${this.stock}:*`);
    const rows: Row[] = [];
    for (const k of keys) rows.push(JSON.parse((await this.redis.get(k))!) as Row);
    return rows.sort(byId);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.proc?.[Symbol.asyncDispose]();
    const keys = await this.redis.keys(`public.${this.stock}:*`);
    if (keys.length) await this.redis.del(...keys);
    await this.redis.del(`tributary:fence:${this.name}:cache`);
    this.redis.disconnect();
    await this.db[Symbol.asyncDispose]();
    await this.dir[Symbol.asyncDispose]();
  }
}

describe('the log tools on a Postgres pipeline (issue 14: replay, time travel, visibility)', { concurrency: false, timeout: 600_000 }, () => {
  let r: PgLogRun;
  before(async () => {
    r = await PgLogRun.start();
  }, { timeout: 180_000 });
  after(async () => {
    await r?.[Symbol.asyncDispose]();
  });

  it('state --at gives, for each instant recorded between commits, exactly the rows SQL saw then: the whole table and one key', async () => {
    for (let i = 1; i < r.instants.length; i++) {
      const { items, stock } = r.instants[i]!;
      const whole = await r.cli(['state', '--table', 'items', '--at', r.at(i)]);
      assert.equal(whole.code, 0, whole.stderr);
      assert.deepEqual(lines(whole.stdout).map((l) => JSON.parse(l) as Row).sort(byId), items, `items at instant ${i}`);
      const st = await r.cli(['state', '--table', `public.${r.stock}`, '--at', r.at(i)]);
      assert.deepEqual(lines(st.stdout).map((l) => JSON.parse(l) as Row).sort(byId), stock, `stock at instant ${i}`);
      // One key: id 1 is inserted, updated, truncated away and inserted again.
      const one = await r.cli(['state', '--table', 'items', '--at', r.at(i), '--key', '{"id":1}']);
      assert.equal(one.code, 0, one.stderr);
      assert.deepEqual(lines(one.stdout).map((l) => JSON.parse(l) as Row), items.filter((x) => x.id === 1), `items id 1 at instant ${i}`);
    }
    // Before the first transaction: said so, exit 1.
    const early = await r.cli(['state', '--table', 'items', '--at', r.at(0)]);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /TRB5003 .* is before the first transaction in the log/);
  });

  it('log read prints the retained envelopes exactly as stored, filtered by table, key and range', async () => {
    const audit = r.audit();
    const env = audit.map((l) => JSON.parse(l) as Env);
    const all = await r.cli(['log', 'read']);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(lines(all.stdout), audit, 'every event, byte for byte as the jsonl sink wrote it');
    const items = await r.cli(['log', 'read', '--table', 'items']);
    assert.deepEqual(lines(items.stdout), audit.filter((_, i) => env[i]!.source.table === 'items'));
    const key1 = audit.filter((_, i) => env[i]!.source.table === 'items' && env[i]!.key?.id === 1);
    const byIndex = await r.cli(['log', 'read', '--table', 'items', '--key', '{"id":1}']);
    assert.deepEqual(lines(byIndex.stdout), key1, 'one key through the key index');
    const anyTable = await r.cli(['log', 'read', '--key', '{"id": 1}']);
    assert.deepEqual(lines(anyTable.stdout), audit.filter((_, i) => env[i]!.key?.id === 1), 'one key in every table (a scan)');
    // Transactions committed after instant 2 and at or before instant 4: the third and fourth.
    const range = await r.cli(['log', 'read', '--from', r.at(2), '--to', r.at(4)]);
    const want = audit.filter((_, i) => env[i]!.source.ts_ms > r.instants[2]!.ts && env[i]!.source.ts_ms <= r.instants[4]!.ts);
    assert.equal(want.length, 8);
    assert.deepEqual(lines(range.stdout), want);
    // From a row's LSN: its whole transaction and what follows (the fifth transaction's first event).
    const fifth = env.findIndex((e) => e.source.ts_ms > r.instants[4]!.ts);
    const fromLsn = await r.cli(['log', 'read', '--from', env[fifth + 1]!.source.lsn]);
    assert.deepEqual(lines(fromLsn.stdout), audit.slice(fifth));
    const limited = await r.cli(['log', 'read', '--table', 'items', '--limit', '2']);
    assert.deepEqual(lines(limited.stdout), audit.filter((_, i) => env[i]!.source.table === 'items').slice(0, 2));
    const bad = await r.cli(['log', 'read', '--from', 'yesterday']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /TRB5005 --from "yesterday" is not earliest, latest/);
  });

  it('log info shows offsets, commit times, bytes, segments, the horizon and each sink\'s offset and lag', async () => {
    const res = await r.cli(['log', 'info', '--json']);
    assert.equal(res.code, 0, res.stderr);
    type Info = {
      pipeline: string;
      dir: string;
      offsets: { first: number; last: number; durableEnd: number; committedEnd: number };
      times: { firstCommit: string; lastCommit: string };
      lastCommit: { offset: number; position: string };
      bytes: number;
      segments: number;
      horizon: unknown;
      sinks: { name: string; offset: number; lag: { events: number; bytes: number; seconds: number } }[];
    };
    const info = JSON.parse(res.stdout) as Info;
    const env = r.audit().map((l) => JSON.parse(l) as Env);
    assert.equal(info.pipeline, r.name);
    // 26 events and 6 commit markers, nothing else (no heartbeats).
    assert.deepEqual(info.offsets, { first: 0, last: 31, durableEnd: 32, committedEnd: 32 });
    assert.equal(info.lastCommit.offset, 31);
    assert.equal(info.times.firstCommit, new Date(env[0]!.source.ts_ms).toISOString());
    assert.equal(info.times.lastCommit, new Date(env[env.length - 1]!.source.ts_ms).toISOString());
    const logs = readdirSync(info.dir).filter((f) => f.endsWith('.log'));
    assert.equal(info.segments, logs.length);
    assert.equal(info.bytes, logs.reduce((n, f) => n + statSync(join(info.dir, f)).size, 0));
    assert.equal(info.horizon, null);
    await waitFor(async () => {
      const now = JSON.parse((await r.cli(['log', 'info', '--json'])).stdout) as Info;
      return now.sinks.every((s) => s.offset === 32);
    }, { what: 'both sinks committed at the end' });
    const again = JSON.parse((await r.cli(['log', 'info', '--json'])).stdout) as Info;
    assert.deepEqual(again.sinks.map((s) => [s.name, s.offset, s.lag]), [
      ['audit', 32, { events: 0, bytes: 0, seconds: 0 }],
      ['cache', 32, { events: 0, bytes: 0, seconds: 0 }],
    ]);
    const text = await r.cli(['log', 'info']);
    assert.match(text.stdout, /offsets {3}first 0, last 31, durable end 32/);
    assert.match(text.stdout, /horizon {3}none: retention has removed nothing/);
    assert.match(text.stdout, /\n {2}audit +32 +0 +0 B +0\.0 /);
    const status = await r.cli(['status']);
    assert.match(status.stdout, /log: offsets 0\.\.31 \(durable end 32\)/);
    assert.match(status.stdout, /sink audit: position .*, offset 32 \(0 behind the log/);
  });

  it('HTTP: GET /log, /log/read and /state answer with the token and refuse without it; /metrics and /status show the log', async () => {
    assert.equal((await r.api('/log', { token: false })).status, 401);
    assert.equal((await r.api('/state?table=items&at=now', { token: false })).status, 401);
    assert.equal((await r.api('/log/read', { token: false })).status, 401);
    const log = (await (await r.api('/log')).json()) as { pipelines: { pipeline: string; offsets: { durableEnd: number }; sinks: { name: string }[] }[] };
    assert.equal(log.pipelines[0]!.pipeline, r.name);
    assert.equal(log.pipelines[0]!.offsets.durableEnd, 32);
    assert.deepEqual(log.pipelines[0]!.sinks.map((s) => s.name), ['audit', 'cache']);
    // Paged: 10 events, then from `next` on.
    const audit = r.audit();
    const got: string[] = [];
    let from = 'earliest';
    for (let page = 0; page < 5; page++) {
      const res = await r.api(`/log/read?from=${from}&limit=10`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { events: { offset: number; event: unknown }[]; next: number | null };
      got.push(...body.events.map((e) => JSON.stringify(e.event)));
      if (body.next === null) break;
      from = String(body.next);
    }
    assert.deepEqual(got, audit.map((l) => JSON.stringify(JSON.parse(l))));
    const keyed = (await (await r.api(`/log/read?table=items&key=${encodeURIComponent('{"id":1}')}`)).json()) as { events: unknown[] };
    assert.equal(keyed.events.length, 3, 'id 1: inserted, updated, inserted again after the truncate');
    const state = (await (await r.api(`/state?table=items&at=${r.at(3)}`)).json()) as { rows: Row[]; cut: number };
    assert.deepEqual(state.rows.sort(byId), r.instants[3]!.items);
    const one = (await (await r.api(`/state?table=items&at=${r.at(5)}&key=${encodeURIComponent('{"id":10}')}`)).json()) as { rows: Row[] };
    assert.deepEqual(one.rows, [{ id: 10, name: 'j', qty: 99 }]);
    const early = await r.api(`/state?table=items&at=${r.at(0)}`);
    assert.equal(early.status, 422);
    assert.equal(((await early.json()) as { code: string }).code, 'TRB5003');
    assert.equal((await r.api('/state?table=items')).status, 400);
    assert.equal((await r.api('/rewind', { method: 'POST', body: JSON.stringify({ sink: 'audit', to: 'latest', dry_run: true }), token: false })).status, 401);
    await waitFor(async () => /tributary_log_last_offset\{pipeline="[^"]+"\} 31/.test(await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text()), { what: 'log gauges' });
    const m = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
    for (const g of ['tributary_log_bytes', 'tributary_log_first_offset', 'tributary_log_first_timestamp_seconds', 'tributary_log_last_timestamp_seconds', 'tributary_log_horizon_offset']) assert.match(m, new RegExp(`${g}\\{pipeline="${r.name}"\\} \\d`), g);
    assert.match(m, new RegExp(`tributary_sink_lag_bytes\\{pipeline="${r.name}",sink="cache"\\} 0`));
    assert.match(m, new RegExp(`tributary_sink_committed_offset\\{pipeline="${r.name}",sink="audit"\\} 32`));
    const status = (await (await r.api('/status')).json()) as { pipelines: { log: { offsets: { durableEnd: number } }; sinks: { name: string; lag: { events: number } }[] }[] };
    assert.equal(status.pipelines[0]!.log.offsets.durableEnd, 32);
    assert.deepEqual(status.pipelines[0]!.sinks.map((s) => s.lag?.events), [0, 0]);
  });

  it('rewind to a time, of the running pipeline over HTTP, re-delivers exactly the events committed after it; the other sink is undisturbed', async () => {
    const before = r.audit();
    const env = before.map((l) => JSON.parse(l) as Env);
    const after3 = before.filter((_, i) => env[i]!.source.ts_ms > r.instants[3]!.ts);
    assert.equal(after3.length, 10);
    const dry = await r.api('/rewind', { method: 'POST', body: JSON.stringify({ sink: 'audit', to: r.at(3), dry_run: true }) });
    const plan = (await dry.json()) as { events: number; transactions: number; offset: number; previousOffset: number };
    assert.equal(dry.status, 200, JSON.stringify(plan));
    assert.deepEqual([plan.events, plan.transactions, plan.previousOffset], [10, 3, 32]);
    assert.deepEqual(r.audit(), before, 'a dry run changes nothing');
    const res = await r.api('/rewind', { method: 'POST', body: JSON.stringify({ sink: 'audit', to: r.at(3) }) });
    assert.equal(res.status, 200, await res.clone().text());
    await waitFor(() => r.audit().length >= before.length + after3.length, { what: 'the replay in the jsonl sink' });
    await sleep(500);
    assert.deepEqual(r.audit(), [...before, ...after3], 'appended again: exactly the events committed after the time, in order');
    assert.match(r.proc.stdout + r.proc.stderr, /sink audit rewound to/);
    assert.doesNotMatch(r.proc.stdout + r.proc.stderr, /sink cache rewound/);
    const info = JSON.parse((await r.cli(['log', 'info', '--json'])).stdout) as { sinks: { name: string; offset: number }[] };
    assert.equal(info.sinks.find((s) => s.name === 'cache')!.offset, 32);
    // A target before the log's start cannot exist here; one that is not a target is refused.
    const bad = await r.api('/rewind', { method: 'POST', body: JSON.stringify({ sink: 'audit', to: 'nope' }) });
    assert.equal(bad.status, 400);
    assert.equal((await r.api('/rewind', { method: 'POST', body: JSON.stringify({ sink: 'nosuch', to: 'latest' }) })).status, 404);
  });

  it('the Redis cache that lost the writes after a time converges to the table once rewound there (CLI, through the running process)', async () => {
    const table = r.instants[r.instants.length - 1]!.stock;
    assert.deepEqual(await r.cache(), table);
    // A broken release lost what it was sent after instant 4: the rows and their fences.
    const env = r.audit().map((l) => JSON.parse(l) as Env);
    const touched = new Set(env.filter((e) => e.source.table === r.stock && e.source.ts_ms > r.instants[4]!.ts).map((e) => String(e.key!.id)));
    assert.deepEqual([...touched].sort(), ['1', '3', '4']);
    for (const id of touched) {
      await r.redis.del(`public.${r.stock}:${id}`);
      await r.redis.hdel(`tributary:fence:${r.name}:cache`, `public.${r.stock}:${id}`);
    }
    assert.notDeepEqual(await r.cache(), table);
    const dry = await r.cli(['rewind', '--sink', 'cache', '--to', r.at(4), '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /dry run: sink cache of pipeline \S+ would read again from offset \d+\n {2}it would receive again: 3 events in 2 transactions \(it had committed up to offset 32\)/);
    const res = await r.cli(['rewind', '--sink', 'cache', '--to', r.at(4)]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /rewound to offset \d+ \(the running pipeline restarted that sink\)/);
    await waitFor(async () => JSON.stringify(await r.cache()) === JSON.stringify(table), { what: 'the cache to equal the table' });
  });

  it('rewind of a stopped pipeline to a source position (an LSN) takes the lock, keeps the jsonl offset, and the sink appends the replay at the next run', async () => {
    assert.equal(await r.proc.kill('SIGTERM'), 0);
    const before = r.audit();
    const env = before.slice(0, 26).map((l) => JSON.parse(l) as Env);
    // The sixth transaction's row: its LSN names that transaction.
    const sixth = env.findIndex((e) => e.source.ts_ms > r.instants[5]!.ts);
    const res = await r.cli(['rewind', '--sink', 'audit', '--to', env[sixth]!.source.lsn, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const plan = JSON.parse(res.stdout) as { events: number; transactions: number; rebuild: boolean };
    assert.deepEqual([plan.events, plan.transactions, plan.rebuild], [2, 1, false]);
    await r.run();
    await waitFor(() => r.audit().length >= before.length + 2, { what: 'the replay after the restart' });
    await sleep(500);
    assert.deepEqual(r.audit(), [...before, ...before.slice(sixth, 26)]);
    // While it runs, the lock is held: the CLI goes through the HTTP API (with the token).
    const live = await r.cli(['rewind', '--sink', 'audit', '--to', 'latest']);
    assert.equal(live.code, 0, live.stderr);
    assert.match(live.stdout, /restarted that sink/);
  });
});

describe('retention in the running pipeline, and a rewind to earliest past it', { concurrency: false }, () => {
  it('retention trims what every sink has read; rewound to earliest, the sink reads the compacted state, then the log, and its replay equals the table', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('logret');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int)');
    await using p = await InProcessPipeline.start({
      name: `lr_${process.pid}_${Math.floor(Math.random() * 1e6)}`,
      source: `type: postgres\nurl: ${db.url}\ntables: [public.t]\nsnapshot: never\nheartbeat_ms: 0`,
      extraYaml: 'stream: { type: log, segment_bytes: 2048, retention: { max_age: 1ms } }',
    });
    for (let i = 0; i < 20; i++) {
      await db.query(`BEGIN; INSERT INTO t SELECT g, ${i} FROM generate_series(${i * 10}, ${i * 10 + 9}) g ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v; UPDATE t SET v = v + 100 WHERE id < ${i * 5}; DELETE FROM t WHERE id = ${i * 3}; COMMIT`);
    }
    const pl = p.pipeline;
    const stream = pl.stream as LogStream;
    // The sink holds the table (every transaction reached the log), and committed the end of it.
    const table0 = JSON.stringify((await db.query('SELECT id, v FROM t ORDER BY id')).rows);
    await waitFor(() => JSON.stringify([...replay(p.events()).values()].sort(byId)) === table0 && pl.runners[0]!.offset === stream.log.lastCommit!.offset + 1, { timeoutMs: 60_000, what: 'the sink to commit the end of the log' });
    const before = p.events().length;
    assert.ok(stream.log.segmentList.length > 3);
    await sleep(5);
    const r = await pl.retention!.runOnce();
    assert.ok(r.removed > 0 && stream.log.start > 0 && stream.compacted!.horizon === stream.log.start, JSON.stringify(r));
    await assert.rejects(pl.rewindSink('audit', '0', false), (e: Error & { code?: string }) => e.code === 'TRB5010');
    const plan = await pl.rewindSink('audit', 'earliest', false);
    assert.equal(plan.rebuild, true);
    assert.equal(plan.offset, stream.log.start);
    assert.ok(plan.compactedRows! > 0 && plan.events! > 0);
    await waitFor(() => p.events().length >= before + plan.compactedRows! + plan.events!, { timeoutMs: 60_000, what: 'the compacted state and the tail' });
    const replayed = p.events().slice(before);
    assert.equal(replayed.length, plan.compactedRows! + plan.events!);
    assert.ok(replayed.slice(0, plan.compactedRows!).every((e) => e.op === 'r' || e.op === 'd'), 'the compacted state first: rows as reads (and recent deletes)');
    const table = (await db.query('SELECT id, v FROM t ORDER BY id')).rows as Row[];
    assert.deepEqual([...replay(replayed).values()].sort(byId), table);
    // Checkpointed past the compacted state: a restart does not read it again.
    await waitFor(() => pl.runners[0]!.offset === stream.log.lastCommit!.offset + 1 && !pl.runners[0]!.rebuild, { what: 'the checkpoint after the rebuild' });
  });
});
