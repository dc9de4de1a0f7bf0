/**
 * Batch planning for keyed SQL sinks: turn an ordered batch of change events into set-based
 * work a target can apply with a few statements. Nothing here talks to a database.
 */
import type { Row } from '../../core/event.js';
import type { SinkEvent } from '../index.js';
import { fillUnchanged, requireAfter, requireKey } from '../keyed.js';
import { inferKinds, type ValueKind } from './infer.js';

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

/**
 * The canonical key string of `key`: the JSON of its single value, or of the array of its
 * values in `cols` order. Stable across versions: the warehouse sinks store it in their
 * tombstone tables.
 */
export function keyIdOf(key: Row, cols: readonly string[]): string {
  if (cols.length === 1) return JSON.stringify(key[cols[0]!] ?? null);
  return JSON.stringify(cols.map((c) => key[c] ?? null));
}

/** What a table without a key can do instead, besides getting one (a constant: no array per event). */
const KEYLESS_FIXES = ['use mode: history'];

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
    const key = requireKey(e, 'a mirror keeps rows by key', KEYLESS_FIXES);
    let t = cur.get(e.table);
    if (!t) {
      t = { table: e.table, sample: e, keyCols: Object.keys(key), changes: new Map() };
      cur.set(e.table, t);
    }
    const keyId = keyIdOf(key, t.keyCols);
    if (ev.op === 'd') {
      t.changes.set(keyId, { op: 'delete', key, keyId, row: null, fence: e.fence });
      continue;
    }
    const after = requireAfter(e);
    if (ev.op === 'u' && ev.before && t.keyCols.every((c) => c in ev.before!)) {
      const oldId = keyIdOf(ev.before, t.keyCols);
      if (oldId !== keyId) {
        const oldKey: Row = {};
        for (const c of t.keyCols) oldKey[c] = ev.before[c]!;
        t.changes.set(oldId, { op: 'delete', key: oldKey, keyId: oldId, row: null, fence: e.fence });
      }
    }
    // Only the last change of a key reaches the target, so it must carry what an earlier change
    // of this batch set in its unchanged TOAST columns; nothing earlier: the target keeps them.
    const prev = ev.source.unchanged?.length ? t.changes.get(keyId) : undefined;
    const row = fillUnchanged(after, ev.source.unchanged, prev?.op === 'upsert' ? prev.row : null);
    t.changes.set(keyId, { op: 'upsert', key, keyId, row, fence: e.fence });
  }
  if (cur.size) out.push({ kind: 'changes', tables: cur });
  return out;
}

/**
 * The upserts and deletes of one table's changes, and the column kinds the target table needs
 * for them: those of the upserted rows and of the deleted keys (a delete-only batch can create
 * the table, key columns typed).
 */
export function splitChanges(tc: TableChanges): { upserts: KeyedChange[]; deletes: KeyedChange[]; kinds: Map<string, ValueKind> } {
  const upserts: KeyedChange[] = [];
  const deletes: KeyedChange[] = [];
  for (const ch of tc.changes.values()) (ch.op === 'upsert' ? upserts : deletes).push(ch);
  const rows: Row[] = upserts.map((u) => u.row!);
  for (const d of deletes) rows.push(d.key);
  return { upserts, deletes, kinds: inferKinds(rows) };
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
