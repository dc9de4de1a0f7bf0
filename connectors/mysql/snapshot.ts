/**
 * Snapshot support for MySQL/MariaDB (the DBLog watermark algorithm, docs/snapshots.md): the
 * {@link SnapshotSupport} the coordinator drives, each job in its own module.
 *
 * - **Watermarks** go through a signal table (signal-table.ts): the binlog has no logical
 *   messages.
 * - **Tables and keys** (snapshot-discovery.ts): the primary key, else `source.key_columns`,
 *   else the first UNIQUE index whose columns are all NOT NULL.
 * - **Chunks** are keyset pages on that key (snapshot-plan.ts); boundaries are fetched in an
 *   exact text form and written back as literals that compare in the column's own collation
 *   (chunk-keys.ts), so a boundary never shifts. SQL text and quoting: snapshot-sql.ts.
 * - **Rows** (snapshot-reader.ts) are exactly what the binlog decoder produces for the same
 *   value, so a snapshot row equals the streamed insert of that row: written as JSON straight
 *   from the protocol bytes (snapshot-rows.ts), or through mysql2's row objects and per-column
 *   converters (object-rows.ts, snapshot-values.ts) for the tables the byte path declines.
 */
import mysql from 'mysql2';
const { createConnection } = mysql;
import { ErrorCodes, TributaryError, errorMessage } from '../../src/core/errors.js';
import type { ChunkBounds, ChunkPlanner, SnapshotEventBuilder, SnapshotReader, SnapshotSupport, SnapshotTable } from '../../src/snapshot/types.js';
import { assertSafeFilter, filterRejected } from '../../src/snapshot/filter.js';
import { snapshotEventBuilder } from '../../src/snapshot/envelope.js';
import { tableMatcher } from '../../src/runtime/table-filter.js';
import { SignalWriter, type SignalTable } from './signal-table.js';
import { discoverTables, fallbackKeys, type DiscoveryScope } from './snapshot-discovery.js';
import { chunkPlanner, planChunks } from './snapshot-plan.js';
import { openReader } from './snapshot-reader.js';
import { errno, exec, filtered, qname, rawQuery, splitName } from './snapshot-sql.js';

// What the source (source.ts) takes from here, though it lives in signal-table.ts.
export { checkSignalTable, parseSignalTable, type SignalTable } from './signal-table.js';

export interface MysqlSnapshotOptions {
  url: string;
  include: readonly string[];
  exclude: readonly string[] | undefined;
  keyColumns: Record<string, string[]> | undefined;
  signal: SignalTable;
  /** Told the key of every table without a primary key, so streamed events carry the same key. */
  onKey?: (table: string, key: string[]) => void;
  /**
   * How chunk rows are read: `bytes` (the default) writes JSON text from the protocol bytes
   * (snapshot-rows.ts), `objects` goes through mysql2's row objects. Tests compare the two.
   */
  rowPath?: 'bytes' | 'objects';
}

export class MysqlSnapshotSupport implements SnapshotSupport {
  private readonly scope: DiscoveryScope;
  private readonly signal: SignalWriter;

  constructor(private readonly o: MysqlSnapshotOptions) {
    this.scope = { matches: tableMatcher(o.include, o.exclude), signal: o.signal, keyColumns: o.keyColumns, onKey: o.onKey };
    this.signal = new SignalWriter(o.signal);
  }

  private async conn(): Promise<mysql.Connection> {
    let c: mysql.Connection;
    try {
      c = await new Promise<mysql.Connection>((resolve, reject) => {
        // mysql2 parses rows with generated code; these options make its values the decoder's
        // wherever they can be (int64 beyond 2^53 and DECIMAL as strings, dates as text, JSON
        // as text), and the few remaining columns are converted per table (converterFor).
        const conn = createConnection({
          uri: this.o.url, connectTimeout: 10_000, supportBigNumbers: true, bigNumberStrings: false, dateStrings: true,
          jsonStrings: true, decimalNumbers: false, charset: 'UTF8MB4_GENERAL_CI', multipleStatements: false,
        } as mysql.ConnectionOptions);
        conn.once('error', reject);
        conn.connect((err) => {
          if (err) {
            conn.destroy();
            reject(err);
            return;
          }
          conn.removeListener('error', reject);
          conn.on('error', () => undefined); // reported by the next query
          resolve(conn);
        });
      });
    } catch (err) {
      throw new TributaryError(ErrorCodes.MYSQL_CONNECT, `snapshot: cannot connect to MySQL/MariaDB: ${errorMessage(err)}`, {
        fix: 'check source.url and that the server accepts connections',
        cause: err,
        retryable: errno(err) !== 1045,
      });
    }
    // UTC, so TIMESTAMP text is UTC like the binlog's epoch seconds.
    await exec(c, "SET SESSION time_zone = '+00:00'");
    return c;
  }

  /** Runs `fn` on a connection of its own, ended afterwards. */
  private async withConn<T>(fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
    const c = await this.conn();
    try {
      return await fn(c);
    } finally {
      c.destroy();
    }
  }

  tables(only?: string[]): Promise<SnapshotTable[]> {
    return this.withConn((c) => discoverTables(c, this.scope, only));
  }

  /**
   * The key of every captured table without a primary key (configured key_columns, else the
   * first NOT NULL unique key), for streamed events: they then carry the key snapshot rows carry.
   */
  fallbackKeys(): Promise<Map<string, string[]>> {
    return this.withConn((c) => fallbackKeys(c, this.scope));
  }

  plan(table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]> {
    return this.withConn((c) => filtered(c, where, () => planChunks(c, table, chunkRows, where)));
  }

  async checkFilter(table: SnapshotTable, where: string): Promise<void> {
    assertSafeFilter(where, 'mysql');
    const c = await this.conn();
    try {
      await exec(c, 'START TRANSACTION READ ONLY');
      // Planned, not run: a syntax error, an unknown column or a bad function fails here.
      await rawQuery(c, `EXPLAIN SELECT 1 FROM ${qname(table.name)} WHERE (${where})`);
    } catch (err) {
      // A server error (it has a SQLSTATE and leaves the connection usable) is the filter's fault.
      const e = err as { sqlState?: string; fatal?: boolean };
      if (e.sqlState && !e.fatal) throw filterRejected(table.name, err);
      throw err;
    } finally {
      await exec(c, 'ROLLBACK').catch(() => undefined);
      c.destroy();
    }
  }

  async planner(): Promise<ChunkPlanner> {
    return chunkPlanner(await this.conn());
  }

  async reader(): Promise<SnapshotReader> {
    return openReader(await this.conn(), this.signal, this.o.rowPath);
  }
}

/** The envelopes of MySQL/MariaDB snapshot rows, with the `source` block streamed events have. */
export function mysqlSnapshotEvent(pipeline: string, serverId: () => number): SnapshotEventBuilder {
  return snapshotEventBuilder((table, snapshot, at, now) => {
    const { db, table: name } = splitName(table.name);
    return {
      connector: 'mysql', name: pipeline, db, table: name, ts_ms: now, snapshot,
      file: at.file ?? '', pos: at.pos ?? 0, gtid: null, server_id: serverId(), row: 0,
    };
  });
}
