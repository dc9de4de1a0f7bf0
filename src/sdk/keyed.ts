/**
 * Rules every keyed sink follows (a mirror, a cache, a search index: anything that stores one
 * row or document per source key), so that they fail the same way on the same events.
 */
import type { Row } from '../core/event.js';
import { PoisonEventError } from '../core/errors.js';
import type { SinkEvent } from './index.js';

/**
 * The key of `e`, or a `PoisonEventError` when it has none (a table without a primary key and
 * without `source.key_columns`; an empty key counts as none). A keyed target cannot place such
 * an event, and retrying never changes that: the runtime dead-letters it (or stops the pipeline
 * under `dead_letter.policy: stop`) and goes on with the rest of the batch.
 *
 * @param needs why this sink needs a key, finishing "s.t has no primary key, and …", e.g.
 *   `'Elasticsearch documents are keyed by it'`.
 * @param alternatives other fixes this sink offers besides a primary key and `key_columns`,
 *   e.g. `'use mode: history'`.
 */
export function requireKey(e: SinkEvent, needs: string, alternatives: readonly string[] = []): Row {
  const key = e.event.key;
  if (key && hasMembers(key)) return key;
  const fixes = ['add a primary key to the source table', "set the source's key_columns for it", ...alternatives];
  const fix = fixes.length > 2 ? `${fixes.slice(0, -1).join(', ')}, or ${fixes.at(-1)}` : fixes.join(' or ');
  throw new PoisonEventError(`${e.table} has no primary key, and ${needs} (event at ${e.position}#${e.index}); ${fix}`);
}

function hasMembers(r: Row): boolean {
  for (const _ in r) return true;
  return false;
}

/**
 * The `after` image of an insert, update or snapshot read, or a `PoisonEventError` when it is
 * missing (a malformed event: no retry can supply it).
 */
export function requireAfter(e: SinkEvent): Row {
  const after = e.event.after;
  if (after) return after;
  throw new PoisonEventError(`${e.table}: a "${e.event.op}" event without an "after" row image at ${e.position}#${e.index}`);
}

/**
 * `row` with the columns `unchanged` names filled from `prev`.
 *
 * Postgres does not send a TOASTed value that an update left unchanged; when the old row
 * image cannot supply it either, the event names the column in `source.unchanged` and leaves
 * it out of `after`. A sink that writes whole rows must then take the value from the newest
 * earlier state of the same key it knows of (an earlier event of the batch, or the row stored
 * in the target), or the column would be lost. `prev` null or undefined: nothing is known, and
 * the columns stay out (a sink that writes only the columns a row carries keeps the stored
 * value that way). A column that `row` does carry is never replaced.
 *
 * Returns `row` itself when `unchanged` is empty, otherwise a copy: the envelope is shared by
 * every sink of the pipeline and must not be modified.
 */
export function fillUnchanged(row: Row, unchanged: readonly string[] | undefined, prev: Row | null | undefined): Row {
  if (!unchanged?.length) return row;
  const out: Row = { ...row };
  if (prev) for (const c of unchanged) if (!(c in out) && c in prev) out[c] = prev[c]!;
  return out;
}
