import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { MysqlTestDb, mysqlSrc } from '../helpers/mysql.js';

type Row = Record<string, unknown>;
type Env = { op: string; key: Row | null; source: { table: string; ts_ms: number; file: string; pos: number; gtid: string | null } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lines = (text: string) => text.split('\n').filter(Boolean);
const byId = (a: Row, b: Row) => Number(a.id) - Number(b.id);

describe('the log tools on a MariaDB pipeline (issue 14: time travel, rewind to a GTID and to file:pos)', { concurrency: false }, () => {
  it('state --at equals the table recorded with SQL between commits (whole table and one key); rewinds to a GTID and to file:pos re-deliver exactly what follows', { timeout: 300_000 }, async () => {
    await using db = await MysqlTestDb.create('logtools');
    await using dir = new TempDir('tributary-logtools-my-');
    await db.query('CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), qty INT)');
    const name = `ltm_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const cfg = dir.file(
      'pipeline.yaml',
      `name: ${name}\nsource:\n${mysqlSrc(db).replace(/^/gm, '  ')}\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - { name: audit, type: jsonl, path: ${dir.path}/audit.jsonl }\nhttp: { port: ${await freePort()}, auth_token: mariadb-log-tools-token-0123 }\n`,
    );
    const audit = () => {
      try {
        return lines(readFileSync(join(dir.path, 'audit.jsonl'), 'utf8'));
      } catch {
        return [];
      }
    };
    const cli = (args: string[]) => TributaryProcess.run([...args, '--config', cfg], { timeoutMs: 60_000 });
    let proc = TributaryProcess.start(['run', '--config', cfg]);
    try {
      await proc.waitForLog(/pipeline \S+ running/, 60_000);
      // The binlog's timestamps are whole seconds: instants are recorded more than a second
      // after one commit and more than a second before the next.
      const instants: { ts: number; items: Row[] }[] = [];
      const record = async () => {
        const [{ ms }] = await db.query<{ ms: string }[]>('SELECT FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000) AS ms');
        instants.push({ ts: Number(ms), items: await db.query<Row[]>('SELECT id, name, qty FROM items ORDER BY id') });
      };
      const txns = [
        "BEGIN; INSERT INTO items VALUES (1,'a',1),(2,'b',2),(3,'c',3); COMMIT",
        "BEGIN; UPDATE items SET qty = qty + 10 WHERE id = 1; DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (4,'d',4); COMMIT",
        'TRUNCATE items',
        "BEGIN; INSERT INTO items VALUES (10,'j',10),(11,'k',11),(1,'a2',1); COMMIT",
        "BEGIN; UPDATE items SET qty = 99 WHERE id = 10; DELETE FROM items WHERE id = 11; COMMIT",
      ];
      await record();
      for (const t of txns) {
        await sleep(1100);
        await db.query(t);
        await sleep(1100);
        await record();
      }
      // 3 + 3 + 1 (the truncate) + 3 + 2 events.
      await waitFor(() => audit().length === 12, { timeoutMs: 60_000, what: 'the 12 events in the jsonl sink' });
      const iso = (i: number) => new Date(instants[i]!.ts).toISOString();
      for (let i = 1; i < instants.length; i++) {
        const whole = await cli(['state', '--table', `${db.name}.items`, '--at', iso(i)]);
        assert.equal(whole.code, 0, whole.stderr);
        assert.deepEqual(lines(whole.stdout).map((l) => JSON.parse(l) as Row).sort(byId), instants[i]!.items, `items at instant ${i}`);
        const one = await cli(['state', '--table', `${db.name}.items`, '--at', iso(i), '--key', '{"id":1}']);
        assert.deepEqual(lines(one.stdout).map((l) => JSON.parse(l) as Row), instants[i]!.items.filter((r) => r.id === 1), `id 1 at instant ${i}`);
      }
      const early = await cli(['state', '--table', `${db.name}.items`, '--at', iso(0)]);
      assert.equal(early.code, 1);
      assert.match(early.stderr, /TRB5003/);

      const before = audit();
      const env = before.map((l) => JSON.parse(l) as Env);
      assert.deepEqual(env.map((e) => e.op), ['c', 'c', 'c', 'u', 'd', 'c', 't', 'c', 'c', 'c', 'u', 'd']);
      // The second transaction's GTID, as replication reads a GTID position: what follows it.
      const gtid2 = env[3]!.source.gtid!;
      assert.match(gtid2, /^\d+-\d+-\d+$/);
      const fromGtid = await cli(['log', 'read', '--from', gtid2]);
      assert.deepEqual(lines(fromGtid.stdout), before.slice(6));
      const dry = await cli(['rewind', '--sink', 'audit', '--to', gtid2, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would receive again: 6 events in \d+ transactions/);
      assert.deepEqual(audit(), before);

      assert.equal(await proc.kill('SIGTERM'), 0);
      const rw = await cli(['rewind', '--sink', 'audit', '--to', gtid2]);
      assert.equal(rw.code, 0, rw.stderr);
      assert.match(rw.stdout, /it reads from there when the pipeline runs/);
      proc = TributaryProcess.start(['run', '--config', cfg]);
      await waitFor(() => audit().length >= 18, { what: 'the replay from the GTID' });
      await sleep(500);
      assert.deepEqual(audit(), [...before, ...before.slice(6)]);

      // file:pos of a row of the fourth transaction: that whole transaction and what follows.
      const row = env[8]!.source;
      const fp = `${row.file}:${row.pos}`;
      const live = await cli(['rewind', '--sink', 'audit', '--to', fp]);
      assert.equal(live.code, 0, live.stderr);
      assert.match(live.stdout, /restarted that sink/);
      await waitFor(() => audit().length >= 23, { what: 'the replay from file:pos' });
      await sleep(500);
      assert.deepEqual(audit(), [...before, ...before.slice(6), ...before.slice(7)]);
    } finally {
      await proc[Symbol.asyncDispose]();
    }
  });
});
