/**
 * End-to-end harness for the warehouse sinks (postgres, duckdb), shared by
 * test/sinks/postgres-e2e.test.ts and duckdb-e2e.test.ts.
 *
 * The scenario: a real `tributary run` process with a source (the source block is a parameter:
 * Postgres or MariaDB), a jsonl audit sink, and the sink under test twice (mirror and history);
 * a concurrent writer doing inserts, updates and deletes; an ALTER TABLE ADD COLUMN mid-stream;
 * a SIGKILL mid-load and a restart. Then the mirror must equal the source table exactly, and
 * the history must hold every committed change exactly once.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Row } from '../../src/core/event.js';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from './context.js';

/** The source side of the scenario. */
export interface E2ESource {
  /** The `source:` block (YAML, indented by two spaces under `source:`). */
  yaml: string;
  /** The source schema/db name: the mirror's default target schema. */
  schema: string;
  /** Run one statement on a writer connection; resolves to the number of rows it changed. */
  exec(sql: string, params: unknown[]): Promise<number>;
  /** The SQL the writer uses (placeholders `$1`… or `?`). */
  sql: { insert: string; update: string; delete: string; addColumn: string; updateNote: string };
  /** The table's rows, normalized with `normalize`. */
  rows(): Promise<Map<string, Row>>;
}

/** The sink under test. */
export interface E2ETarget {
  /** Sink blocks (YAML list items) for the mirror and history sinks, named `mirror` and `history`. */
  sinks(dir: string): string;
  /** Read after the process stopped: the mirror's rows and the history rows (ordered by `_fence`). */
  read(dir: string, schema: string): Promise<{ mirror: Record<string, unknown>[]; history: Record<string, unknown>[] }>;
}

/** One row in a comparable form: numbers as numbers, JSON as values, times as epoch ms. */
export function normalize(r: Record<string, unknown>): Row {
  const out: Row = {};
  out.id = Number(r.id);
  out.qty = r.qty === null || r.qty === undefined ? null : Number(r.qty);
  out.name = (r.name as string | null) ?? null;
  out.amount = r.amount === null || r.amount === undefined ? null : String(r.amount);
  const at = r.at as string | Date | null | undefined;
  out.at = at === null || at === undefined ? null : at instanceof Date ? at.getTime() : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(at) ? at : at.replace(' ', 'T') + 'Z');
  const doc = r.doc;
  out.doc = doc === null || doc === undefined ? null : typeof doc === 'string' ? JSON.parse(doc) : (doc as Row);
  out.note = (r.note as string | null | undefined) ?? null;
  return out;
}

function keyed(rows: Row[]): Map<string, Row> {
  return new Map(rows.map((r) => [JSON.stringify({ id: r.id }), r]));
}

function checkpoint(dir: string, pipeline: string, sink: string): { position: string; state?: { offset?: number } } | null {
  const p = join(dir, 'state', pipeline, `sink.${encodeURIComponent(sink)}.json`);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return null; // mid-rename
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run the scenario; returns counts for extra assertions. */
export async function runSinkE2E(o: { pipeline: string; source: E2ESource; target: E2ETarget }): Promise<{ committed: number }> {
  await using dir = new TempDir(`tributary-${o.pipeline}-`);
  const audit = join(dir.path, 'audit.jsonl');
  const cfg = dir.file(
    'pipeline.yaml',
    `name: ${o.pipeline}
source:
${o.source.yaml}
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${audit}
${o.target.sinks(dir.path)}
http: { port: 0 }
`,
  );
  const running = new RegExp(`pipeline ${o.pipeline} running`);
  let proc = TributaryProcess.start(['run', '--config', cfg]);
  try {
    await proc.waitForLog(running);
    const { exec, sql } = o.source;
    let committed = 0;
    let stop = false;
    let noteColumn = false;
    const ids: number[] = [];
    let next = 1;
    const writing = (async () => {
      let n = 0;
      while (!stop) {
        n++;
        const r = Math.random();
        if (r < 0.4 || ids.length < 20) {
          const id = next++;
          committed += await exec(sql.insert, [id, n % 1000, `name ${id}`, `${id}.${String(n % 100).padStart(2, '0')}`, new Date(1_737_000_000_000 + n * 1000 + (n % 1000)).toISOString(), JSON.stringify({ n, tags: ['a', String(n % 7)] })]);
          ids.push(id);
        } else if (r < 0.85) {
          const id = ids[Math.floor(Math.random() * ids.length)]!;
          committed += noteColumn && r < 0.6 ? await exec(sql.updateNote, [id, `note ${n}`]) : await exec(sql.update, [id, `renamed ${n}`]);
        } else {
          const id = ids.splice(Math.floor(Math.random() * ids.length), 1)[0]!;
          committed += await exec(sql.delete, [id]);
        }
        if (n % 25 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    // A new source column while the pipeline streams.
    await sleep(700);
    await exec(sql.addColumn, []);
    noteColumn = true;
    await sleep(700);
    await proc.kill('SIGKILL');
    const atKill = committed;
    await sleep(400);
    proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(running);
    await sleep(1200);
    stop = true;
    await writing;
    assert.ok(committed > atKill && atKill > 50, `the writer kept writing across the SIGKILL (${atKill} before, ${committed} in all)`);
    // A marker: the last change. Once the audit file holds it and its checkpoint covers the whole
    // file, the audit sink is at the final position; the sinks under test must reach the same.
    const marker = next++;
    committed += await exec(sql.insert, [marker, 0, 'marker', '0.00', new Date(1_737_000_000_000).toISOString(), '{}']);
    await waitFor(
      () => {
        if (!existsSync(audit) || !readFileSync(audit, 'utf8').includes(`"name":"marker"`)) return false;
        const a = checkpoint(dir.path, o.pipeline, 'audit');
        if (!a || a.state?.offset !== statSync(audit).size) return false;
        return ['mirror', 'history'].every((s) => checkpoint(dir.path, o.pipeline, s)?.position === a.position);
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the sinks to commit the final position' },
    );
    assert.equal(await proc.kill('SIGTERM'), 0, 'a drained SIGTERM stop exits 0');

    const want = await o.source.rows();
    const got = await o.target.read(dir.path, o.source.schema);
    assert.deepEqual(keyed(got.mirror.map(normalize)), want, 'the mirror holds exactly the source rows (including the column added mid-stream)');
    assert.ok([...want.values()].some((r) => r.note !== null), 'the column added mid-stream carries values');

    // History: every committed change exactly once, in order; replaying it gives the table.
    assert.equal(got.history.length, committed, 'the history holds every committed change exactly once');
    const replay = new Map<string, Row>();
    for (const h of got.history) {
      const k = JSON.stringify({ id: Number(h.id) });
      if (h._op === 'd') replay.delete(k);
      else replay.set(k, normalize(h));
    }
    assert.deepEqual(replay, want, 'replaying the history gives the source table');
    return { committed };
  } finally {
    await proc.kill('SIGKILL');
  }
}

/** A Postgres source: `public.items` with REPLICA IDENTITY FULL. */
export async function pgSource(db: PgTestDb): Promise<E2ESource & AsyncDisposable> {
  await db.query(`CREATE TABLE items (id bigint PRIMARY KEY, qty int, name text, amount numeric(12,2), at timestamptz, doc jsonb);
    ALTER TABLE items REPLICA IDENTITY FULL`);
  const w = await db.connect();
  return {
    yaml: `  type: postgres\n  url: ${db.url}\n  tables: [public.items]\n  snapshot: never\n  status_interval_ms: 200`,
    schema: 'public',
    async exec(sql, params) {
      return (await w.query(sql, params)).rowCount ?? 0;
    },
    sql: {
      insert: 'INSERT INTO items (id, qty, name, amount, at, doc) VALUES ($1, $2, $3, $4, $5, $6)',
      update: 'UPDATE items SET name = $2, qty = qty + 1 WHERE id = $1',
      updateNote: 'UPDATE items SET note = $2 WHERE id = $1',
      delete: 'DELETE FROM items WHERE id = $1',
      addColumn: 'ALTER TABLE items ADD COLUMN note text',
    },
    async rows() {
      const r = await db.query('SELECT id, qty, name, amount::text AS amount, at, doc, note FROM items');
      return new Map(r.rows.map((x): [string, Row] => [JSON.stringify({ id: Number(x.id) }), normalize(x)]));
    },
    async [Symbol.asyncDispose]() {
      await w.end();
    },
  };
}


/** A MariaDB source: `<db>.items` (the server runs binlog_format ROW, binlog_row_image FULL). */
export async function mariaSource(): Promise<E2ESource & AsyncDisposable> {
  const { MysqlTestDb, uniqueServerId } = await import('../helpers/mysql.js');
  const db = await MysqlTestDb.create('sinke2e');
  await db.query('CREATE TABLE items (id bigint PRIMARY KEY, qty int, name varchar(200), amount decimal(12,2), at datetime(3), doc json)');
  const w = await db.connect();
  // MariaDB takes DATETIME literals without the ISO `T` and `Z`.
  const fix = (v: unknown) => (typeof v === 'string' && /^\d{4}-\d\d-\d\dT.*Z$/.test(v) ? v.replace('T', ' ').replace('Z', '') : v);
  return {
    yaml: `  type: mysql\n  url: ${db.url}\n  tables: [${db.name}.items]\n  snapshot: never\n  server_id: ${uniqueServerId()}\n  heartbeat_ms: 1000`,
    schema: db.name,
    async exec(sql, params) {
      const [r] = await w.query(sql, params.map(fix));
      return (r as { affectedRows?: number }).affectedRows ?? 0;
    },
    sql: {
      insert: 'INSERT INTO items (id, qty, name, amount, at, doc) VALUES (?, ?, ?, ?, ?, ?)',
      // Parameters come as (id, value): a derived table puts them in that order.
      update: 'UPDATE items t JOIN (SELECT ? AS id, ? AS v) p ON t.id = p.id SET t.name = p.v, t.qty = t.qty + 1',
      updateNote: 'UPDATE items t JOIN (SELECT ? AS id, ? AS v) p ON t.id = p.id SET t.note = p.v',
      delete: 'DELETE FROM items WHERE id = ?',
      addColumn: 'ALTER TABLE items ADD COLUMN note text',
    },
    async rows() {
      const r = await db.query<Record<string, unknown>[]>('SELECT id, qty, name, amount, at, doc, note FROM items');
      return new Map(r.map((x): [string, Row] => [JSON.stringify({ id: Number(x.id) }), normalize(x)]));
    },
    async [Symbol.asyncDispose]() {
      await w.end();
      await db[Symbol.asyncDispose]();
    },
  };
}
