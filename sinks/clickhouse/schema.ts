/**
 * Mirror-table schema: ClickHouse column types inferred from JSON values, the DDL that
 * creates and widens tables (values are converted for INSERT bodies in rows.ts).
 *
 * Type inference (the event carries values, not column types; a value's kind is the SDK's
 * `kindOf`, shared with the other warehouse sinks):
 *
 * | JSON value                         | key column | other column        |
 * |------------------------------------|------------|---------------------|
 * | integer number                     | Int64      | Nullable(Int64)     |
 * | non-integer number                 | (poison)   | Nullable(Float64)   |
 * | boolean                            | UInt8      | Nullable(UInt8)     |
 * | string (also NUMERIC, timestamps)  | String     | Nullable(String)    |
 * | object or array (json, arrays)     | String     | String (JSON text)  |
 * | null (type not known yet)          | String     | Nullable(String)    |
 *
 * A value that does not fit its column widens the column instead of failing: Int64 to
 * Float64 to String (`ALTER TABLE ... MODIFY COLUMN`). Key columns cannot change type (they
 * are the sorting key), so a key value that does not fit is a poison event.
 */
import type { JsonValue, Row } from '../../src/sdk/index.js';
import { kindOf, type ValueKind } from '../../src/sdk/warehouse/index.js';

/** Quote an identifier with backticks (accepted by every ClickHouse version). */
export function ident(name: string): string {
  return '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function isInt64String(s: string): boolean {
  if (!/^-?\d{1,19}$/.test(s)) return false;
  const n = BigInt(s);
  return n >= INT64_MIN && n <= INT64_MAX;
}

/** The ClickHouse type for a newly seen column, from the kind of its value (`kindOf`, SDK; null: a null). */
export function typeFor(kind: ValueKind | null, isKey: boolean): string {
  switch (kind) {
    case 'int':
      return isKey ? 'Int64' : 'Nullable(Int64)';
    case 'float':
      return isKey ? 'Float64' : 'Nullable(Float64)';
    case 'bool':
      return isKey ? 'UInt8' : 'Nullable(UInt8)';
    case 'json':
      return 'String';
    default:
      return isKey ? 'String' : 'Nullable(String)';
  }
}

const kindCache = new Map<string, ValueKind>();

/** The kind a ClickHouse column type accepts (types created by someone else map sensibly). Memoized: it is on the hot path. */
export function kindOfType(type: string): ValueKind {
  let k = kindCache.get(type);
  if (k === undefined) kindCache.set(type, (k = parseKind(type)));
  return k;
}

function parseKind(type: string): ValueKind {
  const t = type.replace(/^Nullable\((.*)\)$/, '$1').replace(/^LowCardinality\((.*)\)$/, '$1');
  if (/^U?Int\d+$/.test(t)) return 'int';
  if (/^(Float\d+|Decimal)/.test(t)) return 'float';
  return 'text';
}

/**
 * Does `v` fit a column of `type` as is? `int` columns take integers and int64 strings
 * (lossless big integers); `float` columns take any number; string columns take anything
 * (non-strings as JSON text).
 */
export function fits(v: JsonValue | undefined, type: string): boolean {
  if (v === null || v === undefined) return true;
  const k = kindOfType(type);
  if (k === 'text') return true;
  if (typeof v === 'boolean') return true;
  if (typeof v === 'number') return k === 'float' || Number.isInteger(v);
  if (typeof v === 'string') return k === 'int' ? isInt64String(v) : /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v);
  return false;
}

/** The type to widen `type` to so that `v` fits: Int64 → Float64 → String. */
export function widen(type: string, v: JsonValue): string {
  const k = kindOfType(type);
  if (k === 'int' && typeof v === 'number') return 'Nullable(Float64)';
  return 'Nullable(String)';
}

/** Columns of the first row seen for a table, key columns first, in the row's order. */
export function initialColumns(row: Row, keyCols: string[]): Array<[string, string]> {
  const cols: Array<[string, string]> = keyCols.map((k) => [k, typeFor(kindOf(row[k]), true)]);
  for (const [name, v] of Object.entries(row)) if (!keyCols.includes(name)) cols.push([name, typeFor(kindOf(v), false)]);
  return cols;
}
