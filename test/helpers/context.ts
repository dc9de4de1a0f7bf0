/**
 * Test contexts that start what a test needs and clean it up: `await using db = await PgTestDb.create()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PG_URL, pgUrlFor } from './env.js';

/** The repository root (tests run from dist/test/…): the first parent with bin/tributary.js. */
export const REPO = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (d !== dirname(d) && !existsSync(join(d, 'bin', 'tributary.js'))) d = dirname(d);
  return existsSync(join(d, 'bin', 'tributary.js')) ? d : resolve('.');
})();

export const BIN = join(REPO, 'bin', 'tributary.js');

/** Poll `fn` until it returns a truthy value; throw with `what` after the timeout. */
export async function waitFor<T>(fn: () => Promise<T> | T, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

/** A temporary directory removed on dispose. */
export class TempDir implements AsyncDisposable {
  readonly path: string;
  constructor(prefix = 'tributary-test-') {
    this.path = mkdtempSync(join(tmpdir(), prefix));
  }
  file(name: string, text?: string): string {
    const p = join(this.path, name);
    if (text !== undefined) writeFileSync(p, text);
    return p;
  }
  async [Symbol.asyncDispose](): Promise<void> {
    if (!process.env.TRIBUTARY_KEEP_TEST_DIRS) rmSync(this.path, { recursive: true, force: true });
  }
}

/**
 * A fresh Postgres database for one test. On dispose it drops the slots and publications
 * the test created (slots pin WAL, so leaking them would hurt later tests) and the database.
 */
/** The comment a test database carries, followed by the PID of the test process that made it. */
const TEST_DB_MARK = 'tributary test database of pid ';

export class PgTestDb implements AsyncDisposable {
  private constructor(
    readonly name: string,
    readonly url: string,
    readonly client: pg.Client,
  ) {}

  private static swept = false;

  static async create(prefix = 'trb'): Promise<PgTestDb> {
    const name = `${prefix}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      if (!PgTestDb.swept) {
        PgTestDb.swept = true;
        await PgTestDb.sweep(admin);
      }
      await admin.query(`CREATE DATABASE "${name}"`);
      await admin.query(`COMMENT ON DATABASE "${name}" IS '${TEST_DB_MARK}${process.pid}'`);
    } finally {
      await admin.end();
    }
    const url = pgUrlFor(name);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return new PgTestDb(name, url, client);
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.client.query<R>(sql, params);
  }

  /** A new connection (for concurrent writers). */
  async connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.url });
    await c.connect();
    return c;
  }

  /**
   * Drop what test runs that died left behind: their databases (marked by a comment that
   * names the test process, never matched by name, so a user's database is never touched)
   * and the replication slots on them, when that process is gone. Slot names are cluster-wide and derive
   * from fixed pipeline names, so a slot left by a killed run (an orphaned `tributary run`
   * may even hold it active) breaks the next run of the same test.
   */
  private static async sweep(admin: pg.Client): Promise<void> {
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    };
    const dbs = await admin.query<{ datname: string; mark: string }>(
      "SELECT datname, shobj_description(oid, 'pg_database') AS mark FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE $1",
      [`${TEST_DB_MARK}%`],
    );
    for (const { datname, mark } of dbs.rows) {
      const pid = Number(mark.slice(TEST_DB_MARK.length));
      if (!Number.isInteger(pid) || pid <= 0) continue;
      if (pid === process.pid || alive(pid)) continue;
      await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL', [datname]).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      const slots = await admin.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE database = $1', [datname]);
      for (const { slot_name } of slots.rows) await admin.query('SELECT pg_drop_replication_slot($1)', [slot_name]).catch(() => undefined);
      await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => undefined);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.client.end().catch(() => undefined);
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      // Terminate walsenders first: an active slot cannot be dropped.
      await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL', [this.name]);
      await waitFor(async () => {
        const r = await admin.query('SELECT slot_name FROM pg_replication_slots WHERE database = $1 AND NOT active', [this.name]);
        for (const row of r.rows) await admin.query('SELECT pg_drop_replication_slot($1)', [row.slot_name]).catch(() => undefined);
        const left = await admin.query('SELECT 1 FROM pg_replication_slots WHERE database = $1', [this.name]);
        return left.rowCount === 0;
      }, { timeoutMs: 10_000, what: 'replication slots to drop' }).catch(() => undefined);
      await admin.query(`DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
}

/**
 * A `tributary` CLI process. Output is captured; `kill()` sends SIGKILL by default, the way
 * crash tests need; dispose kills whatever is still running.
 */
export class TributaryProcess implements AsyncDisposable {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    readonly child: ChildProcess,
    private readonly group = false,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((res) => child.once('exit', (code, signal) => res((this.exitCode = code ?? (signal ? -1 : null)))));
  }

  /**
   * `tributary <args...>` with `env` added to the environment. `group`: the process leads a
   * process group of its own, as a terminal's foreground job does, so {@link ctrlC} reaches
   * it and every child it started (the demo's Postgres).
   */
  static start(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; group?: boolean } = {}): TributaryProcess {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? REPO,
      env: { ...process.env, TRIBUTARY_LOG_LEVEL: process.env.TRIBUTARY_LOG_LEVEL ?? 'info', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.group ?? false,
    });
    return new TributaryProcess(child, opts.group ?? false);
  }

  /** What a terminal's Ctrl-C does: SIGINT to the whole process group (needs `group`). */
  async ctrlC(): Promise<number | null> {
    if (!this.group) throw new Error('ctrlC() needs a process started with { group: true }');
    if (this.running) process.kill(-this.child.pid!, 'SIGINT');
    return this.exited;
  }

  /** Run to completion and return the exit code with the output. */
  static async run(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const p = TributaryProcess.start(args, opts);
    const timer = setTimeout(() => p.child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    const code = await p.exited;
    clearTimeout(timer);
    return { code, stdout: p.stdout, stderr: p.stderr };
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolve once stderr/stdout (the pino log) matches `re`. */
  async waitForLog(re: RegExp, timeoutMs = 30_000): Promise<void> {
    await waitFor(() => {
      if (!this.running && !re.test(this.stdout + this.stderr)) throw new Error(`process exited (${this.exitCode}) before logging ${re}:\n${this.stderr.slice(-2000)}`);
      return re.test(this.stdout + this.stderr);
    }, { timeoutMs, what: `log ${re}` });
  }

  /**
   * Resolves as soon as the output matches `re`, checked on every chunk as it arrives (no
   * polling): for a test that must act within milliseconds of a log line.
   */
  onLog(re: RegExp, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const streams = [this.child.stdout, this.child.stderr];
      const check = () => {
        if (!re.test(this.stdout + this.stderr)) return;
        done();
        resolve();
      };
      const exit = () => {
        done();
        reject(new Error(`process exited before logging ${re}:\n${this.stderr.slice(-2000)}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for log ${re}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        for (const s of streams) s?.removeListener('data', check);
        this.child.removeListener('exit', exit);
      };
      for (const s of streams) s?.on('data', check);
      this.child.once('exit', exit);
      check();
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.group && this.running) {
      // The whole group, so no child outlives the test.
      try {
        process.kill(-this.child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await this.kill('SIGKILL');
  }
}

/**
 * A login role (cluster-wide) for privilege tests, with REPLICATION by default and nothing
 * else. On dispose, what it owns in `db` goes back to postgres, its grants there are dropped,
 * and the role is dropped.
 */
export class PgTestRole implements AsyncDisposable {
  private constructor(
    readonly name: string,
    readonly url: string,
    private readonly db: PgTestDb,
  ) {}

  static async create(db: PgTestDb, attrs = 'LOGIN REPLICATION'): Promise<PgTestRole> {
    const name = `trb_role_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    await db.query(`CREATE ROLE "${name}" ${attrs}`);
    const u = new URL(db.url);
    u.username = name;
    u.password = '';
    return new PgTestRole(name, u.toString(), db);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const c = new pg.Client({ connectionString: this.db.url });
    await c.connect();
    try {
      await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [this.name]);
      await c.query(`REASSIGN OWNED BY "${this.name}" TO postgres; DROP OWNED BY "${this.name}"; DROP ROLE IF EXISTS "${this.name}"`);
    } finally {
      await c.end();
    }
  }
}
