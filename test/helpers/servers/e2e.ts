/**
 * The end-to-end crash scenario every built-in target sink runs: a real `tributary run`
 * process streams a Postgres (or MariaDB) table into the sink while a concurrent writer
 * inserts, updates and deletes; the process is SIGKILLed mid-load and restarted; at the end
 * the target's rows must equal the source table's rows.
 *
 * The source is a parameter (`postgres` | `mysql`), the sink block and the read-back are the
 * caller's: `runCrashE2E({ source: 'postgres', sinkYaml, readTarget })`.
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import type mysql from 'mysql2/promise';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../context.js';

/** A row of the e2e table, normalized so every target and source compare equal. */
export interface E2ERow {
  id: number;
  name: string;
  n: number;
  price: string;
  meta: unknown;
}

export interface E2EOptions {
  source: 'postgres' | 'mysql';
  /** The YAML of the sink entry (the lines after `- `), indented by 4 spaces. */
  sinkYaml: string;
  /** The target's current rows, normalized to E2ERow. */
  readTarget(): Promise<E2ERow[]>;
  /** How long the writer runs before and after the SIGKILL (ms each). */
  loadMs?: number;
}

interface Db {
  /** Table name as the sink sees it in templates ({table}). */
  table: string;
  sourceYaml: string;
  exec(sql: string, params?: unknown[]): Promise<void>;
  rows(): Promise<E2ERow[]>;
  newWriter(): Promise<{ exec(sql: string, params?: unknown[]): Promise<void>; close(): Promise<void> }>;
  dispose(): Promise<void>;
}

const byId = (a: E2ERow, b: E2ERow) => a.id - b.id;

function norm(r: Record<string, unknown>): E2ERow {
  return { id: Number(r.id), name: String(r.name), n: Number(r.n), price: String(r.price), meta: typeof r.meta === 'string' ? JSON.parse(r.meta) : r.meta };
}

async function postgresDb(name: string): Promise<Db> {
  const db = await PgTestDb.create('e2e');
  await db.query('CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int NOT NULL, price numeric(12,2) NOT NULL, meta jsonb NOT NULL)');
  await db.query('ALTER TABLE items REPLICA IDENTITY FULL');
  return {
    table: 'items',
    sourceYaml: `source:\n  type: postgres\n  url: ${db.url}\n  tables: [public.items]\n  slot: ${name}\n  publication: ${name}\n  heartbeat_ms: 1000\n`,
    exec: async (sql, p) => void (await db.query(sql.replace(/\?/g, (() => { let i = 0; return () => `$${++i}`; })()), p)),
    rows: async () => (await db.query('SELECT id, name, n, price::text AS price, meta FROM items ORDER BY id')).rows.map(norm),
    async newWriter() {
      const c: pg.Client = await db.connect();
      return {
        exec: async (sql, p) => void (await c.query(sql.replace(/\?/g, (() => { let i = 0; return () => `$${++i}`; })()), p)),
        close: () => c.end(),
      };
    },
    dispose: () => db[Symbol.asyncDispose](),
  };
}

async function mysqlDb(): Promise<Db> {
  const { MysqlTestDb, uniqueServerId } = await import('../mysql.js');
  const db = await MysqlTestDb.create('e2e');
  await db.query('CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int NOT NULL, price decimal(12,2) NOT NULL, meta text NOT NULL)');
  return {
    table: 'items',
    sourceYaml: `source:\n  type: mysql\n  url: ${db.url}\n  tables: [${db.name}.items]\n  snapshot: never\n  server_id: ${uniqueServerId()}\n  heartbeat_ms: 1000\n`,
    exec: async (sql, p) => void (await db.query(sql, p)),
    rows: async () => (await db.query<Array<Record<string, unknown>>>('SELECT id, name, n, price, meta FROM items ORDER BY id')).map(norm),
    async newWriter() {
      const c: mysql.Connection = await db.connect();
      return { exec: async (sql, p) => void (await c.query(sql, p)), close: () => c.end() };
    },
    dispose: () => db[Symbol.asyncDispose](),
  };
}

/** Run the scenario; returns how many changes the writer committed. */
export async function runCrashE2E(o: E2EOptions): Promise<{ changes: number; rows: number }> {
  const name = `e2e_${o.source}_${process.pid}_${Math.floor(Math.random() * 1e5)}`;
  const db = o.source === 'postgres' ? await postgresDb(name) : await mysqlDb();
  await using dir = new TempDir('tributary-e2e-');
  try {
    // Rows that exist before the pipeline starts (the Postgres snapshot picks them up).
    let next = 1;
    const ids: number[] = [];
    const meta = (i: number) => JSON.stringify({ i, tags: ['x', String(i % 7)], nested: { ok: i % 2 === 0 } });
    if (o.source === 'postgres') {
      for (; next <= 50; next++) {
        await db.exec('INSERT INTO items VALUES (?, ?, ?, ?, ?)', [next, `seed row ${next}`, next, `${next}.50`, meta(next)]);
        ids.push(next);
      }
    }
    const cfg = dir.file(
      'e2e.yaml',
      `name: ${name}\n${db.sourceYaml}state: { type: file, dir: ${dir.path}/state }\nsinks:\n  - ${o.sinkYaml.trimStart()}\nhttp: { port: 0 }\nlog: { level: info }\n`,
    );
    let proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(new RegExp(`pipeline ${name} running`), 30_000);

    const w = await db.newWriter();
    let stop = false;
    let changes = 0;
    const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
    const writing = (async () => {
      while (!stop) {
        const r = Math.random();
        if (r < 0.5 || ids.length < 20) {
          const id = next++;
          await w.exec('INSERT INTO items VALUES (?, ?, ?, ?, ?)', [id, `${words[id % 8]} item ${id}`, id % 1000, `${id % 977}.${String(id % 100).padStart(2, '0')}`, meta(id)]);
          ids.push(id);
        } else if (r < 0.85) {
          const id = ids[Math.floor(Math.random() * ids.length)]!;
          await w.exec('UPDATE items SET name = ?, n = n + 1, price = price + 1 WHERE id = ?', [`${words[(changes + id) % 8]} updated ${changes}`, id]);
        } else {
          const id = ids.splice(Math.floor(Math.random() * ids.length), 1)[0]!;
          await w.exec('DELETE FROM items WHERE id = ?', [id]);
        }
        changes++;
      }
    })();
    const loadMs = o.loadMs ?? 2000;
    await new Promise((r) => setTimeout(r, loadMs));
    assert.equal(proc.running, true, `tributary died before the kill:\n${proc.stderr.slice(-3000)}`);
    await proc.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    proc = TributaryProcess.start(['run', '--config', cfg]);
    try {
      await proc.waitForLog(new RegExp(`pipeline ${name} running`), 30_000);
      await new Promise((r) => setTimeout(r, loadMs));
      stop = true;
      await writing;
      await w.close();
      assert.ok(changes >= 200, `the writer committed only ${changes} changes`);
      const want = (await db.rows()).sort(byId);
      let got: E2ERow[] = [];
      try {
        await waitFor(async () => {
          got = (await o.readTarget()).sort(byId);
          return JSON.stringify(got) === JSON.stringify(want);
        }, { timeoutMs: 30_000, intervalMs: 300, what: 'the target to equal the source' });
      } catch {
        // Fall through to a precise diff.
      }
      assert.equal(proc.running, true, `tributary died:\n${proc.stderr.slice(-3000)}`);
      assert.deepEqual(got, want, `target rows differ from the source rows\n${proc.stderr.slice(-1500)}`);
      assert.doesNotMatch(proc.stdout + proc.stderr, /dead-letter/i, 'no event was dead-lettered');
      assert.equal(await proc.kill('SIGTERM'), 0, 'a drained SIGTERM stop exits 0');
      return { changes, rows: want.length };
    } finally {
      await proc.kill('SIGKILL');
    }
  } finally {
    await db.dispose();
  }
}
