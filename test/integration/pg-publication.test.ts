import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { PgTestDb, PgTestRole, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { readJsonl, replay } from '../helpers/pipeline.js';

/** The pino log lines of a process that carry `code`. */
function logged(p: TributaryProcess, code: string): { msg: string; fix?: string }[] {
  return (p.stdout + p.stderr)
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes(code))
    .map((l) => JSON.parse(l) as { msg: string; fix?: string; code?: string })
    .filter((l) => l.code === code || l.msg.includes(code));
}

async function publishedTables(db: PgTestDb, pub: string): Promise<string[]> {
  const r = await db.query<{ t: string }>("SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", [pub]);
  return r.rows.map((x) => x.t);
}

function config(dir: TempDir, name: string, url: string, extra: string, port = 0): string {
  return dir.file(
    `${name}.yaml`,
    `name: ${name}
source:
  type: postgres
  url: ${url}
  status_interval_ms: 200
${extra.replace(/^/gm, '  ')}
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/out.jsonl
http: { port: ${port}, auth_token: pg-publication-test-token }
`,
  );
}

describe('postgres: what goes into the publication', { concurrency: false }, () => {
  it('a keyless table is left out (the application can still update it); opt-in and later tables are captured', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('keyless');
    await using dir = new TempDir();
    const name = `keyless${process.pid}`;
    await db.query(`
      CREATE TABLE k (id int PRIMARY KEY, v text);
      CREATE TABLE nk (a int, b text);
      CREATE TABLE nn (id int PRIMARY KEY, v text); ALTER TABLE nn REPLICA IDENTITY NOTHING;
      CREATE TABLE opt (a int, b text);
      CREATE TABLE ui (a int NOT NULL, b text); CREATE UNIQUE INDEX ui_a ON ui (a); ALTER TABLE ui REPLICA IDENTITY USING INDEX ui_a;
      INSERT INTO k VALUES (1, 'a'); INSERT INTO nk VALUES (1, 'x'), (2, 'y'); INSERT INTO nn VALUES (1, 'x'), (2, 'y');
      INSERT INTO opt VALUES (1, 'x'); INSERT INTO ui VALUES (1, 'a')`);
    // Default tables (public.*) and snapshot (initial).
    const cfg = config(dir, name, db.url, 'replica_identity_full: [public.opt]\ntable_check_ms: 300');
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(/snapshot completed/, 60_000);

    // The application's writes on the keyless tables still work while the pipeline runs.
    await db.query("UPDATE nk SET b = 'z' WHERE a = 1");
    await db.query('DELETE FROM nk WHERE a = 2');
    await db.query("UPDATE nn SET v = 'z' WHERE id = 1");
    await db.query('DELETE FROM nn WHERE id = 2');
    // The keyless tables were left out, each with a coded warning naming both ways in.
    const warnings = logged(proc, 'TRB2020');
    for (const t of ['public.nk', 'public.nn']) {
      const w = warnings.find((x) => x.msg.includes(t));
      assert.ok(w, `a TRB2020 warning for ${t}:\n${proc.stderr.slice(-3000)}`);
      assert.match(w.msg + w.fix, /PRIMARY KEY/);
      assert.match(w.msg + w.fix, /REPLICA IDENTITY FULL/);
    }
    assert.deepEqual(await publishedTables(db, `tributary_${name}`), ['public.k', 'public.opt', 'public.ui']);
    // The opted-in table was altered, and streams full before images.
    const ri = await db.query<{ relreplident: string }>("SELECT relreplident FROM pg_class WHERE oid = 'public.opt'::regclass");
    assert.equal(ri.rows[0]!.relreplident, 'f');
    await db.query("UPDATE opt SET b = 'y' WHERE a = 1");
    await db.query("UPDATE ui SET b = 'b' WHERE a = 1");

    // Created while the pipeline runs: a keyed table joins (its rows from before it joined come
    // from a snapshot), a keyless one does not.
    await db.query("BEGIN; CREATE TABLE late_k (id int PRIMARY KEY, v text); INSERT INTO late_k SELECT g, 'v' || g FROM generate_series(1, 50) g; COMMIT");
    await db.query('CREATE TABLE late_nk (a int); INSERT INTO late_nk VALUES (1)');
    await waitFor(async () => (await publishedTables(db, `tributary_${name}`)).includes('public.late_k'), { what: 'late_k to join the publication' });
    await waitFor(() => logged(proc, 'TRB2020').some((w) => w.msg.includes('public.late_nk')), { what: 'a TRB2020 warning for late_nk' });
    assert.ok(!(await publishedTables(db, `tributary_${name}`)).includes('public.late_nk'));
    await db.query('UPDATE late_nk SET a = 2');
    await db.query('DELETE FROM late_nk');
    await db.query("INSERT INTO late_k VALUES (51, 'new'); UPDATE late_k SET v = 'u' WHERE id = 1; DELETE FROM late_k WHERE id = 2");

    const want = new Map((await db.query<{ id: number; v: string }>('SELECT id, v FROM late_k')).rows.map((r) => [JSON.stringify({ id: r.id }), r as unknown as Row]));
    let evs: ChangeEvent[] = [];
    await waitFor(
      () => {
        evs = readJsonl(`${dir.path}/out.jsonl`);
        const got = replay(evs.filter((e) => e.source.table === 'late_k'));
        return got.size === want.size && [...want].every(([k, v]) => JSON.stringify(got.get(k)) === JSON.stringify(v));
      },
      { timeoutMs: 60_000, what: 'late_k in the sink to equal the table' },
    );
    const reads = evs.filter((e) => e.source.table === 'late_k' && e.op === 'r');
    assert.equal(new Set(reads.map((e) => JSON.stringify(e.key))).size, reads.length, 'each late_k row read once');
    assert.ok(reads.length >= 48, `the rows written before late_k joined come from a snapshot (${reads.length} reads)`);
    const optUpdate = evs.find((e) => e.source.table === 'opt' && e.op === 'u');
    assert.deepEqual([optUpdate?.before, optUpdate?.after], [{ a: 1, b: 'x' }, { a: 1, b: 'y' }]);
    assert.ok(evs.some((e) => e.source.table === 'ui' && e.op === 'u'));
    assert.deepEqual(evs.filter((e) => ['nk', 'nn', 'late_nk'].includes(e.source.table)), []);
    assert.equal(await proc.kill('SIGTERM'), 0);
  });

  it('a partitioned table through snapshot and stream: every row once, under the parent name', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('parts');
    await using dir = new TempDir();
    const name = `parts${process.pid}`;
    await db.query(`
      CREATE TABLE m (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
      CREATE TABLE m_0 PARTITION OF m FOR VALUES FROM (0) TO (100);
      CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM (100) TO (200);
      CREATE TABLE m_2 PARTITION OF m FOR VALUES FROM (200) TO (300);
      INSERT INTO m SELECT g, g % 300, 'v' FROM generate_series(1, 6000) g;
      ANALYZE m;
      -- As earlier versions made it: the leaves listed too, no publish_via_partition_root.
      CREATE PUBLICATION "tributary_${name}" FOR TABLE m, m_0, m_1, m_2;`);
    const cfg = config(dir, name, db.url, 'tables: ["public.m*"]\nsnapshot_chunk_rows: 500\nsnapshot_workers: 2');
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    const w = await db.connect();
    let stop = false;
    let next = 6001;
    const writing = (async () => {
      while (!stop) {
        const r = Math.random();
        const id = 1 + Math.floor(Math.random() * 6000);
        if (r < 0.4) await w.query('UPDATE m SET v = $2 WHERE id = $1', [id, `w${next++}`]);
        else if (r < 0.6) await w.query('UPDATE m SET k = (k + 100) % 300 WHERE id = $1', [id]); // to another partition
        else if (r < 0.7) await w.query('UPDATE m SET k = k + 1 WHERE id = $1 AND k % 100 < 99', [id]); // key change, same partition
        else if (r < 0.8) await w.query('DELETE FROM m WHERE id = $1', [id]);
        else await w.query("INSERT INTO m VALUES ($1, $1 % 300, 'new')", [next++]);
      }
    })();
    try {
      await proc.waitForLog(/snapshot completed/, 120_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      stop = true;
      await writing;
      await w.end();
    }

    const pub = await db.query<{ pubviaroot: boolean }>('SELECT pubviaroot FROM pg_publication WHERE pubname = $1', [`tributary_${name}`]);
    assert.equal(pub.rows[0]!.pubviaroot, true, 'the existing publication publishes through the root');
    const members = await db.query<{ t: string }>('SELECT prrelid::regclass::text AS t FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = $1', [`tributary_${name}`]);
    assert.deepEqual(members.rows.map((r) => r.t), ['m'], 'the leaves are no longer listed');

    const rowKey = (r: Row | null | undefined) => (r ? `${r.id}/${r.k}` : '');
    const want = new Map((await db.query<{ id: number; k: number; v: string }>('SELECT id, k, v FROM m')).rows.map((r) => [rowKey(r as unknown as Row), r as unknown as Row]));
    const state = (evs: ChangeEvent[]) => {
      const m = new Map<string, Row>();
      for (const e of evs) {
        if (e.op === 'd') m.delete(rowKey(e.before ?? e.key));
        else if (e.op === 'c' || e.op === 'r' || e.op === 'u') {
          if (e.op === 'u' && e.before) m.delete(rowKey(e.before));
          m.set(rowKey(e.after), e.after!);
        }
      }
      return m;
    };
    let evs: ChangeEvent[] = [];
    await waitFor(
      () => {
        evs = readJsonl(`${dir.path}/out.jsonl`);
        const got = state(evs);
        return got.size === want.size && [...want].every(([k, v]) => JSON.stringify(got.get(k)) === JSON.stringify(v));
      },
      { timeoutMs: 60_000, what: 'the sink to equal the table' },
    );
    const tables = new Set(evs.map((e) => e.source.table));
    assert.deepEqual([...tables], ['m'], 'every event names the parent');
    const reads = evs.filter((e) => e.op === 'r');
    assert.equal(new Set(reads.map((e) => rowKey(e.after))).size, reads.length, 'no row read twice');
    assert.ok(reads.length > 4000, `the snapshot read the table (${reads.length} rows)`);
    assert.ok(evs.some((e) => e.op !== 'r'), 'changes streamed');
    assert.equal(await proc.kill('SIGTERM'), 0);
  });

  it('a table that joined just before a SIGKILL is still snapshotted after the restart', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('joinkill');
    await using dir = new TempDir();
    const name = `joinkill${process.pid}`;
    // The publication and slot exist already: the start alters nothing (which would wait for the
    // lock below) and creates no slot (which would wait for the lock's transaction to end).
    await db.query(`CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big SELECT g, 'b' FROM generate_series(1, 100) g;
      CREATE PUBLICATION "tributary_${name}" FOR TABLE big WITH (publish_via_partition_root = true)`);
    await db.query(`SELECT pg_create_logical_replication_slot('tributary_${name}', 'pgoutput')`);
    // While this lock is held the initial snapshot cannot read big, so it stays running, and a
    // table that joins meanwhile must wait for its own snapshot.
    const locker = await db.connect();
    await locker.query('BEGIN; LOCK TABLE big IN ACCESS EXCLUSIVE MODE');
    const cfg = config(dir, name, db.url, 'tables: [public.big, "public.late*"]\ntable_check_ms: 300');
    try {
      await using p1 = TributaryProcess.start(['run', '--config', cfg]);
      await p1.waitForLog(/pipeline \S+ running/, 60_000);
      await db.query("BEGIN; CREATE TABLE late (id int PRIMARY KEY, v text); INSERT INTO late SELECT g, 'l' FROM generate_series(1, 30) g; COMMIT");
      await p1.waitForLog(/added public\.late/, 30_000);
      assert.equal(await p1.kill('SIGKILL'), -1);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    // The restart finds late already in the publication: only the stored request says that its
    // 30 rows were never streamed.
    await using p2 = TributaryProcess.start(['run', '--config', cfg]);
    let evs: ChangeEvent[] = [];
    await waitFor(
      () => (evs = readJsonl(`${dir.path}/out.jsonl`)).filter((e) => e.source.table === 'late').length >= 30,
      { timeoutMs: 90_000, what: `late's 30 rows (have ${evs.filter((e) => e.source.table === 'late').length})` },
    );
    const late = evs.filter((e) => e.source.table === 'late');
    assert.deepEqual(late.map((e) => e.op), Array(30).fill('r'));
    assert.deepEqual(late.map((e) => e.after!.id).sort((a, b) => Number(a) - Number(b)), Array.from({ length: 30 }, (_, i) => i + 1));
    await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.source.table === 'big').length >= 100, { what: "big's 100 rows" });
    assert.equal(await p2.kill('SIGTERM'), 0);
  });

  it('preflight names the missing privileges with their GRANTs; a runtime "permission denied" is coded', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('privs');
    await using dir = new TempDir();
    await using role = await PgTestRole.create(db);
    const name = `privs${process.pid}`;
    await db.query("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')");
    const port = await freePort();
    const cfg = config(dir, name, role.url, 'tables: [public.t]', port);

    // A role with LOGIN and REPLICATION only: no CREATE on the database, no SELECT on t, does not own t.
    const v1 = await TributaryProcess.run(['validate', '--config', cfg, '--check-source']);
    assert.equal(v1.code, 2, v1.stdout + v1.stderr);
    assert.match(v1.stdout, new RegExp(`ERROR TRB2021 .*CREATE[^\\n]*\\n\\s+fix: GRANT CREATE ON DATABASE "${db.name}" TO "${role.name}";`));
    assert.match(v1.stdout, new RegExp(`ERROR TRB2021 .*SELECT[^\\n]*\\n\\s+fix: GRANT SELECT ON TABLE "public"\\."t" TO "${role.name}";`));
    // t's owner is a superuser: membership in that role would be too much, so the fix hands over t.
    assert.match(v1.stdout, new RegExp(`ERROR TRB2021 .*does not own public\\.t[^\\n]*\\n\\s+fix: ALTER TABLE "public"\\."t" OWNER TO "${role.name}";`));
    // All in one pass, and run refuses with the same list (and never an uncoded "permission denied").
    const r1 = await TributaryProcess.run(['run', '--config', cfg], { timeoutMs: 60_000 });
    assert.equal(r1.code, 1, r1.stderr);
    assert.match(r1.stderr, /TRB2021/);

    // The fixes, as a DBA would apply them: then validate passes and run streams.
    await db.query(`GRANT CREATE ON DATABASE "${db.name}" TO "${role.name}"; ALTER TABLE t OWNER TO "${role.name}"`);
    const v2 = await TributaryProcess.run(['validate', '--config', cfg, '--check-source']);
    assert.equal(v2.code, 0, v2.stdout + v2.stderr);
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(/snapshot completed/, 60_000);
    await db.query("INSERT INTO t VALUES (3, 'c')");
    await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).length === 3, { what: '2 snapshot rows and 1 insert' });

    // A privilege lost while running: an on-demand snapshot fails with the coded error and its GRANT.
    await db.query(`REVOKE SELECT ON t FROM "${role.name}"`);
    const s = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', 'public.t']);
    assert.equal(s.code, 0, s.stdout + s.stderr);
    await waitFor(() => logged(proc, 'TRB2021').length > 0, { what: 'a TRB2021 error in the log' });
    const coded = logged(proc, 'TRB2021')[0]!;
    assert.match(coded.msg, /permission denied for table t/);
    assert.match(coded.msg, new RegExp(`fix: GRANT SELECT ON TABLE "public"\\."t" TO "${role.name}";`));
    const denied = (proc.stdout + proc.stderr).split('\n').filter((l) => l.startsWith('{') && l.includes('permission denied'));
    for (const l of denied) assert.match((JSON.parse(l) as { msg: string }).msg, /TRB2021/, `every "permission denied" is coded: ${l}`);
    assert.equal(await proc.kill('SIGTERM'), 0);
  });
});
