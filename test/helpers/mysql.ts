/**
 * MariaDB/MySQL test context: `await using db = await MysqlTestDb.create('types')` gives a
 * fresh database (dropped on dispose) on the shared server, and a connection to it. Tests
 * that stop or restart their server use a private one (servers/private-mariadb.ts).
 */
import mysql from 'mysql2/promise';
import { MYSQL_URL } from './env.js';

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

/** The `source:` block of a test pipeline reading `tables` (default: the whole test database). */
export function mysqlSrc(db: MysqlTestDb, tables = `${db.name}.*`, extra = ''): string {
  return `type: mysql\nurl: ${db.url}\ntables: [${tables}]\nsnapshot: never\nserver_id: ${uniqueServerId()}\nheartbeat_ms: 1000${extra ? '\n' + extra : ''}`;
}
