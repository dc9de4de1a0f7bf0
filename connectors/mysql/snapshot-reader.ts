/**
 * A MySQL/MariaDB snapshot reader: one connection that writes a worker's watermarks into the
 * signal table and reads its chunks, each as one keyset `SELECT` of the chunk's bounds. Rows
 * go through the byte path (snapshot-rows.ts: JSON written from the protocol bytes) unless a
 * table has a column it cannot write, which then reads through the object path (object-rows.ts).
 */
import type mysql from 'mysql2';
import { ErrorCodes, TributaryError, errorMessage } from '../../src/core/errors.js';
import { StringRows, type ChunkBounds, type RowSink, type SnapshotReader, type SnapshotTable } from '../../src/snapshot/types.js';
import { keyTypesOf, rowCompare } from './chunk-keys.js';
import { objectRows, type ObjectRowsPlan } from './object-rows.js';
import type { SignalWriter } from './signal-table.js';
import { columnInfo, selectFor, type ColumnInfo } from './snapshot-columns.js';
import { readChunkRows } from './chunk-query.js';
import { RowWriter, fieldSig } from './snapshot-rows.js';
import { errno, filtered, ident, qname, splitName } from './snapshot-sql.js';
import { converterFor } from './snapshot-values.js';

/** A table's SELECT list and converters, built once per reader and table. */
interface TableReadPlan extends ObjectRowsPlan {
  columns: ColumnInfo[];
  select: string;
  /** False once a result had a column the byte path cannot write (see snapshot-rows.ts). */
  fast?: boolean;
  /** The byte path's writer of the last result. */
  writer?: RowWriter | null;
}

function readPlan(columns: ColumnInfo[]): TableReadPlan {
  // An explicit list: invisible columns are in the binlog too.
  return { columns, byName: new Map(columns.map((col) => [col.name, col])), select: columns.map(selectFor).join(', ') };
}

/** Maps "SELECT command denied" to a coded error naming the grant (retried with backoff by the coordinator). */
function readError(err: unknown, table: string): unknown {
  const n = errno(err);
  if (n !== 1142 && n !== 1143) return err;
  const { db, table: t } = splitName(table);
  return new TributaryError(ErrorCodes.SNAPSHOT_PRIVILEGE, `cannot read ${table} for the snapshot: ${errorMessage(err)}`, {
    fix: `GRANT SELECT ON ${ident(db)}.${ident(t)} TO the source user`,
    cause: err,
  });
}

/**
 * The reader on connection `c`, which it owns and ends on close(). `rowPath: 'objects'` reads
 * every chunk through the object path (tests compare the two).
 */
export function openReader(c: mysql.Connection, signal: SignalWriter, rowPath: 'bytes' | 'objects' | undefined): SnapshotReader {
  const plans = new Map<string, TableReadPlan>();
  let closed = false;
  const select = async (table: SnapshotTable, conds: string[], retry: boolean, out: RowSink): Promise<void> => {
    let plan = plans.get(table.name);
    if (!plan) {
      const cols = await columnInfo(c, table.name);
      // information_schema lists no column of a table the user may not read.
      if (!cols.length) throw readError(Object.assign(new Error(`no column of ${table.name} is visible to the user (missing SELECT, or the table was dropped)`), { errno: 1142 }), table.name);
      plans.set(table.name, (plan = readPlan(cols)));
    }
    const order = table.key.map((k) => ident(k)).join(', ');
    const sql = `SELECT ${plan.select} FROM ${qname(table.name)}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''}${order ? ` ORDER BY ${order}` : ''}`;
    try {
      if (plan.fast !== false && rowPath !== 'objects') {
        const p = plan;
        const written = await readChunkRows(
          c,
          sql,
          (fields) => {
            const sig = fieldSig(fields);
            if (p.writer?.sig !== sig) p.writer = RowWriter.for(fields, p.byName, table.key, converterFor);
            return p.writer;
          },
          out,
        );
        if (written) return;
        // A column the byte path has no writer for: this table reads as objects from now on.
        plan.fast = false;
      }
      return await objectRows(c, sql, table, plan, out);
    } catch (err) {
      // 1054: unknown column (before any row): the table changed since the plan was made.
      if (retry && errno(err) === 1054) {
        plans.delete(table.name);
        return select(table, conds, false, out);
      }
      throw readError(err, table.name);
    }
  };
  const readInto = (table: SnapshotTable, chunk: ChunkBounds, where: string | null, out: RowSink): Promise<void> => {
    const kts = keyTypesOf(table);
    const conds: string[] = [];
    if (chunk.lo) conds.push(rowCompare(table.key, kts, chunk.lo, '>'));
    if (chunk.hi) conds.push(rowCompare(table.key, kts, chunk.hi, '<='));
    if (where) conds.push(`(${where})`);
    return filtered(c, where, () => select(table, conds, true, out));
  };
  return {
    watermark: (id, mark) => signal.write(c, id, mark),
    async read(table, chunk, where) {
      const out = new StringRows();
      await readInto(table, chunk, where, out);
      return out.out;
    },
    readInto,
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((r) => c.end(() => r())).catch(() => c.destroy());
    },
  };
}
