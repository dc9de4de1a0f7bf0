/**
 * The signal table of MySQL/MariaDB snapshots: the binlog has no logical messages, so a
 * watermark is an autocommit `INSERT INTO <signal_table> (id, mark)`, a transaction of its own
 * in the binlog; the live source turns that row back into a `watermark` item and never
 * forwards signal-table events to sinks. The table is created lazily (`CREATE DATABASE/TABLE
 * IF NOT EXISTS`) and old rows are deleted now and then (the binlog keeps the inserts).
 *
 * Also the preflight check that the source user may create and write it.
 */
import type mysql from 'mysql2';
import { ErrorCodes, TributaryError, errorMessage } from '../../src/core/errors.js';
import type { PreflightProblem } from '../../src/core/source.js';
import { mysqlQuery } from './client.js';
import { errno, exec, ident, quoteString, splitName } from './snapshot-sql.js';

export const DEFAULT_SIGNAL_TABLE = 'tributary.watermarks';

export interface SignalTable {
  db: string;
  table: string;
}

export function parseSignalTable(s: string | undefined): SignalTable {
  const { db, table } = splitName(s ?? DEFAULT_SIGNAL_TABLE);
  return { db, table };
}

/** Preflight: whether the user can create and write the signal table (warnings). */
export async function checkSignalTable(c: mysql.Connection, sig: SignalTable): Promise<PreflightProblem[]> {
  let grants = '';
  try {
    const g = await mysqlQuery<Record<string, string>>(c, 'SHOW GRANTS');
    grants = g.map((r) => String(Object.values(r)[0])).join('\n');
  } catch {
    return [];
  }
  const lines = grants.split('\n').filter((l) => {
    const m = / ON (\S+) TO /i.exec(l);
    if (!m) return false;
    const on = m[1]!.replace(/`/g, '');
    return on === '*.*' || on === `${sig.db}.*` || on === `${sig.db}.${sig.table}`;
  });
  const text = lines.join('\n').toUpperCase();
  const all = /ALL PRIVILEGES/.test(text);
  const missing = ['CREATE', 'INSERT', 'DELETE'].filter((p) => !all && !new RegExp(`\\b${p}\\b`).test(text));
  if (!missing.length) return [];
  const [{ u } = { u: 'current_user' }] = await mysqlQuery<{ u: string }>(c, 'SELECT CURRENT_USER() AS u').catch(() => [{ u: 'current_user' }]);
  const who = String(u).replace(/^(.*)@(.*)$/, "'$1'@'$2'");
  return [
    {
      code: ErrorCodes.MYSQL_SIGNAL_TABLE,
      severity: 'warning',
      message: `user ${who} lacks ${missing.join(', ')} on ${sig.db}.*: snapshots write their watermarks into the signal table ${sig.db}.${sig.table}`,
      fix: `GRANT CREATE, INSERT, DELETE ON ${ident(sig.db)}.* TO ${who}; (or create the table yourself and grant INSERT, DELETE on it; source.signal_table names it)`,
    },
  ];
}

/** Maps privilege errors to a coded, non-retryable error. */
function signalError(err: unknown, sig: SignalTable): unknown {
  const n = errno(err);
  if (n === 1142 || n === 1044 || n === 1227 || n === 1045) {
    return new TributaryError(ErrorCodes.SNAPSHOT_PRIVILEGE, `cannot write snapshot watermarks into ${sig.db}.${sig.table}: ${errorMessage(err)}`, {
      fix: `GRANT CREATE, INSERT, DELETE ON ${ident(sig.db)}.* TO the source user (or point source.signal_table at a table it may write)`,
      cause: err,
    });
  }
  return err;
}

/**
 * Writes watermarks into the signal table, creating it once per process when it is missing
 * (and again if it is dropped under us). One per snapshot support: its readers share it.
 */
export class SignalWriter {
  private ensured?: Promise<void>;
  private lastCleanup = Date.now();
  private readonly qualified: string;

  constructor(readonly sig: SignalTable) {
    this.qualified = `${ident(sig.db)}.${ident(sig.table)}`;
  }

  /** Creates the signal table once per process (when it is missing). */
  private ensure(c: mysql.Connection): Promise<void> {
    return (this.ensured ??= (async () => {
      const { db, table } = this.sig;
      const have = await mysqlQuery(c, `SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(db)} AND TABLE_NAME = ${quoteString(table)}`);
      if (have.length) return;
      await exec(c, `CREATE DATABASE IF NOT EXISTS ${ident(db)}`);
      await exec(
        c,
        `CREATE TABLE IF NOT EXISTS ${ident(db)}.${ident(table)} (id VARCHAR(190) NOT NULL, mark VARCHAR(8) NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (id, mark)) ENGINE=InnoDB DEFAULT CHARSET=ascii`,
      );
    })().catch((err) => {
      this.ensured = undefined;
      throw signalError(err, this.sig);
    }));
  }

  /** Inserts watermark `mark` of window `id` on `c` (autocommit: a binlog transaction of its own). */
  async write(c: mysql.Connection, id: string, mark: string): Promise<void> {
    await this.ensure(c);
    try {
      await exec(c, `INSERT INTO ${this.qualified} (id, mark) VALUES (?, ?)`, [id, mark]);
    } catch (err) {
      const n = errno(err);
      if (n !== 1146 && n !== 1049) throw signalError(err, this.sig);
      // Dropped under us: create it again, once.
      this.ensured = undefined;
      await this.ensure(c);
      await exec(c, `INSERT INTO ${this.qualified} (id, mark) VALUES (?, ?)`, [id, mark]).catch((e: unknown) => {
        throw signalError(e, this.sig);
      });
    }
    if (mark === 'high' && Date.now() - this.lastCleanup > 60_000) {
      // The binlog keeps the inserts; the rows themselves are only needed until written.
      this.lastCleanup = Date.now();
      await exec(c, `DELETE FROM ${this.qualified} WHERE created_at < CURRENT_TIMESTAMP(6) - INTERVAL 10 MINUTE LIMIT 10000`).catch(() => undefined);
    }
  }
}
