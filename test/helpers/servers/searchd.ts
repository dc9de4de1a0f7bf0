/**
 * A throwaway Sphinx/Manticore `searchd` for tests and benchmarks:
 * `await using sd = await SearchdServer.start({ indexes: { items: ['rt_field = title', ...] } })`.
 *
 * It writes a config with the given RT indexes, a mysql41 listener on a free loopback port,
 * pid file, logs and binlog inside a temporary directory, starts `searchd --nodetach`, waits
 * until SphinxQL answers, and on dispose stops it and removes the directory. Override the
 * binary with TRIBUTARY_TEST_SEARCHD_BIN (Manticore's searchd takes the same config).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { freePort, ServerProcess, waitUntil } from './common.js';

export interface SearchdOptions {
  /** Index name → the body lines of its RT index block (`rt_field = x`, `rt_attr_string = y`, ...). */
  indexes: Record<string, string[]>;
}

export class SearchdServer implements AsyncDisposable {
  private conn?: mysql.Connection;

  private constructor(
    readonly url: string,
    readonly port: number,
    readonly dir: string,
    private readonly proc: ServerProcess,
  ) {}

  static async start(o: SearchdOptions): Promise<SearchdServer> {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-searchd-'));
    mkdirSync(join(dir, 'data'));
    const port = await freePort();
    const blocks = Object.entries(o.indexes).map(
      ([name, lines]) => `index ${name}\n{\n  type = rt\n  path = ${dir}/data/${name}\n  rt_mem_limit = 128M\n${lines.map((l) => `  ${l}`).join('\n')}\n}\n`,
    );
    writeFileSync(
      join(dir, 'searchd.conf'),
      `${blocks.join('\n')}
searchd
{
  listen = 127.0.0.1:${port}:mysql41
  log = ${dir}/searchd.log
  query_log = ${dir}/query.log
  pid_file = ${dir}/searchd.pid
  binlog_path = ${dir}/data
  # Durable on every commit: the sink's high-water mark relies on acknowledged writes surviving.
  binlog_flush = 1
  workers = threads
  max_packet_size = 32M
}
`,
    );
    const proc = ServerProcess.start(process.env.TRIBUTARY_TEST_SEARCHD_BIN ?? 'searchd', ['--config', join(dir, 'searchd.conf'), '--nodetach'], { cwd: dir });
    const s = new SearchdServer(`mysql://127.0.0.1:${port}`, port, dir, proc);
    try {
      await waitUntil(async () => {
        const c = await mysql.createConnection({ host: '127.0.0.1', port, supportBigNumbers: true, bigNumberStrings: true });
        s.conn = c;
        await c.query('SHOW TABLES');
        return true;
      }, 'searchd SphinxQL', proc, 30_000);
    } catch (err) {
      await proc.stop(2000);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return s;
  }

  /** Run a SphinxQL statement on the helper's own connection. */
  async query<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    const [rows] = await this.conn!.query(sql);
    return rows as T[];
  }

  /** Every document of an index (searchd caps results at max_matches: raise it). */
  all<T = Record<string, unknown>>(index: string, cols = '*', where = ''): Promise<T[]> {
    return this.query<T>(`SELECT ${cols} FROM ${index}${where ? ` WHERE ${where}` : ''} ORDER BY id ASC LIMIT 0, 1000000 OPTION max_matches = 1000000`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.conn?.destroy();
    await this.proc.stop();
    if (!process.env.TRIBUTARY_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}
