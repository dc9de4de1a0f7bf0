import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { EmbeddedPg } from '../helpers/embedded-pg.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';
import { readJsonl } from '../helpers/pipeline.js';

/**
 * Passwords with the characters that break URLs (issue 12, section 9): a malformed URL is a
 * coded error that shows nothing of it, and `password:` / `password_file:` carry any password
 * to servers that check it (a private Postgres with password auth; the shared MariaDB).
 */
const SECRET = 'Pw#1%ab@c?d/e:f g';

describe('passwords that URLs cannot hold as written', { concurrency: false }, () => {
  it('validate: a # in the URL password exits 2 with TRB1010 and no part of the URL', { timeout: 30_000 }, async () => {
    await using dir = new TempDir();
    const cfg = dir.file('bad.yaml', 'name: badurl\nsource: { type: postgres, url: "postgres://cdc:Pw#1secretTail@db.internal:5432/shop" }\nsinks: [{ name: s, type: stdout }]\n');
    const r = await TributaryProcess.run(['validate', '--config', cfg, '--check-source']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /TRB1010 bad\.yaml:2: source\.url: the URL holds a "#"/);
    for (const part of ['Pw', 'secretTail', 'db.internal', 'cdc', 'shop']) assert.ok(!(r.stdout + r.stderr).includes(part), `"${part}" leaked: ${r.stderr}`);
  });

  it('postgres (password auth): password_file with #, %, @, ?, /, : and a space streams changes', { timeout: 120_000 }, async () => {
    await using server = await EmbeddedPg.start();
    await using dir = new TempDir();
    await server.query('CREATE DATABASE shop');
    await server.query(`CREATE ROLE cdc_pw LOGIN REPLICATION PASSWORD '${SECRET.replace(/'/g, "''")}'`);
    await server.query('GRANT CREATE ON DATABASE shop TO cdc_pw');
    await server.query('CREATE TABLE t (id int PRIMARY KEY); ALTER TABLE t OWNER TO cdc_pw; INSERT INTO t VALUES (1)', [], 'shop');
    dir.file('pg-password', `${SECRET}\n`);
    const cfg = dir.file(
      'pg.yaml',
      `name: pwpg\nsource:\n  type: postgres\n  url: postgres://cdc_pw@127.0.0.1:${server.port}/shop\n  password_file: pg-password\n  tables: [public.t]\nstate: { type: file, dir: state }\nsinks: [{ name: audit, type: jsonl, path: out.jsonl }]\nhttp: { port: 0 }\n`,
    );
    const check = await TributaryProcess.run(['validate', '--config', cfg, '--check-source'], { cwd: '/' });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /pwpg: source preflight ok/);
    // Run from another directory: state and out.jsonl still land beside the config.
    await using proc = TributaryProcess.start(['run', '--config', cfg], { cwd: '/' });
    await proc.waitForLog(/pipeline pwpg running/, 60_000);
    await server.query('INSERT INTO t VALUES (2)', [], 'shop');
    const out = `${dir.path}/out.jsonl`;
    // The streamed insert, and the snapshot row (its reader connects with the same URL).
    await waitFor(() => readJsonl(out).some((e) => e.op === 'c' && e.after!.id === 2) && readJsonl(out).some((e) => e.op === 'r' && e.after!.id === 1), { what: 'the streamed insert and the snapshot row', timeoutMs: 60_000 });
    assert.equal(await proc.kill('SIGTERM'), 0);
    for (const part of ['Pw#1', '%ab', 'd/e:f']) assert.ok(!proc.stderr.includes(part), `"${part}" leaked into the log`);
  });

  it('mariadb: password: from the environment, with #, %, @, ?, /, : and a space, streams changes', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('pw');
    await using dir = new TempDir();
    const user = `trbpw${process.pid % 100000}`;
    await db.query(`DROP USER IF EXISTS '${user}'@'127.0.0.1'`);
    await db.query(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY ?`, [SECRET]);
    try {
      await db.query(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${user}'@'127.0.0.1'`);
      await db.query(`GRANT SELECT ON \`${db.name}\`.* TO '${user}'@'127.0.0.1'`);
      await db.query('CREATE TABLE t (id int PRIMARY KEY)');
      const cfg = dir.file(
        'my.yaml',
        `name: pwmy${process.pid}\nsource:\n  type: mysql\n  url: mysql://${user}@127.0.0.1:3306/\n  password: "\${MY_PW}"\n  tables: [${db.name}.t]\n  snapshot: never\n  server_id: ${uniqueServerId()}\nstate: { type: file, dir: state }\nsinks: [{ name: audit, type: jsonl, path: out.jsonl }]\nhttp: { port: 0 }\n`,
      );
      const env = { MY_PW: SECRET };
      const check = await TributaryProcess.run(['validate', '--config', cfg, '--check-source'], { env });
      assert.equal(check.code, 0, check.stdout + check.stderr);
      await using proc = TributaryProcess.start(['run', '--config', cfg], { env });
      await proc.waitForLog(/pipeline pwmy\d+ running/, 60_000);
      await db.query('INSERT INTO t VALUES (7)');
      await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).some((e) => e.after?.id === 7), { what: 'the streamed insert', timeoutMs: 60_000 });
      assert.equal(await proc.kill('SIGTERM'), 0);
      for (const part of ['Pw#1', '%ab', 'd/e:f']) assert.ok(!proc.stderr.includes(part), `"${part}" leaked into the log`);
      // The same password written raw into the URL is refused, and shown nowhere.
      const raw = dir.file('raw.yaml', `name: pwraw\nsource: { type: mysql, url: "mysql://${user}:${SECRET}@127.0.0.1:3306/" }\nsinks: [{ name: s, type: stdout }]\n`);
      const bad = await TributaryProcess.run(['validate', '--config', raw]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /TRB1010/);
      assert.ok(!bad.stderr.includes('Pw') && !bad.stderr.includes(user), bad.stderr);
    } finally {
      await db.query(`DROP USER IF EXISTS '${user}'@'127.0.0.1'`);
    }
  });
});
