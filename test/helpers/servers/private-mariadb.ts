/**
 * A private MariaDB server (Debian's mariadbd) for tests that stop and start their database:
 * own data directory, port and socket, binary log on with `binlog_format=ROW`,
 * `binlog_row_image=FULL`, `binlog_row_metadata=FULL`, `server_id=1`, and `root` without a
 * password. It can be stopped (SIGTERM: a clean shutdown; or SIGKILL, as in a crash) and
 * started again on the same port and data directory, and is removed on dispose:
 *
 *     await using db = await PrivateMariadb.start();
 *     await db.stop();  ...  await db.start();
 *
 * The shared server on 3306 is never touched.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { ServerProcess, freePort, waitUntil } from './common.js';

const MARIADBD = process.env.TRIBUTARY_TEST_MARIADBD ?? '/usr/sbin/mariadbd';

export class PrivateMariadb implements AsyncDisposable {
  private server: ServerProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
    /** The OS user mariadbd runs as when started by root. */
    private readonly user: string | undefined,
  ) {}

  /** mariadb-install-db in a new temp directory (a few seconds), then start. */
  static async start(): Promise<PrivateMariadb> {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-mariadb-'));
    // mariadbd drops root privileges to --user; the data directory must be that user's.
    const user = process.getuid?.() === 0 ? 'mysql' : undefined;
    if (user) {
      const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
      chownSync(dir, uid, gid);
    }
    execFileSync(
      'mariadb-install-db',
      ['--no-defaults', `--datadir=${join(dir, 'data')}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...(user ? [`--user=${user}`] : [])],
      { stdio: 'pipe' },
    );
    const s = new PrivateMariadb(dir, await freePort(), user);
    try {
      await s.start();
    } catch (err) {
      await s[Symbol.asyncDispose]();
      throw err;
    }
    return s;
  }

  /** The server URL without a database: what `source.url` takes. */
  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}/`;
  }

  get running(): boolean {
    return !!this.server?.running;
  }

  /** A connection, to `db` when given. */
  connect(db?: string): Promise<mysql.Connection> {
    return mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', database: db, connectTimeout: 3000, supportBigNumbers: true, bigNumberStrings: true, multipleStatements: true });
  }

  /** Start (again) on the same port and data directory; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    const server = ServerProcess.start(MARIADBD, [
      '--no-defaults',
      `--datadir=${join(this.dir, 'data')}`,
      `--port=${this.port}`,
      `--socket=${join(this.dir, 'mysqld.sock')}`,
      `--pid-file=${join(this.dir, 'mysqld.pid')}`,
      '--bind-address=127.0.0.1',
      ...(this.user ? [`--user=${this.user}`] : []),
      `--log-bin=${join(this.dir, 'data', 'mysql-bin')}`,
      '--binlog-format=ROW',
      '--binlog-row-image=FULL',
      '--binlog-row-metadata=FULL',
      '--server-id=1',
      '--innodb-buffer-pool-size=16M',
    ]);
    this.server = server;
    await waitUntil(
      async () => {
        const c = await this.connect();
        try {
          await c.query('SELECT 1');
          return true;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      `MariaDB on port ${this.port}`,
      server,
      60_000,
    );
  }

  /**
   * Stop the server: `clean` (SIGTERM, a normal shutdown) or `kill` (SIGKILL, as in a
   * crash: InnoDB and the binlog recover at the next start). Resolves once it has exited.
   */
  async stop(mode: 'clean' | 'kill' = 'clean'): Promise<void> {
    const s = this.server;
    if (!s?.running) return;
    s.child.kill(mode === 'clean' ? 'SIGTERM' : 'SIGKILL');
    const t = setTimeout(() => s.child.kill('SIGKILL'), 60_000);
    await s.exited;
    clearTimeout(t);
  }

  async query<T = unknown>(sql: string, params?: unknown[], db?: string): Promise<T> {
    const c = await this.connect(db);
    try {
      const [rows] = await c.query(sql, params);
      return rows as T;
    } finally {
      await c.end();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop('kill').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
