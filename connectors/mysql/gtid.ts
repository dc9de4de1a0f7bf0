/**
 * GTID state: MySQL GTID sets and MariaDB per-domain GTID positions.
 *
 * - MySQL: a set of intervals per source UUID (and, from 8.3, per tag):
 *   `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,55778904-...:1-13:mytag:1-3`.
 *   A new transaction's GNO is merged into its interval list.
 * - MariaDB: the last GTID per replication domain: `0-1-100,1-2-5` (domain-server-seq).
 *   MariaDB resumes from exactly this state (`@slave_connect_state`).
 *
 * Serialization is cached per UUID/domain so that producing the string at every commit
 * costs one join, not a rebuild of the whole set.
 */

/** Formats 16 bytes as a lowercase 8-4-4-4-12 UUID. */
export function formatUuid(buf: Buffer, off: number): string {
  const h = buf.toString('hex', off, off + 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

interface UuidEntry {
  /** Tag ('' = untagged) → sorted, disjoint, non-adjacent [start, end] inclusive intervals. */
  tags: Map<string, number[][]>;
  cached: string | null;
}

/** A MySQL GTID set with incremental add. */
export class MysqlGtidSet {
  private readonly uuids = new Map<string, UuidEntry>();
  private cached: string | null = '';

  static parse(s: string): MysqlGtidSet {
    const set = new MysqlGtidSet();
    for (const raw of s.split(',')) {
      const part = raw.trim();
      if (!part) continue;
      const fields = part.split(':');
      const uuid = fields[0]!.toLowerCase();
      let tag = '';
      for (const f of fields.slice(1)) {
        const m = /^(\d+)(?:-(\d+))?$/.exec(f);
        if (m) set.addInterval(uuid, tag, Number(m[1]), Number(m[2] ?? m[1]));
        else tag = f.toLowerCase();
      }
      if (!set.uuids.has(uuid)) set.uuids.set(uuid, { tags: new Map(), cached: null });
    }
    return set;
  }

  /** Adds [start, end] (inclusive). */
  addInterval(uuid: string, tag: string, start: number, end: number): void {
    let e = this.uuids.get(uuid);
    if (!e) {
      e = { tags: new Map(), cached: null };
      this.uuids.set(uuid, e);
    }
    let list = e.tags.get(tag);
    if (!list) {
      list = [];
      e.tags.set(tag, list);
    }
    e.cached = null;
    this.cached = null;
    // Fast path: appending right after the last interval (the normal, monotonic case).
    const last = list[list.length - 1];
    if (last && start >= last[0]! && start <= last[1]! + 1) {
      if (end > last[1]!) last[1] = end;
      return;
    }
    list.push([start, end]);
    list.sort((a, b) => a[0]! - b[0]!);
    const merged: number[][] = [];
    for (const iv of list) {
      const m = merged[merged.length - 1];
      if (m && iv[0]! <= m[1]! + 1) m[1] = Math.max(m[1]!, iv[1]!);
      else merged.push([iv[0]!, iv[1]!]);
    }
    list.length = 0;
    list.push(...merged);
  }

  add(uuid: string, tag: string, gno: number): void {
    this.addInterval(uuid, tag, gno, gno);
  }

  contains(uuid: string, tag: string, gno: number): boolean {
    const list = this.uuids.get(uuid)?.tags.get(tag);
    return !!list && list.some((iv) => gno >= iv[0]! && gno <= iv[1]!);
  }

  get isEmpty(): boolean {
    return this.uuids.size === 0;
  }

  /** Whether every GTID of `other` is in this set (interval containment, not one GNO at a time). */
  includes(other: MysqlGtidSet): boolean {
    for (const [uuid, e] of other.uuids) {
      for (const [tag, list] of e.tags) {
        const mine = this.uuids.get(uuid)?.tags.get(tag) ?? [];
        // Both lists are sorted, disjoint and merged: each interval of `other` must sit inside one of ours.
        let j = 0;
        for (const [s, t] of list as [number, number][]) {
          while (j < mine.length && mine[j]![1]! < s) j++;
          if (j === mine.length || mine[j]![0]! > s || mine[j]![1]! < t) return false;
        }
      }
    }
    return true;
  }

  toString(): string {
    if (this.cached !== null) return this.cached;
    const parts: string[] = [];
    for (const uuid of [...this.uuids.keys()].sort()) {
      const e = this.uuids.get(uuid)!;
      if (e.cached === null) {
        let s = uuid;
        const tags = [...e.tags.keys()].sort();
        for (const tag of tags) {
          const list = e.tags.get(tag)!;
          if (list.length === 0) continue;
          if (tag) s += ':' + tag;
          for (const iv of list) s += iv[0] === iv[1] ? `:${iv[0]}` : `:${iv[0]}-${iv[1]}`;
        }
        e.cached = s;
      }
      parts.push(e.cached);
    }
    this.cached = parts.join(',');
    return this.cached;
  }
}

/** MariaDB GTID state: last `domain-server-seq` per domain. */
export class MariadbGtidState {
  private readonly domains = new Map<number, { server: number; seq: number }>();
  private cached: string | null = '';

  static parse(s: string): MariadbGtidState {
    const st = new MariadbGtidState();
    for (const raw of s.split(',')) {
      const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(raw);
      if (m) st.set(Number(m[1]), Number(m[2]), Number(m[3]));
    }
    return st;
  }

  /** True when `s` looks like MariaDB GTID state rather than a MySQL GTID set. */
  static looksLike(s: string): boolean {
    return /^\s*\d+-\d+-\d+\s*(,\s*\d+-\d+-\d+\s*)*$/.test(s);
  }

  /**
   * Whether this state is at or past `other` in every domain `other` names: within a domain
   * sequence numbers only grow, so the transactions `other` stands for have all been applied.
   */
  includes(other: MariadbGtidState): boolean {
    for (const [d, v] of other.domains) {
      const mine = this.domains.get(d);
      if (!mine || mine.seq < v.seq) return false;
    }
    return true;
  }

  set(domain: number, server: number, seq: number): void {
    this.domains.set(domain, { server, seq });
    this.cached = null;
  }

  toString(): string {
    if (this.cached !== null) return this.cached;
    this.cached = [...this.domains.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([d, v]) => `${d}-${v.server}-${v.seq}`)
      .join(',');
    return this.cached;
  }
}
