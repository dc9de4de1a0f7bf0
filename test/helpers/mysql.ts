/**
 * MariaDB/MySQL test context: `await using db = await MysqlTestDb.create('types')` gives a
 * fresh database (dropped on dispose), a connection to it, and helpers for the server-level
 * operations the binlog tests need (restart, flush logs, globals).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import { MYSQL_URL } from './env.js';
import { waitFor } from './context.js';

let serverIdSeq = 0;

/** A replica server_id unique to this test process and call (tests may run side by side). */
export function uniqueServerId(): number {
  return 100_000 + ((process.pid % 20_000) * 100 + (serverIdSeq++ % 100));
}

export class MysqlTestDb implements AsyncDisposable {
  private constructor(
    readonly name: string,
    /** URL of the server (no database): what `source.url` takes. */
    readonly url: string,
    readonly conn: mysql.Connection,
  ) {}

  static async create(prefix = 'trb'): Promise<MysqlTestDb> {
    const name = `${prefix}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const conn = await mysql.createConnection({ uri: MYSQL_URL, multipleStatements: true, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
    await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    await conn.query(`USE \`${name}\``);
    return new MysqlTestDb(name, MYSQL_URL, conn);
  }

  async query<T = any>(sql: string, params?: unknown[]): Promise<T> {
    const [rows] = await this.conn.query(sql, params);
    return rows as T;
  }

  /** A new connection to this database (for concurrent writers). */
  async connect(): Promise<mysql.Connection> {
    const c = await mysql.createConnection({ uri: MYSQL_URL, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
    await c.query(`USE \`${this.name}\``);
    return c;
  }

  /** Reconnect this helper's own connection (after a server restart). */
  async reconnect(): Promise<void> {
    await this.conn.end().catch(() => undefined);
    (this as { conn: mysql.Connection }).conn = await mysql.createConnection({ uri: MYSQL_URL, multipleStatements: true, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
    await this.conn.query(`USE \`${this.name}\``);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.conn.query(`DROP DATABASE IF EXISTS \`${this.name}\``);
    } catch {
      // The server may have been restarted under us: try once more on a new connection.
      const c = await mysql.createConnection({ uri: MYSQL_URL }).catch(() => null);
      await c?.query(`DROP DATABASE IF EXISTS \`${this.name}\``).catch(() => undefined);
      await c?.end().catch(() => undefined);
    }
    await this.conn.end().catch(() => undefined);
  }
}

/** Ping the server until it answers. */
export async function waitForMysql(timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => {
    const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 });
    await c.query('SELECT 1');
    await c.end();
    return true;
  }, { timeoutMs, intervalMs: 300, what: 'MariaDB to accept connections' });
}

/** Shut MariaDB down and start it again (the local test server), then wait for it. */
export async function restartMariadb(downMs = 500): Promise<void> {
  execFileSync('mariadb-admin', ['-uroot', '-h127.0.0.1', '--protocol=tcp', 'shutdown'], { stdio: 'ignore' });
  await waitFor(() => spawnSync('mariadb-admin', ['-uroot', '-h127.0.0.1', '--protocol=tcp', 'ping'], { stdio: 'ignore' }).status !== 0, { timeoutMs: 30_000, what: 'MariaDB to stop' });
  await new Promise((r) => setTimeout(r, downMs));
  execFileSync('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd'], { stdio: 'ignore' });
  await waitForMysql();
}

/** The `source:` block of a test pipeline reading `tables` (default: the whole test database). */
export function mysqlSrc(db: MysqlTestDb, tables = `${db.name}.*`, extra = ''): string {
  return `type: mysql\nurl: ${db.url}\ntables: [${tables}]\nsnapshot: never\nserver_id: ${uniqueServerId()}\nheartbeat_ms: 1000${extra ? '\n' + extra : ''}`;
}
