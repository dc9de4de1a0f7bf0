/**
 * PARTIAL_UPDATE_ROWS JSON diffs: `JSON_SET`/`JSON_REPLACE`/`JSON_REMOVE` applied in place
 * on the server and logged as a list of (operation, path, value) instead of the new document.
 *
 * Wire format of one column's diff list (after its u32 length): repeated until the end:
 * op u8 (0 REPLACE, 1 INSERT, 2 REMOVE), path length (lenenc), path (MySQL JSON path text),
 * and unless REMOVE: value length (lenenc) and a binary JSON value.
 *
 * We rebuild the full after image by applying every diff, in order, to a copy of the before
 * image. Paths use the MySQL syntax the server generated: `$`, `.key`, `."quoted key"`,
 * `[n]`. Wildcards never appear in logged diffs.
 */
import type { JsonValue } from '../../src/core/event.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { decodeJsonBinary } from './json-binary.js';
import { Reader } from './reader.js';

export const JsonDiffOp = { REPLACE: 0, INSERT: 1, REMOVE: 2 } as const;

export interface JsonDiff {
  op: 0 | 1 | 2;
  path: string;
  /** Absent for REMOVE. */
  value?: JsonValue;
}

function bad(msg: string): never {
  throw new TributaryError(ErrorCodes.MYSQL_DECODE, `JSON partial update: ${msg}`);
}

/** Parses all diffs in `buf[start, end)`. */
export function parseJsonDiffs(buf: Buffer, start: number, end: number): JsonDiff[] {
  const r = new Reader(buf, start, end);
  const out: JsonDiff[] = [];
  while (r.pos < r.end) {
    const op = r.u8();
    if (op > 2) bad(`unknown operation ${op}`);
    const path = r.lenencStr();
    if (op === JsonDiffOp.REMOVE) {
      out.push({ op, path });
      continue;
    }
    const len = r.lenenc();
    r.need(len);
    out.push({ op: op as 0 | 1, path, value: decodeJsonBinary(buf, r.pos, r.pos + len) });
    r.pos += len;
  }
  return out;
}

/** One step of a parsed path: an object member name or an array index. */
export type PathLeg = string | number;

/** Parses a MySQL JSON path (`$.a."b c"[2]`) into legs. */
export function parseJsonPath(path: string): PathLeg[] {
  if (path[0] !== '$') bad(`path does not start with $: ${path}`);
  const legs: PathLeg[] = [];
  let i = 1;
  while (i < path.length) {
    const c = path[i];
    if (c === ' ') {
      i++;
    } else if (c === '.') {
      i++;
      if (path[i] === '"') {
        // Quoted member: a JSON string literal.
        let j = i + 1;
        while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
        legs.push(JSON.parse(path.slice(i, j + 1)) as string);
        i = j + 1;
      } else {
        let j = i;
        while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
        legs.push(path.slice(i, j));
        i = j;
      }
    } else if (c === '[') {
      const j = path.indexOf(']', i);
      if (j < 0) bad(`unterminated [ in ${path}`);
      const idx = path.slice(i + 1, j).trim();
      if (!/^\d+$/.test(idx)) bad(`unsupported array index "${idx}" in ${path}`);
      legs.push(Number(idx));
      i = j + 1;
    } else {
      bad(`unexpected "${c}" in path ${path}`);
    }
  }
  return legs;
}

/**
 * Applies diffs to `doc` and returns the new document. `doc` is not modified: containers on
 * the touched paths are copied (the before image is emitted too and must stay intact).
 */
export function applyJsonDiffs(doc: JsonValue, diffs: readonly JsonDiff[]): JsonValue {
  let root = doc;
  for (const d of diffs) root = applyOne(root, parseJsonPath(d.path), 0, d);
  return root;
}

function applyOne(node: JsonValue, legs: PathLeg[], i: number, d: JsonDiff): JsonValue {
  if (i === legs.length) {
    // The path is `$` itself.
    if (d.op === JsonDiffOp.REMOVE) bad('cannot remove the document root');
    return d.value!;
  }
  const leg = legs[i]!;
  const last = i === legs.length - 1;
  if (typeof leg === 'number') {
    if (!Array.isArray(node)) {
      // MySQL auto-wraps a scalar for $[0]; a logged diff only ever targets real arrays,
      // but mirror the server: $[0] of a non-array is the value itself.
      if (leg === 0 && !last) return applyOne(node, legs, i + 1, d);
      if (leg === 0 && d.op === JsonDiffOp.REPLACE) return d.value!;
      return bad(`path ${d.path} indexes a non-array`);
    }
    const copy = node.slice();
    if (last) {
      if (d.op === JsonDiffOp.REMOVE) copy.splice(leg, 1);
      else if (d.op === JsonDiffOp.INSERT) {
        if (leg >= copy.length) copy.push(d.value!);
        else copy.splice(leg, 0, d.value!);
      } else {
        if (leg >= copy.length) bad(`path ${d.path} replaces a missing element`);
        copy[leg] = d.value!;
      }
      return copy;
    }
    if (leg >= copy.length) bad(`path ${d.path} goes through a missing element`);
    copy[leg] = applyOne(copy[leg]!, legs, i + 1, d);
    return copy;
  }
  if (node === null || typeof node !== 'object' || Array.isArray(node)) bad(`path ${d.path} names a member of a non-object`);
  const copy: { [k: string]: JsonValue } = { ...node };
  if (last) {
    if (d.op === JsonDiffOp.REMOVE) delete copy[leg];
    else copy[leg] = d.value!;
    return copy;
  }
  if (!(leg in copy)) bad(`path ${d.path} goes through a missing member`);
  copy[leg] = applyOne(copy[leg]!, legs, i + 1, d);
  return copy;
}
