import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';
import { readJsonl } from '../helpers/pipeline.js';
import { CopyReader } from '../../connectors/postgres/snapshot-copy.js';
import { StringRows } from '../../src/snapshot/types.js';

/**
 * The admin API (issue 12, section 3): a bearer token guards everything that changes
 * something, and a snapshot filter is one vetted condition that cannot leave its READ ONLY
 * transaction, on Postgres and on MariaDB.
 */

const TOKEN = 'admin-token-0123456789abcdef';

/** What differs between the two databases in these tests. */
interface Db {
  sourceYaml: string;
  /** The table as `tributary snapshot --table` names it. */
  table: string;
  rows(): Promise<number>;
  /** The database's message for a reference to the unknown column `nosuch`. */
  unknownColumn: RegExp;
}

async function adminApiScenario(label: string, dir: TempDir, db: Db): Promise<void> {
  const port = await freePort();
  const name = `adm${label}${process.pid}${Math.floor(Math.random() * 1e4)}`;
  const cfg = dir.file(
    `${name}.yaml`,
    `name: ${name}\nsource:\n${db.sourceYaml.replace(/^/gm, '  ')}\n  snapshot: never\n  snapshot_chunk_rows: 100\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - { name: audit, type: jsonl, path: ${dir.path}/out.jsonl }\nhttp: { port: ${port}, auth_token: "\${ADMIN_TOKEN}" }\n`,
  );
  const env = { ADMIN_TOKEN: TOKEN };
  await using proc = TributaryProcess.start(['run', '--config', cfg], { env });
  await proc.waitForLog(new RegExp(`pipeline ${name} running`));
  const base = `http://127.0.0.1:${port}`;
  const post = (body: object, token: string | null = TOKEN) =>
    fetch(`${base}/snapshot`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ table: db.table, ...body }),
    });

  // No token, or a wrong one: 401, and nothing starts.
  const anon = await post({ where: 'id < 5' }, null);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('www-authenticate'), 'Bearer realm="tributary"');
  assert.equal(((await anon.json()) as { code: string }).code, 'TRB6001');
  assert.equal((await post({ where: 'id < 5' }, 'wrong-token-0123456789abcdef')).status, 401);
  assert.equal((await post({ where: 'id < 5' }, `${TOKEN}x`)).status, 401);
  // /status is read-only but needs the token once one is set; the probes stay open.
  assert.equal((await fetch(`${base}/status`)).status, 401);
  assert.equal((await fetch(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  for (const probe of ['/healthz', '/metrics']) assert.equal((await fetch(`${base}${probe}`)).status, 200, probe);
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { what: 'readyz without a token' });
  // With the token: a changing method on a read-only path names no endpoint; a body must be JSON.
  const auth = { authorization: `Bearer ${TOKEN}` };
  assert.equal((await fetch(`${base}/status`, { method: 'DELETE', headers: auth })).status, 405);
  const notJson = await fetch(`${base}/snapshot`, { method: 'POST', headers: auth, body: '{table:' });
  assert.equal(notJson.status, 400);
  assert.equal(((await notJson.json()) as { code: string }).code, 'TRB6005');

  // Injection attempts: 400 before they reach the database; the table is intact.
  for (const where of ['1=1); drop table t; --', '1=1; commit; drop table t', '1=1) OR (1=1', 'id = 1 /* x */', "id = 1 OR 'a' = 'a'; DELETE FROM t"]) {
    const r = await post({ where });
    const body = (await r.json()) as { code: string; error: string };
    assert.equal(r.status, 400, `${where}: ${JSON.stringify(body)}`);
    assert.equal(body.code, 'TRB6003', where);
  }
  assert.equal(await db.rows(), 100, 'the table is intact');

  // A filter the database rejects: 400 with the database's own message, and no snapshot runs.
  const bad = await post({ where: 'nosuch > 3' });
  const badBody = (await bad.json()) as { code: string; error: string };
  assert.equal(bad.status, 400, JSON.stringify(badBody));
  assert.equal(badBody.code, 'TRB6004');
  assert.match(badBody.error, db.unknownColumn);
  const syntax = await post({ where: 'id >' });
  assert.equal(syntax.status, 400);
  assert.equal(((await syntax.json()) as { code: string }).code, 'TRB6004');
  const status = (await (await fetch(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { pipelines: { snapshot: unknown }[] };
  assert.equal(status.pipelines[0]!.snapshot, null, 'no snapshot was started by a rejected filter');

  // A valid filter, through the CLI (token from the same config): exactly the filtered rows.
  const cli = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', db.table, '--where', "id <= 40 AND id % 4 = 0 AND note <> 'skip'"], { env });
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  assert.match(cli.stdout, new RegExp(`snapshot [0-9a-f-]+ started on pipeline ${name}`));
  await proc.waitForLog(/snapshot completed: 9 rows/);
  const reads = readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'r');
  assert.deepEqual(reads.map((e) => Number(e.after!.id)), [4, 8, 12, 16, 24, 28, 32, 36, 40], 'row 20 is skipped by its note');
  assert.equal(await db.rows(), 100);
  // The CLI without the token (another config, same port) is refused with the fix.
  const noToken = dir.file('no-token.yaml', `name: ${name}\nsource:\n${db.sourceYaml.replace(/^/gm, '  ')}\nsinks: [{ name: audit, type: jsonl, path: ${dir.path}/x.jsonl }]\nhttp: { port: ${port} }\n`);
  const refused = await TributaryProcess.run(['snapshot', '--config', noToken, '--table', db.table]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /TRB6001 .*needs the admin token/);
  assert.equal(await proc.kill('SIGTERM'), 0);
  assert.doesNotMatch(proc.stderr, new RegExp(TOKEN), 'the token is never logged');
}

describe('admin API: token and snapshot filters', { concurrency: false }, () => {
  it('postgres: 401 without the token; injections and bad filters get 400; a valid filter snapshots exactly its rows', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('adm');
    await using dir = new TempDir();
    await db.query("CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL); INSERT INTO t SELECT g, CASE WHEN g = 20 THEN 'skip' ELSE 'n' END FROM generate_series(1, 100) g");
    await adminApiScenario('pg', dir, {
      sourceYaml: `type: postgres\nurl: ${db.url}\ntables: [public.t]`,
      table: 'public.t',
      rows: async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM t')).rows[0]!.n),
      unknownColumn: /column "nosuch" does not exist/,
    });
  });

  it('mariadb: 401 without the token; injections and bad filters get 400; a valid filter snapshots exactly its rows', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('adm');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY, note varchar(10) NOT NULL)');
    await db.query("INSERT INTO t SELECT seq, IF(seq = 20, 'skip', 'n') FROM seq_1_to_100");
    await adminApiScenario('my', dir, {
      sourceYaml: `type: mysql\nurl: ${db.url}\ntables: [${db.name}.t]\nserver_id: ${uniqueServerId()}\nsignal_table: ${db.name}.tributary_signal`,
      table: `${db.name}.t`,
      rows: async () => Number((await db.query<{ n: number }[]>('SELECT count(*) AS n FROM t'))[0]!.n),
      unknownColumn: /Unknown column 'nosuch' in 'WHERE'/,
    });
  });

  it('with no token configured, POST /snapshot is refused (403, names the fix) and /status stays readable', { timeout: 90_000 }, async () => {
    await using db = await PgTestDb.create('adm');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const port = await freePort();
    const name = `admnotoken${process.pid}`;
    const cfg = dir.file('c.yaml', `name: ${name}\nsource: { type: postgres, url: "${db.url}", tables: [public.t], snapshot: never }\nstate: { type: file, dir: ${dir.path}/state }\nsinks: [{ name: audit, type: jsonl, path: ${dir.path}/out.jsonl }]\nhttp: { port: ${port} }\n`);
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(new RegExp(`pipeline ${name} running`));
    const r = await fetch(`http://127.0.0.1:${port}/snapshot`, { method: 'POST', body: JSON.stringify({ table: 'public.t' }) });
    assert.equal(r.status, 403);
    const body = (await r.json()) as { code: string; fix: string };
    assert.equal(body.code, 'TRB6002');
    assert.match(body.fix, /http\.auth_token/);
    // Any other changing method on any path is refused the same way, before routing.
    assert.equal((await fetch(`http://127.0.0.1:${port}/anything`, { method: 'DELETE' })).status, 403);
    assert.equal((await fetch(`http://127.0.0.1:${port}/status`)).status, 200);
    const cli = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.t']);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /TRB6002[\s\S]*fix: set http\.auth_token/);
  });

  it('postgres: a chunk read sends one statement per Parse, so a filter that slipped past the check still cannot run a second statement', { timeout: 60_000 }, async () => {
    await using db = await PgTestDb.create('adm');
    await db.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)');
    const c = await db.connect();
    try {
      const reader = new CopyReader(c, () => new Map());
      const table = { name: 'public.t', key: ['id'], keyKind: 'pk' as const, keyTypes: ['integer'], estimate: 10 };
      // Valid as a whole as one simple-query text: COPY, then COMMIT, then DROP. (As a simple
      // query the DROP ran and the table was gone.)
      const injected = '1=1) TO STDOUT; COMMIT; DROP TABLE t; COPY (SELECT 1 AS id';
      await assert.rejects(reader.read(table, '"public"."t"', [injected], new StringRows()), /cannot insert multiple commands into a prepared statement/);
      assert.equal((await db.query('SELECT count(*)::int AS n FROM t')).rows[0]!.n, 10, 'the table is intact');
      const rows = new StringRows();
      await reader.read(table, '"public"."t"', ['(id <= 3)'], rows);
      assert.equal(rows.out.rows.length, 3, 'the connection is usable afterwards');
    } finally {
      await c.end();
    }
  });
});
