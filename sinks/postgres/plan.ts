/**
 * Batch planning shared by the SQL warehouse sinks (postgres, duckdb): turn an ordered batch
 * of change events into set-based work a target can apply with a few statements.
 *
 * Nothing here talks to a database. It only uses the public SDK types, so it could move into
 * `tributary/sdk` as a helper for every keyed SQL sink.
 */
import { PoisonEventError, type JsonValue, type Row, type SinkEvent } from '../../src/sdk/index.js';

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

/** One key's net change inside a batch, after collapsing. */
export interface KeyedChange {
  op: 'upsert' | 'delete';
  /** Key column values. */
  key: Row;
  /** Canonical key string (`JSON.stringify` of the key values in key-column order). */
  keyId: string;
  /** The row to store (upserts); null for deletes. */
  row: Row | null;
  /** Fence of the event that produced this state. */
  fence: string;
}

/** The collapsed changes of one source table within one segment. */
export interface TableChanges {
  /** `schema.table` / `db.table` of the source. */
  table: string;
  /** One event of the table, to render name templates. */
  sample: SinkEvent;
  keyCols: string[];
  /** Last change per key, in first-seen order (keys are disjoint, so order does not matter). */
  changes: Map<string, KeyedChange>;
}

/**
 * A batch cut at truncates: `changes` segments are applied as sets; a `truncate` must run
 * between them, since everything before it in the batch is wiped and everything after survives.
 */
export type Segment = { kind: 'changes'; tables: Map<string, TableChanges> } | { kind: 'truncate'; event: SinkEvent };

function keyIdOf(key: Row, cols: string[]): string {
  if (cols.length === 1) return JSON.stringify(key[cols[0]!] ?? null);
  return JSON.stringify(cols.map((c) => key[c] ?? null));
}

/**
 * Collapse an ordered batch to the last change per key, for a mirror.
 *
 * Why collapse: a set-based merge (`INSERT ... ON CONFLICT DO UPDATE`) cannot touch the same
 * row twice in one statement, and applying only the last state per key is what applying
 * every event in order would leave behind.
 *
 * Subtleties handled here:
 * - an update that changes the key (before's key ≠ key) deletes the old key first;
 * - an update whose `source.unchanged` columns were left out of `after` (unchanged TOAST)
 *   takes those values from the earlier change of the same key in this batch, because only
 *   the last change reaches the target and the target must end up with what the earlier one
 *   set; without an earlier change the columns are simply not written (the target keeps them);
 * - a table without key columns cannot be mirrored: such an event is a poison event.
 */
export function planMirror(events: readonly SinkEvent[]): Segment[] {
  const out: Segment[] = [];
  let cur = new Map<string, TableChanges>();
  for (const e of events) {
    const ev = e.event;
    if (ev.op === 't') {
      if (cur.size) out.push({ kind: 'changes', tables: cur });
      cur = new Map();
      out.push({ kind: 'truncate', event: e });
      continue;
    }
    if (!ev.key) {
      throw new PoisonEventError(
        `${e.table} has no primary key, so it cannot be mirrored by key (event at ${e.position}#${e.index}); add a primary key to the source table, set the source's key_columns for it, or use mode: history`,
      );
    }
    let t = cur.get(e.table);
    if (!t) {
      t = { table: e.table, sample: e, keyCols: Object.keys(ev.key), changes: new Map() };
      cur.set(e.table, t);
    }
    const keyId = keyIdOf(ev.key, t.keyCols);
    if (ev.op === 'd') {
      t.changes.set(keyId, { op: 'delete', key: ev.key, keyId, row: null, fence: e.fence });
      continue;
    }
    if (!ev.after) {
      throw new PoisonEventError(`${e.table}: a "${ev.op}" event without an "after" row image at ${e.position}#${e.index}`);
    }
    if (ev.op === 'u' && ev.before && t.keyCols.every((c) => c in ev.before!)) {
      const oldId = keyIdOf(ev.before, t.keyCols);
      if (oldId !== keyId) {
        const oldKey: Row = {};
        for (const c of t.keyCols) oldKey[c] = ev.before[c]!;
        t.changes.set(oldId, { op: 'delete', key: oldKey, keyId: oldId, row: null, fence: e.fence });
      }
    }
    let row: Row = ev.after;
    const unchanged = ev.source.unchanged;
    if (unchanged?.length) {
      const prev = t.changes.get(keyId);
      if (prev?.op === 'upsert' && prev.row) {
        row = { ...row };
        for (const c of unchanged) if (!(c in row) && c in prev.row) row[c] = prev.row[c]!;
      }
    }
    t.changes.set(keyId, { op: 'upsert', key: ev.key, keyId, row, fence: e.fence });
  }
  if (cur.size) out.push({ kind: 'changes', tables: cur });
  return out;
}

/** Group events by source table, keeping order inside each group (history mode). */
export function groupByTable(events: readonly SinkEvent[]): Map<string, SinkEvent[]> {
  const m = new Map<string, SinkEvent[]>();
  for (const e of events) {
    let g = m.get(e.table);
    if (!g) m.set(e.table, (g = []));
    g.push(e);
  }
  return m;
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

/**
 * A JSON object text with two extra leading members, without re-building the row object:
 * `{"_tributary_fence":"…","_tributary_key":"…", ...row}`. Used for the one-parameter bulk
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
