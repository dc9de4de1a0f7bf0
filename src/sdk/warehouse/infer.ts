/**
 * Column types from JSON values. A change event carries values, not column types, so a sink
 * that creates its target tables infers each column's type from the first values it sees
 * (and widens it later when a value no longer fits).
 */
import type { JsonValue, Row } from '../../core/event.js';

/** The abstract type of a column, inferred from JSON values; each sink maps it to its own SQL type. */
export type ValueKind = 'int' | 'float' | 'bool' | 'text' | 'json';

/**
 * The kind of one JSON value, or null for null (a null tells nothing about the type).
 * Strings stay text (NUMERIC, timestamps, dates and int64-beyond-2^53 all arrive as strings and
 * are kept exactly as the source printed them); objects and arrays are json.
 */
export function kindOf(v: JsonValue | undefined): ValueKind | null {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'number':
      return Number.isInteger(v) ? 'int' : 'float';
    case 'boolean':
      return 'bool';
    case 'string':
      return 'text';
    default:
      return 'json';
  }
}

/**
 * The kind of a column given the kinds seen so far: int and float widen to float; any other
 * mix keeps the first kind (the target then rejects a value it cannot cast, as a poison event).
 */
export function mergeKind(a: ValueKind | null, b: ValueKind | null): ValueKind | null {
  if (!a) return b;
  if (!b || a === b) return a;
  if ((a === 'int' && b === 'float') || (a === 'float' && b === 'int')) return 'float';
  return a;
}

/** Column kinds inferred from a set of rows (null-only columns are left out: they are created later). */
export function inferKinds(rows: Iterable<Row>): Map<string, ValueKind> {
  const kinds = new Map<string, ValueKind>();
  for (const r of rows) {
    for (const c in r) {
      const k = kindOf(r[c]);
      if (!k) continue;
      const prev = kinds.get(c);
      if (prev === k) continue;
      kinds.set(c, mergeKind(prev ?? null, k)!);
    }
  }
  return kinds;
}
