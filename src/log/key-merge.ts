import type { KeyEntry } from './key-index.js';

/** A key entry and the source it came from (its rank: a higher source wins ties of offsets). */
export interface RankedEntry extends KeyEntry {
  source: number;
}

/** All entries of one key (equal table and key bytes), from every source, oldest first. */
export interface KeyGroup {
  table: number;
  key: Buffer;
  entries: RankedEntry[];
}

function before(a: KeyEntry, b: KeyEntry): boolean {
  return a.table < b.table || (a.table === b.table && (a.h1 < b.h1 || (a.h1 === b.h1 && a.h2 < b.h2)));
}

function sameHash(a: KeyEntry, b: KeyEntry): boolean {
  return a.table === b.table && a.h1 === b.h1 && a.h2 === b.h2;
}

/**
 * Merge sorted key-entry streams (one per segment, or a compacted generation) into groups of
 * one key each. Sources are ranked by their index: entries of a later source are newer than
 * any of an earlier one (segments in log order, the compacted state first). Memory holds one
 * entry per source plus the current hash group; entries whose hashes collide are split by
 * their key bytes, so two keys never merge.
 */
export function* mergeKeys(sources: Iterable<KeyEntry>[]): Generator<KeyGroup> {
  const its = sources.map((s) => s[Symbol.iterator]());
  const heads: (RankedEntry | null)[] = its.map((it, i) => next(it, i));
  function next(it: Iterator<KeyEntry>, source: number): RankedEntry | null {
    const r = it.next();
    return r.done ? null : { ...r.value, source };
  }
  for (;;) {
    let min: RankedEntry | null = null;
    for (const h of heads) if (h && (!min || before(h, min))) min = h;
    if (!min) return;
    const group: RankedEntry[] = [];
    for (let i = 0; i < heads.length; i++) {
      while (heads[i] && sameHash(heads[i]!, min)) {
        group.push(heads[i]!);
        heads[i] = next(its[i]!, i);
      }
    }
    group.sort((a, b) => a.source - b.source || a.offset - b.offset);
    // Split by key bytes (hash collisions are rare, but must never merge two keys).
    const byKey: KeyGroup[] = [];
    for (const e of group) {
      let g = byKey.find((x) => x.key.equals(e.key));
      if (!g) byKey.push((g = { table: e.table, key: e.key, entries: [] }));
      g.entries.push(e);
    }
    yield* byKey;
  }
}
