import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { waitFor } from '../helpers/context.js';
import { MYSQL_URL } from '../helpers/env.js';
import { InProcessPipeline } from '../helpers/pipeline.js';
import { MysqlTestDb, mysqlSrc } from '../helpers/mysql.js';

/** A TCP proxy to the test server that can silently stop forwarding (a dead network path). */
class FreezingProxy implements AsyncDisposable {
  private pairs: { a: Socket; b: Socket; frozen: boolean }[] = [];
  connections = 0;
  private constructor(private readonly server: Server, readonly port: number) {}
  static async start(): Promise<FreezingProxy> {
    const target = new URL(MYSQL_URL);
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const proxy = new FreezingProxy(server, (server.address() as { port: number }).port);
    server.on('connection', (a) => {
      proxy.connections++;
      const b = connect(Number(target.port || 3306), target.hostname);
      const pair = { a, b, frozen: false };
      proxy.pairs.push(pair);
      a.on('data', (d) => !pair.frozen && b.write(d));
      b.on('data', (d) => !pair.frozen && a.write(d));
      const end = () => (a.destroy(), b.destroy());
      a.on('error', end).on('close', end);
      b.on('error', end).on('close', end);
    });
    return proxy;
  }
  /** Every open connection stops forwarding without closing; new ones work. */
  freeze(): void {
    for (const p of this.pairs) p.frozen = true;
  }
  url(): string {
    const u = new URL(MYSQL_URL);
    u.port = String(this.port);
    return u.toString();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    for (const p of this.pairs) (p.a.destroy(), p.b.destroy());
    await new Promise((r) => this.server.close(r));
  }
}

describe('mysql: heartbeats', { concurrency: false }, () => {
  it('a silent dead connection is detected by the heartbeat timeout and replaced', { timeout: 60_000 }, async () => {
    await using db = await MysqlTestDb.create('hb');
    await using proxy = await FreezingProxy.start();
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const src = mysqlSrc(db).replace(`url: ${db.url}`, `url: ${proxy.url()}`).replace('heartbeat_ms: 1000', 'heartbeat_ms: 500');
    await using p = await InProcessPipeline.start({ name: `hb${process.pid}`, source: src });
    await db.query('INSERT INTO t VALUES (1)');
    await p.waitForEvents(1);
    const before = proxy.connections;
    proxy.freeze();
    const frozenAt = Date.now();
    await db.query('INSERT INTO t VALUES (2)');
    await db.query('BEGIN; INSERT INTO t VALUES (3); INSERT INTO t VALUES (4); COMMIT');
    await p.waitForEvents(4, 20_000);
    const took = Date.now() - frozenAt;
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(p.events().map((e) => e.after!.id), [1, 2, 3, 4], 'nothing lost, nothing twice');
    assert.ok(proxy.connections > before, 'a new connection was made');
    assert.ok(took >= 1400, `the dead connection was noticed by the read timeout (3 x 500 ms), after ${took} ms`);
  });

  it('heartbeats on an idle server move the checkpoint across a binlog rotation', { timeout: 60_000 }, async () => {
    await using db = await MysqlTestDb.create('idle');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    await using p = await InProcessPipeline.start({ name: `idle${process.pid}`, source: mysqlSrc(db) });
    await db.query('INSERT INTO t VALUES (1)');
    await p.waitForEvents(1);
    await db.query('FLUSH BINARY LOGS');
    const [{ File }] = await db.query<{ File: string }[]>('SHOW MASTER STATUS');
    // No change at all is written after the rotation: only heartbeats can move the checkpoint.
    const resume = await waitFor(async () => {
      const s = await p.pipeline.store.loadSinks(p.pipeline.name);
      const r = s.audit ? (JSON.parse(s.audit.resume) as { file: string; pos: number }) : null;
      return r && r.file === File ? r : null;
    }, { timeoutMs: 15_000, what: `the checkpoint to reach ${File}` });
    assert.ok(resume!.pos > 4);
    await db.query('INSERT INTO t VALUES (2)');
    const evs = await p.waitForEvents(2);
    assert.equal(evs[1]!.after!.id, 2, 'a transaction right at the heartbeat position is not skipped');
    assert.equal(evs[1]!.source.file, File);
  });
});
