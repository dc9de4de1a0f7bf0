import type { DecodedEvent } from './format.js';
import { KIND_UPSERT } from './key-index.js';
import type { RankedEntry } from './key-merge.js';
import { envelopeParts, isNull, members } from './json-scan.js';

/** A key's row as of its latest version, whole. */
export interface WholeRow {
  /** The latest version's event. */
  event: DecodedEvent;
  /** The row's JSON bytes, unchanged TOAST columns filled in. */
  row: Buffer;
  /** The latest version's `source` block, without `unchanged` when the row was filled. */
  source: Buffer;
}

/**
 * The row a key's versions (oldest first, the latest last) amount to, or null when the
 * latest is a delete. An update whose unchanged TOAST columns were not sent (named in
 * `source.unchanged`) takes each such column from the newest earlier version that has it,
 * so the row is whole, as a keyed sink that saw every version holds it. `usable` says
 * whether an earlier version may be used (not across a truncate).
 */
export async function wholeRow(versions: RankedEntry[], read: (e: RankedEntry) => Promise<DecodedEvent>, usable: (e: RankedEntry) => boolean = () => true): Promise<WholeRow | null> {
  const last = versions[versions.length - 1];
  if (!last || last.kind !== KIND_UPSERT) return null;
  const event = await read(last);
  const b = event.buf;
  const parts = envelopeParts(b, event.envStart, event.envEnd);
  if (isNull(b, parts.after)) return null;
  const row = b.subarray(parts.after[0], parts.after[1]);
  const source = b.subarray(parts.source[0], parts.source[1]);
  const missing = unchangedColumns(b, parts.source);
  if (!missing) return { event, row, source };
  const want = new Set(missing);
  const extra: Buffer[] = [];
  for (let i = versions.length - 2; i >= 0 && want.size; i--) {
    const v = versions[i]!;
    if (v.kind !== KIND_UPSERT || !usable(v)) break;
    const ev = await read(v);
    const p = envelopeParts(ev.buf, ev.envStart, ev.envEnd);
    for (const m of members(ev.buf, p.after[0], p.after[1])) {
      const name = JSON.parse(ev.buf.toString('utf8', m.ns, m.ne)) as string;
      if (!want.delete(name)) continue;
      extra.push(Buffer.from(ev.buf.subarray(m.ns, m.ve)));
    }
    if (!unchangedColumns(ev.buf, p.source)) break;
  }
  const filled = extra.length ? Buffer.concat([row.subarray(0, row.length - 1), Buffer.from(row.length > 2 ? ',' : ''), Buffer.from(extra.map((x) => x.toString('utf8')).join(',')), Buffer.from('}')]) : Buffer.from(row);
  return { event, row: filled, source: want.size ? Buffer.from(source) : withoutMember(b, parts.source, '"unchanged"') };
}

/** The columns named in `source.unchanged`, or null when there is none. */
export function unchangedColumns(b: Buffer, source: [number, number]): string[] | null {
  const at = b.indexOf('"unchanged":[', source[0], 'latin1');
  if (at < 0 || at >= source[1]) return null;
  for (const m of members(b, source[0], source[1])) {
    if (b.toString('latin1', m.ns, m.ne) === '"unchanged"') return JSON.parse(b.toString('utf8', m.vs, m.ve)) as string[];
  }
  return null;
}

/** The object at `r` without its member `name` (raw, quoted). */
function withoutMember(b: Buffer, r: [number, number], name: string): Buffer {
  const kept: string[] = [];
  for (const m of members(b, r[0], r[1])) if (b.toString('latin1', m.ns, m.ne) !== name) kept.push(b.toString('utf8', m.ns, m.ve));
  return Buffer.from(`{${kept.join(',')}}`);
}
