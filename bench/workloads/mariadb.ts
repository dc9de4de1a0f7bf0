/**
 * The MariaDB side of the benchmark: a dedicated database, the 7-column table (json for
 * jsonb, timestamp(6) for timestamptz), and the workload, bracketed by binlog positions so
 * every contender reads exactly the same range. The database is dropped on dispose.
 */
import mysql from 'mysql2/promise';

export const MY_DB = 'tributary_bench';
const ROWS_PER_TXN = 1000;

export const MY_COLUMNS = `id bigint PRIMARY KEY, qty int, title text, price decimal(12,2), updated_at timestamp(6) NULL, status text, attrs json`;

const INSERT = (table: string, a: number, b: number) => `INSERT INTO ${table} (id, qty, title, price, updated_at, status, attrs)
  SELECT seq, seq % 10000, CONCAT('product ', seq, ' lorem ipsum dolor sit amet'), (seq % 1000000) / 100,
         TIMESTAMP'2024-01-15 10:30:00.123456' + INTERVAL seq SECOND,
         ELT(seq % 4 + 1, 'new', 'paid', 'shipped', 'returned'),
         JSON_OBJECT('color', ELT(seq % 3 + 1, 'red', 'green', 'blue'), 'size', seq % 50, 'tags', JSON_ARRAY('a', seq % 10))
  FROM seq_${a}_to_${b}`;

export interface BinlogPos {
  file: string;
  pos: number;
}

export class MariadbWorkload implements AsyncDisposable {
  private dead = false;

  private constructor(
    readonly url: string,
    private c: mysql.Connection,
    readonly version: string,
  ) {
    this.watch(c);
  }

  /** Marks the connection dead when it drops (the shared test server may be restarted). */
  private watch(c: mysql.Connection): void {
    const inner = (c as unknown as { connection: NodeJS.EventEmitter }).connection;
    inner.on('error', () => (this.dead = true));
    inner.on('end', () => (this.dead = true));
  }

  /** The workload's connection, reconnected (waiting up to a minute for the server) if it dropped. */
  get conn(): mysql.Connection {
    return this.c;
  }

  async ready(): Promise<mysql.Connection> {
    if (!this.dead) return this.c;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const c = await mysql.createConnection({ uri: this.url, multipleStatements: true });
        await c.query(`USE ${MY_DB}`);
        await c.query("SET time_zone = '+00:00'");
        this.c = c;
        this.dead = false;
        this.watch(c);
        return c;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  static async open(url: string): Promise<MariadbWorkload> {
    const conn = await mysql.createConnection({ uri: url, multipleStatements: true });
    await conn.query(`DROP DATABASE IF EXISTS ${MY_DB}`);
    await conn.query(`CREATE DATABASE ${MY_DB} CHARACTER SET utf8mb4`);
    await conn.query(`USE ${MY_DB}`);
    await conn.query("SET time_zone = '+00:00'");
    for (const t of ['bench_rows', 'bench_big', 'bench_live']) await conn.query(`CREATE TABLE ${t} (${MY_COLUMNS})`);
    const [[v]] = (await conn.query('SELECT VERSION() AS v')) as unknown as [[{ v: string }]];
    return new MariadbWorkload(url, conn, v.v);
  }

  /** Rotate to a fresh binlog file and return where the next transaction starts. */
  async rotate(): Promise<BinlogPos> {
    await (await this.ready()).query('FLUSH BINARY LOGS');
    return this.position();
  }

  async position(): Promise<BinlogPos> {
    const [[s]] = (await (await this.ready()).query('SHOW MASTER STATUS')) as unknown as [[{ File: string; Position: number }]];
    return { file: s.File, pos: Number(s.Position) };
  }

  /** Binlog files from `start.file` through `end.file`, in order. */
  async files(start: BinlogPos, end: BinlogPos): Promise<string[]> {
    const [logs] = (await (await this.ready()).query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]];
    const names = logs.map((l) => l.Log_name);
    return names.slice(names.indexOf(start.file), names.indexOf(end.file) + 1);
  }

  /** `n` inserts then n/2 updates, 1,000 rows per transaction. Returns the row changes. */
  async streamWorkload(table: string, n: number): Promise<number> {
    for (let a = 1; a <= n; a += ROWS_PER_TXN) await (await this.ready()).query(INSERT(table, a, Math.min(n, a + ROWS_PER_TXN - 1)));
    let updates = 0;
    for (let a = 1; a <= n; a += 2 * ROWS_PER_TXN) {
      const [r] = (await (await this.ready()).query(
        `UPDATE ${table} SET qty = qty + 1, status = 'paid', updated_at = updated_at + INTERVAL 1 HOUR WHERE id BETWEEN ? AND ? AND id % 2 = 0`,
        [a, Math.min(n, a + 2 * ROWS_PER_TXN - 1)],
      )) as unknown as [{ affectedRows: number }];
      updates += r.affectedRows;
    }
    return n + updates;
  }

  /** One transaction inserting rows `from..to`. */
  async insert(table: string, from: number, to: number, conn?: mysql.Connection): Promise<void> {
    await (conn ?? (await this.ready())).query(INSERT(table, from, to));
  }

  /** A second connection in the bench database, UTC. */
  async connect(): Promise<mysql.Connection> {
    await this.ready();
    const c = await mysql.createConnection({ uri: this.url });
    await c.query(`USE ${MY_DB}`);
    await c.query("SET time_zone = '+00:00'");
    return c;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const c = await this.ready().catch(() => null);
    await c?.query(`DROP DATABASE IF EXISTS ${MY_DB}`).catch(() => undefined);
    await c?.end().catch(() => undefined);
  }
}

let serverIdSeq = 0;
/** A replica server_id unique to this run. */
export function benchServerId(): number {
  return 900_000 + (process.pid % 50_000) * 10 + (serverIdSeq++ % 10);
}
