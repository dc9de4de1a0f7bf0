import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';
import { readJsonl } from '../helpers/pipeline.js';
import { resumeAfterSigkill, snapshotState, snapshotUnderLoad } from '../helpers/snapshot-run.js';

/** The admin token of these tests' configs (POST /snapshot needs one). */
const TOKEN = 'snapshot-test-token-0123456789';

/**
 * The MariaDB twin of pg-snapshot: DBLog watermark snapshots through the signal table, while
 * the binlog keeps streaming. Every pipeline uses its own signal table (in its own test
 * database), so tests never see each other's watermarks and clean-up drops it.
 */
function config(
  dir: TempDir,
  db: MysqlTestDb,
  o: { name: string; tables: string; mode: string; chunk?: number; workers?: number; port?: number; extraSinks?: string; extraSource?: string; out?: string },
) {
  return dir.file(
    `${o.name}.yaml`,
    `name: ${o.name}
source:
  type: mysql
  url: ${db.url}
  tables: [${o.tables}]
  snapshot: ${o.mode}
  snapshot_chunk_rows: ${o.chunk ?? 5000}
  snapshot_workers: ${o.workers ?? 2}
  server_id: ${uniqueServerId()}
  heartbeat_ms: 1000
  signal_table: ${db.name}.tributary_signal
${o.extraSource ? o.extraSource.replace(/^/gm, '  ') + '\n' : ''}state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/${o.out ?? 'out.jsonl'}
${o.extraSinks ?? ''}
http: { port: ${o.port ?? 0}, auth_token: ${TOKEN} }
`,
  );
}



const unique = (p: string) => `${p}${process.pid % 100000}`;

describe('mysql snapshots (DBLog watermarks via the signal table, chunked, resumable)', { concurrency: false }, () => {
  it('200k rows with a concurrent writer: jsonl replay and Redis equal the table', { timeout: 240_000 }, async () => {
    await using db = await MysqlTestDb.create('msnapc');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note varchar(40))');
    await db.query("INSERT INTO t SELECT seq, 0, CONCAT('n', seq) FROM seq_1_to_200000");
    await db.query('ANALYZE TABLE t');
    await snapshotUnderLoad({
      label: 'mysql',
      name: unique('msnapc'),
      dir,
      config: (o) => config(dir, db, { ...o, tables: `${db.name}.t` }),
      async writer() {
        const c = await db.connect();
        return {
          update: (id, note) => c.query('UPDATE t SET v = v + 1, note = ? WHERE id = ?', [note, id]),
          remove: (id) => c.query('DELETE FROM t WHERE id = ?', [id]),
          insert: (id, note) => c.query('INSERT INTO t VALUES (?, 1, ?)', [id, note]),
          end: () => c.end(),
        };
      },
      rows: () => db.query<{ id: string; v: number; note: string }[]>('SELECT id, v, note FROM t'),
      check(events) {
        const reads = events.filter((e) => e.op === 'r');
        assert.ok(reads.every((e) => e.source.connector === 'mysql' && e.source.db === db.name && e.source.table === 't' && typeof e.source.pos === 'number' && e.source.pos > 0 && e.source.file));
        assert.ok(events.every((e) => e.source.table !== 'tributary_signal'), 'signal-table rows never reach a sink');
      },
    });
  });

  it('a SIGKILL at about 25% resumes from the last durable chunk: nothing lost, few rows re-read', { timeout: 240_000 }, async () => {
    await using db = await MysqlTestDb.create('msnapk');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note varchar(60))');
    await db.query("INSERT INTO t SELECT seq, 0, REPEAT('x', 50) FROM seq_1_to_200000");
    await resumeAfterSigkill({ label: 'mysql', name: unique('msnapk'), dir, config: (o) => config(dir, db, { ...o, tables: `${db.name}.t` }) });
  });

  it('on demand: a filtered --where snapshot while streaming, and a cancel', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('msnapd');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, note text)');
    await db.query('INSERT INTO t SELECT seq, 0, NULL FROM seq_1_to_100000');
    await db.query('CREATE TABLE other (id int PRIMARY KEY)');
    const port = await freePort();
    const name = unique('msnapd');
    const cfg = config(dir, db, { name, tables: `${db.name}.t, ${db.name}.other`, mode: 'never', chunk: 1000, port });
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(new RegExp(`pipeline ${name} running`));
    await db.query('INSERT INTO other VALUES (1)');
    const r = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', `${db.name}.t`, '--where', 'id <= 250 AND id % 2 = 0']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /started on pipeline/);
    await proc.waitForLog(/snapshot completed: 125 rows/);
    await db.query('INSERT INTO other VALUES (2)');
    await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.source.table === 'other').length === 2, { what: 'streaming to go on' });
    const reads = readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'r');
    assert.equal(reads.length, 125);
    assert.ok(reads.every((e) => e.source.snapshot === 'incremental' && Number(e.after!.id) % 2 === 0 && Number(e.after!.id) <= 250));
    assert.deepEqual(reads.map((e) => e.key), Array.from({ length: 125 }, (_, i) => ({ id: 2 * (i + 1) })), 'in key order, keyed by the primary key');

    // Start a full snapshot and cancel it at once (through the HTTP API the CLI uses).
    const api = (body: object) => fetch(`http://127.0.0.1:${port}/snapshot`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ pipeline: name, table: `${db.name}.t`, ...body }) });
    assert.equal((await api({ action: 'start' })).status, 202);
    const again = await api({ action: 'start' });
    assert.equal(again.status, 409, 'a second snapshot while one runs is refused');
    const cancel = await api({ action: 'cancel' });
    assert.equal(cancel.status, 200);
    assert.match(await cancel.text(), /"status": "cancelled"/);
    await proc.waitForLog(/snapshot cancelled/);
    await new Promise((r) => setTimeout(r, 1000));
    const n = readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'r').length - 125;
    assert.ok(n < 100000, `the cancelled snapshot stopped early (${n} rows)`);
    const cli = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', `${db.name}.t`, '--cancel']);
    assert.equal(cli.code, 1, 'nothing left to cancel');
    // Streaming still goes on, and no signal-table row ever reached the sink.
    await db.query('INSERT INTO other VALUES (3)');
    await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.source.table === 'other').length === 3, { what: 'streaming after the cancel' });
    assert.ok(readJsonl(`${dir.path}/out.jsonl`).every((e) => e.source.table !== 'tributary_signal'));
    const st = await TributaryProcess.run(['status', '--config', cfg]);
    assert.match(st.stdout, /snapshot [0-9a-f-]+ \(incremental\): cancelled/);
  });

  it('no primary key: a NOT NULL unique key is used; no usable key fails with key_columns advice; key_columns works', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('msnapu');
    await using dir = new TempDir();
    await db.query('CREATE TABLE u (code varchar(20) NOT NULL, alt int NULL, n int, UNIQUE KEY by_alt (alt), UNIQUE KEY by_code (code)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci');
    await db.query("INSERT INTO u SELECT CONCAT(IF(seq % 2, 'K', 'k'), LPAD(seq, 6, '0')), seq, seq FROM seq_1_to_10000");
    const name = unique('msnapu');
    const cfg = config(dir, db, { name, tables: `${db.name}.u`, mode: 'initial', chunk: 1000 });
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(/snapshot completed: 10000 rows/, 60_000);
    // A streamed change carries the same key as the snapshot rows.
    await db.query("INSERT INTO u VALUES ('z-new', NULL, 1)");
    await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).some((e) => e.op === 'c'), { what: 'the streamed insert' });
    assert.equal(await proc.kill('SIGTERM'), 0);
    const evs = readJsonl(`${dir.path}/out.jsonl`);
    const reads = evs.filter((e) => e.op === 'r');
    assert.equal(reads.length, 10000);
    assert.equal(new Set(reads.map((e) => e.after!.code)).size, 10000, 'every row once (case-insensitive collation boundaries hold)');
    assert.deepEqual(reads[0]!.key, { code: reads[0]!.after!.code }, 'keyed by the NOT NULL unique key, not the nullable one');
    assert.deepEqual(evs.find((e) => e.op === 'c')!.key, { code: 'z-new' });
    const s = snapshotState(dir, name)!;
    assert.equal(s.tables[0]!.table.keyKind, 'unique');
    assert.ok(s.tables[0]!.done.length >= 10, `unique-key chunks: ${s.tables[0]!.done.length}`);

    // No usable key: a nullable unique key does not count. These pipelines get their own
    // directory: a jsonl file written by another pipeline is refused (TRB3013).
    await using dir2 = new TempDir();
    await db.query('CREATE TABLE nk (a int NOT NULL, b varchar(10), UNIQUE KEY (b))');
    await db.query("INSERT INTO nk SELECT seq, CONCAT('b', seq) FROM seq_1_to_3000");
    const bad = config(dir2, db, { name: unique('msnapnk'), tables: `${db.name}.nk`, mode: 'initial_only', chunk: 1000 });
    const r1 = await TributaryProcess.run(['run', '--config', bad]);
    assert.equal(r1.code, 1, r1.stderr.slice(-2000));
    assert.match(r1.stderr, new RegExp(`TRB4006 table ${db.name}\\.nk has no primary key or unique key`));
    assert.match(r1.stderr, new RegExp(`key_columns: \\{ \\\\?"${db.name}\\.nk\\\\?": \\[col, \\.\\.\\.\\] \\}`));

    await using dir3 = new TempDir();
    const good = config(dir3, db, { name: unique('msnapkc'), tables: `${db.name}.nk`, mode: 'initial_only', chunk: 1000, extraSource: `key_columns: { "${db.name}.nk": [a] }` });
    const r2 = await TributaryProcess.run(['run', '--config', good]);
    assert.equal(r2.code, 0, r2.stderr.slice(-2000));
    const nk = readJsonl(`${dir3.path}/out.jsonl`).filter((e) => e.source.table === 'nk');
    assert.equal(nk.length, 3000);
    assert.equal(new Set(nk.map((e) => e.key!.a)).size, 3000);
  });

  it('every column type: a snapshot row equals the streamed insert of the same row', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('msnapt');
    await using dir = new TempDir();
    await db.query(`CREATE TABLE ty (
      id int PRIMARY KEY,
      ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned, mi mediumint, miu mediumint unsigned,
      i int, iu int unsigned, bi bigint, biu bigint unsigned,
      f float, d double, dec2 decimal(8,2), dec65 decimal(65,30), dec0 decimal(5,0),
      dt date, dtm datetime, dtm6 datetime(6), ts timestamp(3) NULL DEFAULT NULL, ts0 timestamp NULL DEFAULT NULL, tm time, tm6 time(6), yr year,
      c char(10), vc varchar(100), tx text, l1 varchar(20) CHARACTER SET latin1, mt mediumtext,
      w1251 varchar(20) CHARACTER SET cp1251, sj varchar(20) CHARACTER SET sjis, u16 varchar(20) CHARACTER SET utf16,
      bn binary(4), vb varbinary(10), bl blob,
      e enum('small','medium','large'), s set('a','b','c'), b1 bit(1), b10 bit(10), b64 bit(64),
      j json, g geometry, pt point, nul int
    ) CHARACTER SET utf8mb4`);
    const port = await freePort();
    const name = unique('msnapt');
    const cfg = config(dir, db, { name, tables: `${db.name}.ty`, mode: 'never', port });
    await using proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(new RegExp(`pipeline ${name} running`));
    await db.query("SET time_zone = '+00:00', sql_mode = ''");
    await db.query(`INSERT INTO ty VALUES (1,
      -128, 255, -32768, 65535, -8388608, 16777215,
      -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
      3.14159265, 0.1e0 + 0.2e0, -12.30, '-12345678901234567890123456789012345.123456789012345678901234567890', -5,
      '2024-01-15', '9999-12-31 23:59:59', '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00.123', '2038-01-19 03:14:07', '-838:59:59', '-00:00:01.500000', 2024,
      'ab', 'héllo wörld 😀🎉', REPEAT('long ✓ ', 200), 'café €', REPEAT('m', 70000),
      'Привет', '日本語テキスト', 'x😀y',
      x'6100', x'00FF10', x'DEADBEEF',
      'medium', 'a,c', b'1', b'1010101010', x'FFFFFFFFFFFFFFFF',
      '{"a": [1, 2.5, "x", null, true], "b": {"c": "ü"}, "n": -0.5}', ST_GeomFromText('LINESTRING(0 0, 1 1)'), ST_GeomFromText('POINT(1 2)', 4326), NULL)`);
    await db.query(`INSERT INTO ty (id, ti, bi, biu, f, d, dec2, dec0, dt, dtm, dtm6, ts, ts0, tm, tm6, yr, c, e, s, b10, b64, j) VALUES (2,
      127, 9007199254740993, 9007199254740991, 16777217, 1.7976931348623157e308, 0.5, 0,
      '1000-01-01', '0000-00-00 00:00:00', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01.000', '0000-00-00 00:00:00', '838:59:59', '25:00:00.000001', 0,
      '', '', '', b'0', 1, '[]')`);
    await db.query("INSERT INTO ty (id, dt, dtm) VALUES (3, '0000-00-00', '2024-00-00 00:00:00')");
    await db.query('INSERT INTO ty (id) VALUES (4)');
    await waitFor(() => readJsonl(`${dir.path}/out.jsonl`).filter((e) => e.op === 'c').length === 4, { what: 'the streamed inserts' });
    const r = await TributaryProcess.run(['snapshot', '--config', cfg, '--table', `${db.name}.ty`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await proc.waitForLog(/snapshot completed: 4 rows/);
    const evs = readJsonl(`${dir.path}/out.jsonl`);
    const created = new Map(evs.filter((e) => e.op === 'c').map((e) => [e.key!.id, e]));
    const read = new Map(evs.filter((e) => e.op === 'r').map((e) => [e.key!.id, e]));
    assert.equal(read.size, 4);
    for (const id of [1, 2, 3, 4]) {
      const c = created.get(id)!.after!;
      const s = read.get(id)!.after!;
      assert.deepEqual(Object.keys(s), Object.keys(c), `row ${id}: same columns in the same order`);
      for (const k of Object.keys(c)) {
        assert.deepEqual(s[k], c[k], `row ${id} column ${k}: snapshot ${JSON.stringify(s[k])} vs binlog ${JSON.stringify(c[k])}`);
      }
    }
    // Spot checks that the shared representation is the contract's, not merely equal.
    const r1 = read.get(1)!.after!;
    assert.equal(r1.biu, '18446744073709551615');
    assert.equal(r1.bi, '-9223372036854775808');
    assert.equal(r1.f, 3.1415927);
    assert.equal(r1.d, 0.30000000000000004);
    assert.equal(r1.dec2, '-12.30');
    assert.equal(r1.ts, '2024-01-15T10:30:00.123Z');
    assert.equal(r1.dtm6, '2024-01-15T10:30:00.123456');
    assert.equal(r1.tm, '-838:59:59');
    assert.equal(r1.vc, 'héllo wörld 😀🎉');
    assert.equal(r1.l1, 'café €');
    assert.equal(r1.w1251, 'Привет');
    assert.equal(r1.sj, '日本語テキスト');
    assert.equal(r1.u16, 'x😀y');
    assert.equal(r1.bl, Buffer.from('DEADBEEF', 'hex').toString('base64'));
    assert.equal(r1.bn, Buffer.from('61000000', 'hex').toString('base64'), 'BINARY(4) keeps its padding');
    assert.equal(r1.s, 'a,c');
    assert.equal(r1.b64, '18446744073709551615');
    assert.deepEqual(r1.j, { a: [1, 2.5, 'x', null, true], b: { c: 'ü' }, n: -0.5 });
    assert.deepEqual(r1.pt, { srid: 4326, wkb: Buffer.from('0101000000000000000000f03f0000000000000040', 'hex').toString('base64') });
    const r2 = read.get(2)!.after!;
    assert.equal(r2.bi, '9007199254740993');
    assert.equal(r2.biu, 9007199254740991);
    assert.equal(r2.f, 16777216);
    assert.equal(r2.dtm, null, 'zero datetime');
    assert.equal(r2.ts0, null, 'zero timestamp');
    assert.equal(r2.tm6, '25:00:00.000001');
    assert.equal(read.get(3)!.after!.dt, null, 'zero date');
    assert.ok(evs.filter((e) => e.op === 'r').every((e) => e.source.snapshot === 'incremental' && e.source.file && typeof e.source.server_id === 'number'));
  });

  it('initial_only exits 0 when done, and at once when run again', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('msnapo');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int); CREATE TABLE t2 (a int, b varchar(8), v int, PRIMARY KEY (a, b))');
    await db.query('INSERT INTO t SELECT seq, 0 FROM seq_1_to_3000');
    await db.query("INSERT INTO t2 SELECT seq DIV 4, CONCAT('b', seq % 4), seq FROM seq_1_to_5000");
    const only = config(dir, db, { name: unique('msnapo'), tables: `${db.name}.*`, mode: 'initial_only', chunk: 700 });
    const r1 = await TributaryProcess.run(['run', '--config', only]);
    assert.equal(r1.code, 0, r1.stderr.slice(-2000));
    const evs = readJsonl(`${dir.path}/out.jsonl`);
    assert.equal(evs.filter((e) => e.source.table === 't').length, 3000);
    const t2 = evs.filter((e) => e.source.table === 't2');
    assert.equal(t2.length, 5000);
    assert.equal(new Set(t2.map((e) => JSON.stringify(e.key))).size, 5000, 'composite key chunks cover every row once');
    assert.equal(evs.filter((e) => e.source.snapshot === 'last').length, 1);
    assert.equal(evs[evs.length - 1]!.source.snapshot, 'last');
    const r2 = await TributaryProcess.run(['run', '--config', only]);
    assert.equal(r2.code, 0);
    assert.equal(readJsonl(`${dir.path}/out.jsonl`).length, 8000, 'nothing read again');
  });
});
