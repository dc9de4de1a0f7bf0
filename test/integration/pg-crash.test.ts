import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type pg from 'pg';
import type { Row } from '../../src/core/event.js';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { REDIS_URL } from '../helpers/env.js';
import { readJsonl, replay } from '../helpers/pipeline.js';

/**
 * A writer commits single-row transactions while `tributary run` is SIGKILLed and
 * restarted several times. Afterwards the jsonl file holds every committed change exactly
 * once, replaying it gives the table, and Redis holds exactly the table's rows.
 */
describe('postgres: crash safety under SIGKILL', { concurrency: false }, () => {
  it('loses nothing and duplicates nothing across 3 SIGKILLs', { timeout: 240_000 }, async () => {
    await using db = await PgTestDb.create('crash');
    await using dir = new TempDir('tributary-crash-');
    await db.query('CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note text); ALTER TABLE items REPLICA IDENTITY FULL');
    const prefix = `crash${process.pid}`;
    const out = dir.file('items.jsonl');
    const cfg = dir.file(
      'crash.yaml',
      `name: crash
source:
  type: postgres
  url: ${db.url}
  tables: [public.items]
  snapshot: never
  status_interval_ms: 200
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${out}
  - name: cache
    type: redis
    url: ${REDIS_URL}
    key: "${prefix}:{table}:{key}"
    fence_key: "${prefix}:fences"
  - name: small-batches
    type: jsonl
    path: ${dir.path}/small.jsonl
    batch: { max_events: 7 }
http: { port: 0 }
`,
    );
    const redis = new Redis(REDIS_URL);
    try {
      let proc = TributaryProcess.start(['run', '--config', cfg]);
      await proc.waitForLog(/pipeline crash running/);

      const writer = await db.connect();
      let committed = 0;
      let stop = false;
      const ids: number[] = [];
      let next = 1;
      const write = async (c: pg.Client) => {
        while (!stop) {
          const r = Math.random();
          let res: pg.QueryResult;
          if (r < 0.35 || ids.length < 20) {
            const id = next++;
            res = await c.query('INSERT INTO items VALUES ($1, $2, $3)', [id, 0, `note ${id}`]);
            ids.push(id);
          } else if (r < 0.85) {
            const id = ids[Math.floor(Math.random() * ids.length)]!;
            res = await c.query('UPDATE items SET v = v + 1, note = $2 WHERE id = $1', [id, `updated ${committed}`]);
          } else {
            const id = ids.splice(Math.floor(Math.random() * ids.length), 1)[0]!;
            res = await c.query('DELETE FROM items WHERE id = $1', [id]);
          }
          committed += res.rowCount ?? 0;
          if (committed % 50 === 0) await new Promise((r) => setImmediate(r));
        }
      };
      const writing = write(writer);

      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 1200 + Math.random() * 1200));
        await proc.kill('SIGKILL');
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
        proc = TributaryProcess.start(['run', '--config', cfg]);
        await proc.waitForLog(/pipeline crash running/);
      }
      await new Promise((r) => setTimeout(r, 1500));
      stop = true;
      await writing;
      await writer.end();
      assert.ok(committed >= 1000, `the writer committed ${committed} changes`);

      const audit = await waitFor(() => {
        const evs = readJsonl(out);
        return evs.length >= committed ? evs : null;
      }, { timeoutMs: 60_000, what: `jsonl to reach ${committed} events` });
      // Let it run a moment longer: a duplicate would show up as extra lines.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(proc.running, true);
      assert.equal(await proc.kill('SIGTERM'), 0, 'a drained SIGTERM stop exits 0');

      const finalAudit = readJsonl(out);
      assert.equal(finalAudit.length, committed, 'every committed change exactly once in the jsonl file');
      assert.equal(audit!.length, committed);
      const txIds = finalAudit.map((e) => e.source.txId);
      assert.equal(new Set(txIds).size, committed, 'no transaction appears twice');
      const small = readJsonl(`${dir.path}/small.jsonl`);
      assert.deepEqual(small.map((e) => e.source.lsn), finalAudit.map((e) => e.source.lsn), 'a sink with tiny batches holds the same events in the same order');

      const table = await db.query<{ id: string; v: number; note: string }>('SELECT id, v, note FROM items ORDER BY id');
      const want = new Map(table.rows.map((r) => [JSON.stringify({ id: Number(r.id) }), { id: Number(r.id), v: r.v, note: r.note } as Row]));
      assert.deepEqual(replay(finalAudit), want, 'replaying the jsonl gives the table');

      const keys = await redis.keys(`${prefix}:items:*`);
      const cached = new Map<string, Row>();
      for (const k of keys) cached.set(JSON.stringify({ id: Number(k.split(':').pop()) }), JSON.parse((await redis.get(k))!));
      assert.deepEqual(cached, want, 'Redis holds exactly the current rows');
      console.log(`# postgres crash safety: ${committed} committed changes across 3 SIGKILLs; jsonl ${finalAudit.length} lines, ${new Set(txIds).size} distinct transactions; replay = table (${want.size} rows); Redis ${cached.size} keys = table`);
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
  });
});
