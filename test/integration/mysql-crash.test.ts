import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type mysql from 'mysql2/promise';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { REDIS_URL } from '../helpers/env.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';
import { readJsonl } from '../helpers/pipeline.js';

/** Apply change events in order to a map keyed by primary key: the state they describe. */
function replay(events: ChangeEvent[]): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const e of events) {
    if (e.op === 't') m.clear();
    else if (e.op === 'd') m.delete(JSON.stringify(e.key));
    else m.set(JSON.stringify(e.key), e.after!);
  }
  return m;
}

/**
 * The MariaDB twin of pg-crash: a writer commits single-row transactions while
 * `tributary run` is SIGKILLed and restarted 3 times. Afterwards the jsonl file holds every
 * committed change exactly once, replaying it gives the table, and Redis equals the table.
 */
describe('mysql: crash safety under SIGKILL', { concurrency: false }, () => {
  it('loses nothing and duplicates nothing across 3 SIGKILLs', { timeout: 180_000 }, async () => {
    await using db = await MysqlTestDb.create('crash');
    await using dir = new TempDir('tributary-mcrash-');
    await db.query('CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note text)');
    const prefix = `mcrash${process.pid}`;
    const name = `mcrash${process.pid}`;
    const out = dir.file('items.jsonl');
    const cfg = dir.file(
      'crash.yaml',
      `name: ${name}
source:
  type: mysql
  url: ${db.url}
  tables: [${db.name}.items]
  snapshot: never
  server_id: ${uniqueServerId()}
  heartbeat_ms: 1000
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
      await proc.waitForLog(new RegExp(`pipeline ${name} running`));

      const writer = await db.connect();
      let committed = 0;
      let stop = false;
      const ids: number[] = [];
      let next = 1;
      const write = async (c: mysql.Connection) => {
        while (!stop) {
          const r = Math.random();
          let res: mysql.ResultSetHeader;
          if (r < 0.35 || ids.length < 20) {
            const id = next++;
            [res] = await c.query<mysql.ResultSetHeader>('INSERT INTO items VALUES (?, ?, ?)', [id, 0, `note ${id}`]);
            ids.push(id);
          } else if (r < 0.85) {
            const id = ids[Math.floor(Math.random() * ids.length)]!;
            [res] = await c.query<mysql.ResultSetHeader>('UPDATE items SET v = v + 1, note = ? WHERE id = ?', [`updated ${committed}`, id]);
          } else {
            const id = ids.splice(Math.floor(Math.random() * ids.length), 1)[0]!;
            [res] = await c.query<mysql.ResultSetHeader>('DELETE FROM items WHERE id = ?', [id]);
          }
          committed += res.affectedRows;
          if (committed % 50 === 0) await new Promise((r) => setImmediate(r));
        }
      };
      const writing = write(writer);

      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 1200 + Math.random() * 1200));
        await proc.kill('SIGKILL');
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
        proc = TributaryProcess.start(['run', '--config', cfg]);
        await proc.waitForLog(new RegExp(`pipeline ${name} running`));
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
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(proc.running, true, proc.stderr.slice(-2000));
      assert.equal(await proc.kill('SIGTERM'), 0, 'a drained SIGTERM stop exits 0');

      const finalAudit = readJsonl(out);
      assert.equal(finalAudit.length, committed, 'every committed change exactly once in the jsonl file');
      assert.equal(audit!.length, committed);
      const gtids = finalAudit.map((e) => e.source.gtid);
      assert.equal(new Set(gtids).size, committed, 'no transaction appears twice');
      const small = readJsonl(`${dir.path}/small.jsonl`);
      assert.deepEqual(small.map((e) => e.source.gtid), gtids, 'a sink with tiny batches holds the same events in the same order');

      const table = await db.query<{ id: string; v: number; note: string }[]>('SELECT id, v, note FROM items ORDER BY id');
      const want = new Map(table.map((r) => [JSON.stringify({ id: Number(r.id) }), { id: Number(r.id), v: r.v, note: r.note } as Row]));
      assert.deepEqual(replay(finalAudit), want, 'replaying the jsonl gives the table');

      const keys = await redis.keys(`${prefix}:items:*`);
      const cached = new Map<string, Row>();
      for (const k of keys) cached.set(JSON.stringify({ id: Number(k.split(':').pop()) }), JSON.parse((await redis.get(k))!));
      assert.deepEqual(cached, want, 'Redis holds exactly the current rows');
      console.log(`# mariadb crash safety: ${committed} committed changes across 3 SIGKILLs; jsonl ${finalAudit.length} lines, ${new Set(gtids).size} distinct GTIDs; replay = table (${want.size} rows); Redis ${cached.size} keys = table`);
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
  });
});
