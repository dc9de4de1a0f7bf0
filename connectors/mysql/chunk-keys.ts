/**
 * Key columns of MySQL/MariaDB snapshot chunks: how a boundary is fetched (in an exact text
 * form), persisted, and written back as an SQL literal that compares in the column's own
 * collation, so a boundary never shifts.
 *
 * Key types: `int`, `dec`, `float`, `temporal`, `ord` (ENUM/SET/BIT: compared by their numeric
 * value, which is also their ORDER BY order), `bin` (binary strings, as hex),
 * `str:<charset>:<collation>` (character strings, as hex, compared in that collation).
 */
import type { JsonValue } from '../../src/core/event.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { SnapshotTable } from '../../src/snapshot/types.js';
import { ident, quoteString } from './snapshot-sql.js';

/** The key type of a column, from information_schema's DATA_TYPE, charset and collation. */
export function keyTypeFor(dataType: string, charset: string | null, collation: string | null): string {
  switch (dataType) {
    case 'tinyint': case 'smallint': case 'mediumint': case 'int': case 'integer': case 'bigint': case 'year':
      return 'int';
    case 'decimal': case 'numeric':
      return 'dec';
    case 'float': case 'double': case 'real':
      return 'float';
    case 'date': case 'datetime': case 'timestamp': case 'time':
      return 'temporal';
    case 'enum': case 'set': case 'bit':
      return 'ord';
    default:
      if (!charset || charset === 'binary' || !collation) return 'bin';
      return `str:${charset}:${collation}`;
  }
}

/** The expression compared and ordered on. */
export function keyExpr(col: string, kt: string): string {
  return kt === 'ord' ? `(${ident(col)}+0)` : ident(col);
}

/** The expression a boundary value is fetched with (exact text). */
export function boundaryExpr(col: string, kt: string): string {
  if (kt === 'ord') return `${ident(col)}+0`;
  if (kt === 'float') return `${ident(col)}+0E0`;
  if (kt === 'bin' || kt.startsWith('str:')) return `HEX(${ident(col)})`;
  return ident(col);
}

const INT_RE = /^-?\d+$/;
const DEC_RE = /^-?\d+(\.\d+)?$/;
const FLOAT_RE = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;
const HEX_RE = /^[0-9a-f]*$/i;
const WORD_RE = /^\w+$/;

/** A boundary value back as an SQL literal that compares like the column. */
export function keyLiteral(v: JsonValue, kt: string): string {
  const s = String(v);
  const bad = (): never => {
    throw new TributaryError(ErrorCodes.SNAPSHOT_BOUND, `snapshot boundary ${JSON.stringify(v)} does not fit key type ${kt}`, { fix: 'cancel the snapshot and start it again' });
  };
  switch (kt) {
    case 'int':
    case 'ord':
      return INT_RE.test(s) ? s : bad();
    case 'dec':
      return DEC_RE.test(s) ? s : bad();
    case 'float':
      return FLOAT_RE.test(s) ? (/e/i.test(s) ? s : `${s}E0`) : bad();
    case 'temporal':
      return quoteString(s);
    case 'bin':
      return HEX_RE.test(s) ? `X'${s}'` : bad();
    default: {
      const [, cs, coll] = kt.split(':');
      if (!HEX_RE.test(s) || !cs || !coll || !WORD_RE.test(cs) || !WORD_RE.test(coll)) bad();
      return `CONVERT(X'${s}' USING ${cs}) COLLATE ${coll}`;
    }
  }
}

/**
 * `(k1, k2, …) > (v1, v2, …)` (or `<=`), spelled out as `k1 > v1 OR (k1 = v1 AND …)` with a
 * leading `k1 >= v1`: MariaDB does not use an index range for row-constructor comparisons.
 */
export function rowCompare(cols: string[], kts: string[], vals: JsonValue[], op: '>' | '<='): string {
  const e = cols.map((c, i) => keyExpr(c, kts[i]!));
  const l = vals.map((v, i) => keyLiteral(v, kts[i]!));
  if (e.length === 1) return `${e[0]} ${op} ${l[0]}`;
  const strict = op === '>' ? '>' : '<';
  let inner = `${e[e.length - 1]} ${op} ${l[l.length - 1]}`;
  for (let i = e.length - 2; i >= 0; i--) inner = `(${e[i]} ${strict} ${l[i]} OR (${e[i]} = ${l[i]} AND ${inner}))`;
  return `(${e[0]} ${op === '>' ? '>=' : '<='} ${l[0]} AND ${inner})`;
}

/** A table's key types (`bin` for a plan stored before they were recorded). */
export function keyTypesOf(table: SnapshotTable): string[] {
  return table.keyTypes ?? table.key.map(() => 'bin');
}
