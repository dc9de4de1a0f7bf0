import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { JsonValue } from '../../src/core/event.js';
import { type ChunkBounds, type ChunkRows, type SnapshotSupport, type SnapshotTable } from '../../src/snapshot/types.js';
import { PgSnapshotSupport } from '../../connectors/postgres/snapshot.js';
import { MysqlSnapshotSupport, parseSignalTable } from '../../connectors/mysql/snapshot.js';
import { PgTestDb, TempDir, TributaryProcess } from '../helpers/context.js';
import { readJsonl } from '../helpers/pipeline.js';
import { MysqlTestDb } from '../helpers/mysql.js';

/**
 * Keyed chunks are cut lazily (one index probe per chunk). These tests hold them to the
 * reference: the lazy bounds are exactly the up-front plan's, every row is read exactly once
 * (gaps, composite keys, text keys in a case-insensitive collation, a WHERE), and a snapshot
 * state stored before chunks were cut lazily still resumes.
 */

/** Every chunk, found the lazy way: each bound from the previous one. */
async function lazyChunks(support: SnapshotSupport, table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]> {
  const planner = await support.planner();
  try {
    const out: ChunkBounds[] = [];
    let lo: JsonValue[] | null = null;
    for (;;) {
      const hi = await planner.next(table, lo, chunkRows, where);
      out.push({ lo, hi });
      if (!hi) return out;
      lo = hi;
    }
  } finally {
    await planner.close();
  }
}

/** The chunks' rows through one reader, chunk by chunk. */
async function readChunks(support: SnapshotSupport, table: SnapshotTable, chunks: ChunkBounds[], where: string | null): Promise<ChunkRows[]> {
  const reader = await support.reader();
  try {
    const out: ChunkRows[] = [];
    for (const ch of chunks) out.push(await reader.read(table, ch, where));
    return out;
  } finally {
    await reader.close();
  }
}

/** Lazy bounds = plan's bounds; every matching row exactly once; the last chunk not empty. */
async function assertCoverage(support: SnapshotSupport, table: SnapshotTable, chunkRows: number, where: string | null, want: number): Promise<void> {
  const lazy = await lazyChunks(support, table, chunkRows, where);
  assert.deepEqual(lazy, await support.plan(table, chunkRows, where), `${table.name}: lazy bounds equal the up-front plan`);
  const got = await readChunks(support, table, lazy, where);
  const keys = got.flatMap((c) => c.keys);
  assert.equal(keys.length, want, `${table.name}: every row read`);
  assert.equal(new Set(keys).size, want, `${table.name}: no row read twice`);
  assert.ok(got.at(-1)!.rows.length > 0 || want === 0, `${table.name}: the last chunk has rows`);
  for (const c of got.slice(0, -1)) assert.equal(c.rows.length, chunkRows, `${table.name}: full chunks`);
}

describe('lazily cut chunks', { concurrency: false }, () => {
  it('postgres: bounds and coverage', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('snaplazy');
    await db.query(`
      CREATE TABLE gaps (id bigint PRIMARY KEY, v text);
      INSERT INTO gaps SELECT g * 7 + (g % 3), 'v' || g FROM generate_series(1, 5000) g;
      CREATE TABLE comp (a int, b text, v int, PRIMARY KEY (a, b));
      INSERT INTO comp SELECT g % 17, 'k' || g, g FROM generate_series(1, 4000) g;
      CREATE TABLE txt (k text COLLATE "C" PRIMARY KEY, v text);
      INSERT INTO txt SELECT md5(g::text) || CASE WHEN g % 5 = 0 THEN ' é ✓' ELSE '' END, 'ü ' || g FROM generate_series(1, 3000) g;
      CREATE TABLE exact (id int PRIMARY KEY);
      INSERT INTO exact SELECT g FROM generate_series(1, 3000) g;
      CREATE TABLE empty (id int PRIMARY KEY);
      ANALYZE;`);
    const support = new PgSnapshotSupport({ url: db.url, include: ['public.*'], exclude: undefined, keyColumns: undefined, types: () => new Map() });
    const t = new Map((await support.tables()).map((x) => [x.name.split('.')[1]!, x]));
    await assertCoverage(support, t.get('gaps')!, 700, null, 5000);
    await assertCoverage(support, t.get('gaps')!, 333, 'v LIKE \'v1%\'', 1111);
    await assertCoverage(support, t.get('comp')!, 500, null, 4000);
    await assertCoverage(support, t.get('txt')!, 256, null, 3000);
    await assertCoverage(support, t.get('exact')!, 1000, null, 3000);
    assert.equal((await lazyChunks(support, t.get('exact')!, 1000, null)).length, 3, 'a row count that is a multiple of the chunk size leaves no empty chunk');
    await assertCoverage(support, t.get('empty')!, 100, null, 0);

  });

  it('mysql: bounds and coverage', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('snaplazy');
    await db.query('CREATE TABLE gaps (id bigint PRIMARY KEY, v varchar(20))');
    await db.query("INSERT INTO gaps SELECT seq * 7 + seq % 3, CONCAT('v', seq) FROM seq_1_to_5000");
    await db.query('CREATE TABLE comp (a int, b varchar(20), v int, PRIMARY KEY (a, b))');
    await db.query("INSERT INTO comp SELECT seq % 17, CONCAT('k', seq), seq FROM seq_1_to_4000");
    // Case- and accent-insensitive: boundaries must compare in the column's collation.
    await db.query('CREATE TABLE txt (k varchar(64) COLLATE utf8mb4_unicode_ci PRIMARY KEY, v text)');
    await db.query("INSERT INTO txt SELECT CONCAT(IF(seq % 2, 'A', 'b'), MD5(seq), IF(seq % 5 = 0, ' é ✓', '')), CONCAT('ü ', seq) FROM seq_1_to_3000");
    await db.query('CREATE TABLE exact (id int PRIMARY KEY)');
    await db.query('INSERT INTO exact SELECT seq FROM seq_1_to_3000');
    const support = new MysqlSnapshotSupport({ url: db.url, include: [`${db.name}.*`], exclude: undefined, keyColumns: undefined, signal: parseSignalTable(`${db.name}.watermarks`) });
    const t = new Map((await support.tables()).map((x) => [x.name.split('.')[1]!, x]));
    await assertCoverage(support, t.get('gaps')!, 700, null, 5000);
    await assertCoverage(support, t.get('gaps')!, 333, "v LIKE 'v1%'", 1111);
    await assertCoverage(support, t.get('comp')!, 500, null, 4000);
    await assertCoverage(support, t.get('txt')!, 256, null, 3000);
    await assertCoverage(support, t.get('exact')!, 1000, null, 3000);

  });

  it('a snapshot state stored before lazy chunks (full chunk list, no `open`) resumes', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('snapold');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 5000) g; ANALYZE t');
    const support = new PgSnapshotSupport({ url: db.url, include: ['public.t'], exclude: undefined, keyColumns: undefined, types: () => new Map() });
    const [table] = await support.tables();
    const chunks = await support.plan(table!, 1000, null);
    assert.equal(chunks.length, 5);
    // The old format: the whole plan, chunks 0 and 1 done.
    mkdirSync(`${dir.path}/state/snapold`, { recursive: true });
    dir.file('state/snapold/snapshot.json', JSON.stringify({
      id: '00000000-0000-4000-8000-000000000000', kind: 'initial', status: 'running', startedAt: Date.now(),
      tables: [{ table, where: null, chunks, done: chunks.map((_, i) => i < 2), rows: 2000 }],
    }));
    const cfg = dir.file('snapold.yaml', `name: snapold
source:
  type: postgres
  url: ${db.url}
  tables: [public.t]
  snapshot: initial_only
  snapshot_chunk_rows: 700
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/out.jsonl
http: { port: 0 }
`);
    const r = await TributaryProcess.run(['run', '--config', cfg], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.match(r.stderr, /resuming snapshot from its last durable chunk/);
    const ids = readJsonl(`${dir.path}/out.jsonl`).map((e) => Number(e.after!.id));
    // Exactly the stored chunks not done, with their stored bounds (not 700-row chunks).
    assert.deepEqual(ids.sort((a, b) => a - b), Array.from({ length: 3000 }, (_, i) => i + 2001));
  });
});
