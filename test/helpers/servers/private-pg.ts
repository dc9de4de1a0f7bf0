/**
 * A private PostgreSQL 15 server (Debian's binaries) for tests that stop and start their
 * database: own data directory, own port, `wal_level=logical`, trust authentication for user
 * `postgres`. It can be stopped (fast, or immediate as in a crash) and started again on the same
 * port and data directory, and is removed on dispose:
 *
 *     await using pg = await PrivatePostgres.start();
 *     await pg.stop();  ...  await pg.start();
 *
 * The shared server on 5432 is never touched.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ServerProcess, freePort, waitUntil } from './common.js';

const BIN = process.env.TRIBUTARY_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** uid and gid of the `postgres` OS user: initdb and postgres refuse to run as root. */
function postgresUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** Run as the postgres user when we are root (setpriv execs in place: the pid is the server's). */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [cmd, args];
  const { uid, gid } = postgresUser();
  return ['setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', cmd, ...args]];
}

export class PrivatePostgres implements AsyncDisposable {
  private server: ServerProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly settings: string[],
  ) {}

  /** initdb in a new temp directory, then start. `settings` are extra `name=value` server settings. */
  static async start(settings: string[] = []): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-pg15-'));
    if (process.getuid?.() === 0) {
      const { uid, gid } = postgresUser();
      chownSync(dir, uid, gid);
    }
    const [cmd, args] = asPostgres(join(BIN, 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    execFileSync(cmd, args, { stdio: 'pipe' });
    const s = new PrivatePostgres(dir, await freePort(), settings);
    try {
      await s.start();
    } catch (err) {
      await s[Symbol.asyncDispose]();
      throw err;
    }
    return s;
  }

  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  get running(): boolean {
    return !!this.server?.running;
  }

  /** Start (again) on the same port and data directory; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    const conf = [
      'listen_addresses=127.0.0.1',
      `unix_socket_directories=${this.dir}`,
      'wal_level=logical',
      'max_wal_senders=10',
      'max_replication_slots=10',
      // A stop here is a clean shutdown or a killed server process, never a machine crash:
      // the OS keeps what was written, so skipping fsync loses nothing and spares the disk.
      'fsync=off',
      'shared_buffers=16MB',
      ...this.settings,
    ];
    const [cmd, args] = asPostgres(join(BIN, 'postgres'), ['-D', join(this.dir, 'data'), '-p', String(this.port), ...conf.flatMap((c) => ['-c', c])]);
    const server = ServerProcess.start(cmd, args);
    this.server = server;
    await waitUntil(
      async () => {
        const c = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 2000 });
        try {
          await c.connect();
          await c.query('SELECT 1');
          return true;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      `Postgres 15 on port ${this.port}`,
      server,
      60_000,
    );
  }

  /**
   * Stop the server: `fast` (SIGINT: sessions are terminated, a clean shutdown) or
   * `immediate` (SIGQUIT: every process exits at once, recovery runs at the next start, as
   * after a crash). Resolves once the postmaster has exited.
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const s = this.server;
    if (!s?.running) return;
    s.child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    const t = setTimeout(() => s.child.kill('SIGKILL'), 30_000);
    await s.exited;
    clearTimeout(t);
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], db = 'postgres'): Promise<pg.QueryResult<R>> {
    const c = new pg.Client({ connectionString: this.url(db) });
    await c.connect();
    try {
      return await c.query<R>(sql, params);
    } finally {
      await c.end();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
