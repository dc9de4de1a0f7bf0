import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { REDIS_URL } from '../helpers/env.js';
import { ServerProcess, waitUntil } from '../helpers/servers/common.js';
import { ClickHouseServer } from '../helpers/servers/clickhouse.js';
import { SearchdServer } from '../helpers/servers/searchd.js';
import { Redis } from 'ioredis';

/** A private redis-server with `requirepass` (the shared one has no password to refuse). */
class PasswordRedis implements AsyncDisposable {
  private constructor(
    readonly url: string,
    private readonly proc: ServerProcess,
  ) {}

  static async start(password: string): Promise<PasswordRedis> {
    const port = await freePort();
    const proc = ServerProcess.start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--appendonly', 'no']);
    await waitUntil(async () => {
      const r = new Redis({ port, host: '127.0.0.1', password, lazyConnect: true, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    }, 'redis-server to answer', proc);
    return new PasswordRedis(`redis://127.0.0.1:${port}`, proc);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.proc.stop();
  }
}

/**
 * `tributary validate --check-source` runs every sink's `check()` (issue 12, section 9): an
 * unreachable ClickHouse, an unwritable jsonl path and a refused Redis password fail
 * validation with TRB1013 naming each sink, before anything runs.
 */
describe('validate --check-source checks the sinks', { concurrency: false }, () => {
  it('unreachable ClickHouse, unwritable jsonl path and a refused Redis AUTH: exit 2, each sink named; reachable sinks pass', { timeout: 90_000 }, async () => {
    await using db = await PgTestDb.create('sinkchk');
    await using dir = new TempDir();
    await using redis = await PasswordRedis.start('right#pass%word');
    dir.file('redis-password', 'right#pass%word\n');
    await db.query('CREATE TABLE t (id int PRIMARY KEY); ALTER TABLE t REPLICA IDENTITY FULL');
    const closed = await freePort(); // nothing listens here
    dir.file('a-file', 'x');
    const source = `source: { type: postgres, url: "${db.url}", tables: [public.t] }\nstate: { type: file, dir: state }\n`;
    const bad = dir.file(
      'bad.yaml',
      `name: sinkchk\n${source}sinks:\n` +
        `  - { name: olap, type: clickhouse, url: "http://127.0.0.1:${closed}" }\n` +
        `  - { name: audit, type: jsonl, path: a-file/out.jsonl }\n` +
        `  - { name: cache, type: redis, url: "${redis.url}", password: "wrong-password" }\n` +
        `  - { name: store, type: redis, url: "${redis.url}", password_file: redis-password }\n` +
        `  - { name: mirror, type: postgres, url: "${db.url}" }\n` +
        `  - { name: fine, type: jsonl, path: out/new/dir/ok.jsonl }\n` +
        `  - { name: screen, type: stdout }\n`,
    );
    const r = await TributaryProcess.run(['validate', '--config', bad, '--check-source']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /sinkchk: source preflight ok/);
    assert.match(r.stdout, new RegExp(`ERROR TRB1013 sinkchk: sink olap \\(clickhouse\\): ClickHouse at http://127\\.0\\.0\\.1:${closed} is unreachable.*ECONNREFUSED`));
    assert.match(r.stdout, /ERROR TRB1013 sinkchk: sink audit \(jsonl\): .*a-file.* (is a file|cannot be written: ENOTDIR)/);
    assert.match(r.stdout, /ERROR TRB1013 sinkchk: sink cache \(redis\): Redis: WRONGPASS.*\n    fix: check the password/);
    assert.match(r.stdout, /sinkchk: sink store \(redis\): ok/, 'password_file (with # and %) is read and sent');
    assert.match(r.stdout, /sinkchk: sink mirror \(postgres\): ok/);
    assert.match(r.stdout, /sinkchk: sink fine \(jsonl\): ok/);
    assert.match(r.stdout, /sinkchk: sink screen \(stdout\): no preflight to run/);
    assert.match(r.stderr, /TRB1013 preflight found 3 problem\(s\): 3 in sinks/);
    assert.ok(!r.stdout.includes('wrong-password'), 'the password is not echoed');

    const good = dir.file('good.yaml', `name: sinkchk\n${source}sinks:\n  - { name: cache, type: redis, url: "${REDIS_URL}" }\n  - { name: store, type: redis, url: "${redis.url}", password: "right#pass%word" }\n  - { name: audit, type: jsonl, path: out/a.jsonl }\n`);
    const ok = await TributaryProcess.run(['validate', '--config', good, '--check-source']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /sink cache \(redis\): ok/);
  });

  it('a reachable ClickHouse and searchd pass their checks', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('sinkchk');
    await using dir = new TempDir();
    await using ch = await ClickHouseServer.start();
    await using sd = await SearchdServer.start({ indexes: { items: ['rt_field = title', 'rt_attr_uint = n'] } });
    await db.query('CREATE TABLE t (id int PRIMARY KEY); ALTER TABLE t REPLICA IDENTITY FULL');
    const cfg = dir.file(
      'ok.yaml',
      `name: sinkchk\nsource: { type: postgres, url: "${db.url}", tables: [public.t] }\nstate: { type: file, dir: state }\nsinks:\n  - { name: olap, type: clickhouse, url: "${ch.url}" }\n  - { name: search, type: manticore, url: "${sd.url}" }\n`,
    );
    const r = await TributaryProcess.run(['validate', '--config', cfg, '--check-source']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /sink olap \(clickhouse\): ok/);
    assert.match(r.stdout, /sink search \(manticore\): ok/);
  });
});
