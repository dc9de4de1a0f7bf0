/**
 * Issue 12, section 4: equal versions inside big transactions lost updates. One Postgres
 * transaction of 70,000 events updates one key twice, both times past the 65,535th event
 * (where the version's index part used to be clamped), 4,399 events apart, so the two
 * updates reach each sink in different batches. A real `tributary run` delivers it into
 * every keyed sink, each against its real server (Elasticsearch: the stub): every one must
 * end with the last value, and hold every row.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { Redis } from 'ioredis';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { REDIS_URL } from '../helpers/env.js';
import { ClickHouseServer } from '../helpers/servers/clickhouse.js';
import { EsStub } from '../helpers/servers/es-stub.js';
import { SearchdServer } from '../helpers/servers/searchd.js';

const ROWS_BEFORE = 65_600; // events 0..65,599
const ROWS_AFTER = 4_398; // events 65,601..69,998
const TOTAL_ROWS = ROWS_BEFORE + ROWS_AFTER;
const EVENTS = TOTAL_ROWS + 2;

const ch = await ClickHouseServer.start();
const es = await EsStub.start();
const sd = await SearchdServer.start({ indexes: { items: ['rt_field = name', 'rt_attr_string = name_s'] } });
const redis = new Redis(REDIS_URL);
const prefix = `bigtxn${process.pid}`;
after(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  for (let i = 0; i < keys.length; i += 10_000) await redis.del(...keys.slice(i, i + 10_000));
  await redis.quit();
  await sd[Symbol.asyncDispose]();
  await es[Symbol.asyncDispose]();
  await ch[Symbol.asyncDispose]();
});

function checkpoint(dir: string, pipeline: string, sink: string): { position: string } | null {
  const p = join(dir, 'state', pipeline, `sink.${encodeURIComponent(sink)}.json`);
  try {
    return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null;
  } catch {
    return null; // mid-rename
  }
}

describe('a 70,000-event transaction that updates one key twice past event 65,535', { concurrency: false }, () => {
  it('every keyed sink ends with the last value (redis, postgres, duckdb, clickhouse, elasticsearch, manticore)', { timeout: 600_000 }, async () => {
    await using src = await PgTestDb.create('bigtxn_src');
    await using dst = await PgTestDb.create('bigtxn_dst');
    await using dir = new TempDir('tributary-bigtxn-');
    await src.query('CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)');
    const name = `bigtxn_${process.pid}_${Math.floor(Math.random() * 1e5)}`;
    const chDb = `bigtxn_${process.pid}`;
    const sinks = ['audit', 'cache', 'mirror', 'duck', 'warehouse', 'search', 'fulltext'];
    const cfg = dir.file(
      'big.yaml',
      `name: ${name}
source:
  type: postgres
  url: ${src.url}
  tables: [public.items]
  snapshot: never
  status_interval_ms: 200
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/audit.jsonl
  - name: cache
    type: redis
    url: ${REDIS_URL}
    key: "${prefix}:{table}:{key}"
    fence_key: "${prefix}:fences"
  - name: mirror
    type: postgres
    url: ${dst.url}
    schema: mirror
  - name: duck
    type: duckdb
    path: ${dir.path}/mirror.duckdb
  - name: warehouse
    type: clickhouse
    url: ${ch.url}
    database: ${chDb}
  - name: search
    type: elasticsearch
    url: ${es.url}
    index: items
  - name: fulltext
    type: manticore
    url: ${sd.url}
    index: items
    fields: [name]
    attributes: { name: name_s }
http: { port: 0 }
`,
    );
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(new RegExp(`pipeline ${name} running`), 60_000);

    // One transaction: 65,600 inserts, key 1 updated to 'first' (event 65,600), 4,398 more
    // inserts, key 1 updated to 'last' (event 69,999).
    const w = await src.connect();
    try {
      await w.query('BEGIN');
      await w.query(`INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, ${ROWS_BEFORE}) g`);
      await w.query(`UPDATE items SET name = 'first' WHERE id = 1`);
      await w.query(`INSERT INTO items SELECT g, 'row ' || g FROM generate_series(${ROWS_BEFORE + 1}, ${TOTAL_ROWS}) g`);
      await w.query(`UPDATE items SET name = 'last' WHERE id = 1`);
      await w.query('COMMIT');
    } finally {
      await w.end();
    }

    // Every sink has committed the transaction once its checkpoint is the audit's.
    await waitFor(
      () => {
        const audit = checkpoint(dir.path, name, 'audit');
        return audit !== null && sinks.every((s) => checkpoint(dir.path, name, s)?.position === audit.position);
      },
      { timeoutMs: 480_000, intervalMs: 500, what: 'every sink to commit the 70,000-event transaction' },
    );
    const audit = readFileSync(`${dir.path}/audit.jsonl`, 'utf8').split('\n').filter(Boolean);
    assert.equal(audit.length, EVENTS);
    assert.equal(JSON.parse(audit[ROWS_BEFORE]!).after.name, 'first');
    assert.equal(JSON.parse(audit[EVENTS - 1]!).after.name, 'last');
    assert.equal(await proc.kill('SIGTERM'), 0, proc.stderr.slice(-2000));

    const got: Record<string, { name: unknown; rows: number }> = {};
    got.redis = {
      name: JSON.parse((await redis.get(`${prefix}:items:1`)) ?? 'null')?.name,
      rows: (await redis.keys(`${prefix}:items:*`)).length,
    };
    got.postgres = {
      name: (await dst.query('SELECT name FROM mirror.items WHERE id = 1')).rows[0]?.name,
      rows: Number((await dst.query('SELECT count(*) AS n FROM mirror.items')).rows[0].n),
    };
    {
      const inst = await DuckDBInstance.create(`${dir.path}/mirror.duckdb`, { access_mode: 'READ_ONLY' });
      const c = await inst.connect();
      try {
        const one = (await c.runAndReadAll('SELECT name FROM public.items WHERE id = 1')).getRowObjectsJson();
        const n = (await c.runAndReadAll('SELECT count(*) AS n FROM public.items')).getRowObjectsJson();
        got.duckdb = { name: one[0]?.name, rows: Number(n[0]!.n) };
      } finally {
        c.closeSync();
        inst.closeSync();
      }
    }
    got.clickhouse = {
      name: (await ch.rows<{ name: string }>(`SELECT name FROM ${chDb}.items FINAL WHERE id = 1 AND _deleted = 0`))[0]?.name,
      rows: Number((await ch.rows<{ n: string }>(`SELECT count() AS n FROM ${chDb}.items FINAL WHERE _deleted = 0`))[0]!.n),
    };
    got.elasticsearch = { name: es.docs('items').get('1')?.name, rows: es.docs('items').size };
    got.manticore = {
      name: (await sd.all<{ name_s: string }>('items', 'name_s', 'id = 1'))[0]?.name_s,
      rows: (await sd.all('items', 'id')).length,
    };
    console.log(`# ${EVENTS} events in one transaction; key 1 in each sink: ${Object.entries(got).map(([k, v]) => `${k}=${String(v.name)} (${v.rows} rows)`).join(', ')}`);
    for (const [sink, v] of Object.entries(got)) {
      assert.equal(v.name, 'last', `${sink} holds the last value of key 1`);
      assert.equal(v.rows, TOTAL_ROWS, `${sink} holds every row`);
    }
  });
});
