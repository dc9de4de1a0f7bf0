/**
 * A MariaDB server of the test's own: `await using srv = await PrivateMariadb.start()`.
 * Its data directory, port, socket and binlog belong to the test, so the test can read the
 * binlog files with `mariadb-binlog` (or stop the server) without touching the shared one.
 * Disposing it stops the server and removes the directory.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { ServerProcess, freePort, waitUntil } from './servers/common.js';

const run = promisify(execFile);

export class PrivateMariadb implements AsyncDisposable {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly server: ServerProcess,
  ) {}

  /** `mysql://root@127.0.0.1:<port>/`: what `source.url` takes. */
  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}/`;
  }

  /** The data directory, where the binlog files are. */
  get datadir(): string {
    return join(this.dir, 'data');
  }

  /**
   * Installs a data directory and starts `mariadbd` on a free port with what CDC needs:
   * ROW binlog with FULL row images and FULL row metadata.
   */
  static async start(extraArgs: string[] = []): Promise<PrivateMariadb> {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-mariadb-'));
    const data = join(dir, 'data');
    // mariadbd refuses to run as root unless told which user to be.
    const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
    try {
      await run('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asRoot], { timeout: 120_000 });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const port = await freePort();
    const server = ServerProcess.start('mariadbd', [
      '--no-defaults', ...asRoot, `--datadir=${data}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${join(dir, 'sock')}`,
      `--pid-file=${join(dir, 'pid')}`, `--tmpdir=${dir}`, `--log-bin=${join(data, 'mariadb-bin')}`, '--binlog-format=ROW', '--binlog-row-image=FULL',
      '--binlog-row-metadata=FULL', '--server-id=1', '--innodb-buffer-pool-size=32M', '--skip-name-resolve', '--character-set-server=utf8mb4',
      ...extraArgs,
    ]);
    const srv = new PrivateMariadb(dir, port, server);
    try {
      await waitUntil(async () => {
        const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 2000 });
        await c.end();
        return true;
      }, 'the private MariaDB to accept connections', server, 120_000);
    } catch (err) {
      await srv[Symbol.asyncDispose]();
      throw err;
    }
    return srv;
  }

  /** A new connection (root, no database). */
  connect(opts: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
    return mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', ...opts });
  }

  /** The binlog files, oldest first (full paths). */
  binlogFiles(): string[] {
    return readdirSync(this.datadir)
      .filter((f) => /^mariadb-bin\.\d+$/.test(f))
      .sort()
      .map((f) => join(this.datadir, f));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.server.stop(20_000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
