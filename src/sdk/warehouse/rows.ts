/** Shaping rows into bulk statements: column sets, JSON parameters, statement sizes. */
import type { JsonValue, Row } from '../../core/event.js';

/** Split `xs` into chunks of at most `n` (`xs` itself when it fits). */
export function chunks<T>(xs: T[], n: number): T[][] {
  if (xs.length <= n) return [xs];
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/**
 * A JSON object text with extra leading members, without re-building the row object:
 * `{"_tributary_fence":"…","_tributary_key":"…", ...row}`. Used for one-parameter bulk
 * statements (`json_to_recordset` / `from_json`).
 */
export function rowJson(row: Row | null, extra: Record<string, JsonValue>): string {
  let head = '';
  for (const k in extra) head += (head ? ',' : '') + JSON.stringify(k) + ':' + JSON.stringify(extra[k]);
  if (!row) return '{' + head + '}';
  const body = JSON.stringify(row);
  return body.length <= 2 ? '{' + head + '}' : '{' + head + ',' + body.slice(1);
}

/** Does `r` have exactly the members `keys`, in that order? */
function sameMembers(r: Row, keys: readonly string[]): boolean {
  let i = 0;
  for (const c in r) if (c !== keys[i++]) return false;
  return i === keys.length;
}

/**
 * Items grouped by the columns their row carries that pass `has` (the set of columns a statement
 * writes: a row that lacks a column must not overwrite it with NULL). Rows of one table nearly
 * always have the members of the row before, in the same order; that case is recognized
 * without building a signature string per row.
 */
export function bySignature<T>(items: readonly T[], row: (x: T) => Row | null, has: (c: string) => boolean): Array<{ cols: string[]; items: T[] }> {
  const groups = new Map<string, { cols: string[]; items: T[] }>();
  let last: { cols: string[]; items: T[] } | undefined;
  let lastMembers: string[] = [];
  for (const it of items) {
    const r = row(it);
    if (last && r && sameMembers(r, lastMembers)) {
      last.items.push(it);
      continue;
    }
    const members: string[] = [];
    const cols: string[] = [];
    if (r) {
      for (const c in r) {
        members.push(c);
        if (has(c)) cols.push(c);
      }
    }
    const sig = cols.join('\u0001');
    let g = groups.get(sig);
    if (!g) groups.set(sig, (g = { cols, items: [] }));
    g.items.push(it);
    // A null row has no members, and must not match a row that has none either way.
    last = r ? g : undefined;
    lastMembers = members;
  }
  return [...groups.values()];
}
