/**
 * Cutting a MySQL/MariaDB table into key chunks: every `chunkRows`-th key, fetched in the
 * exact text form chunk-keys.ts writes back, either all up front (numbered on the server with
 * `ROW_NUMBER()`, or walked one boundary per query where there are no window functions) or
 * lazily, one index probe per chunk just ahead of the workers.
 */
import type mysql from 'mysql2';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { chunksBetween, type ChunkBounds, type ChunkPlanner, type SnapshotTable } from '../../src/snapshot/types.js';
import { boundaryExpr, keyTypesOf, rowCompare } from './chunk-keys.js';
import { errno, filtered, ident, qname, rawQuery } from './snapshot-sql.js';

/** The whole plan of `table` (the caller runs it inside {@link filtered} when `where` is set). */
export async function planChunks(c: mysql.Connection, table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]> {
  const kts = keyTypesOf(table);
  const order = table.key.map((k) => ident(k)).join(', ');
  const bexprs = table.key.map((k, i) => `${boundaryExpr(k, kts[i]!)} AS ${ident(`b${i}`)}`).join(', ');
  const bcols = table.key.map((_, i) => ident(`b${i}`)).join(', ');
  const w = where ? ` WHERE (${where})` : '';
  const text = (r: (Buffer | null)[]) => r.map((b) => (b === null ? null : b.toString('latin1')));
  let bounds: (string | null)[][];
  try {
    // Every chunkRows-th key, numbered on the server: only the boundaries travel.
    const r = await rawQuery(
      c,
      `SELECT ${bcols} FROM (SELECT ${bexprs}, ROW_NUMBER() OVER (ORDER BY ${order}) AS rn__ FROM ${qname(table.name)}${w}) s WHERE rn__ % ${Math.floor(chunkRows)} = 0 ORDER BY rn__`,
    );
    bounds = r.rows.map(text);
  } catch (err) {
    if (errno(err) !== 1064) throw err;
    // No window functions (MySQL 5.7): walk the index, one boundary per query.
    bounds = [];
    let prev: (string | null)[] | null = null;
    for (;;) {
      const conds = [prev ? rowCompare(table.key, kts, prev, '>') : '', where ? `(${where})` : ''].filter(Boolean);
      const r = await rawQuery(
        c,
        `SELECT ${bexprs} FROM ${qname(table.name)}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''} ORDER BY ${order} LIMIT 1 OFFSET ${Math.floor(chunkRows) - 1}`,
      );
      if (!r.rows.length) break;
      prev = text(r.rows[0]!);
      bounds.push(prev);
    }
  }
  if (bounds.some((b) => b.some((v) => v === null))) {
    throw new TributaryError(ErrorCodes.SNAPSHOT_NO_KEY, `key of ${table.name} (${table.key.join(', ')}) holds NULLs: it cannot be paged`, {
      fix: `set source.key_columns for ${table.name} to NOT NULL columns`,
    });
  }
  if (bounds.length) {
    // When the row count is a multiple of chunkRows the open-ended last chunk would be
    // empty; fold it into the one before, so the final chunk (which carries the
    // snapshot's "last" row) has rows.
    const last = bounds[bounds.length - 1]! as string[];
    const more = await rawQuery(c, `SELECT 1 FROM ${qname(table.name)} WHERE ${rowCompare(table.key, kts, last, '>')}${where ? ` AND (${where})` : ''} LIMIT 1`);
    if (!more.rows.length) bounds.pop();
  }
  return chunksBetween(bounds);
}

/** A lazy planner on connection `c`, which it owns and ends on close(). */
export function chunkPlanner(c: mysql.Connection): ChunkPlanner {
  let closed = false;
  return {
    async next(table, lo, chunkRows, where) {
      const kts = keyTypesOf(table);
      const order = table.key.map((k) => ident(k)).join(', ');
      const bexprs = table.key.map((k, i) => `${boundaryExpr(k, kts[i]!)} AS ${ident(`b${i}`)}`).join(', ');
      const conds = [lo ? rowCompare(table.key, kts, lo, '>') : '', where ? `(${where})` : ''].filter(Boolean);
      // An index probe: the chunkRows-th key after lo, and whether any row follows it (a
      // chunk ending at the very last row takes the open end instead, so no empty chunk
      // trails behind it). Boundaries come in the exact text form keyLiteral writes back.
      const r = await filtered(c, where, () =>
        rawQuery(c, `SELECT ${bexprs} FROM ${qname(table.name)}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''} ORDER BY ${order} LIMIT 2 OFFSET ${Math.floor(chunkRows) - 1}`),
      );
      if (r.rows.length < 2) return null;
      const hi = r.rows[0]!.map((b) => (b === null ? null : b.toString('latin1')));
      if (hi.some((v) => v === null)) {
        throw new TributaryError(ErrorCodes.SNAPSHOT_NO_KEY, `key of ${table.name} (${table.key.join(', ')}) holds NULLs: it cannot be paged`, {
          fix: `set source.key_columns for ${table.name} to NOT NULL columns`,
        });
      }
      return hi;
    },
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((r) => c.end(() => r())).catch(() => c.destroy());
    },
  };
}
