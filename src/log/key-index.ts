/**
 * The per-key version index of the log: for every event, which table and key it changes and
 * at which offset. It answers "the latest version of this key at or before offset X"
 * (time travel) and "every key of this table" (whole-table state, compaction) without
 * reading the log itself.
 *
 * The entries of the active segment are kept in memory as parallel typed arrays plus one
 * arena of key bytes (no object or string per event). When a segment is sealed they are
 * sorted by (table hash, key hash, offset) and written into its sidecar, key bytes
 * included, so that two keys whose hashes collide are still told apart exactly: hashes
 * only order and narrow the search; equality is always decided on the key's bytes.
 */

/** FNV-1a over a string's UTF-16 units: the hash of a table name (once per table). */
export function tableHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Two independent 32-bit hashes of key bytes (FNV-1a, and a murmur-style mix). */
export function keyHashes(b: Buffer, s: number, e: number): [number, number] {
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c ^ (e - s);
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return [h1 >>> 0, h2 >>> 0];
}

export const KIND_UPSERT = 0;
export const KIND_DELETE = 1;
export const KIND_TRUNCATE = 2;

/** A key run's entries as plain typed arrays, exactly `n` long (what crosses to a worker thread). */
export type KeyColumns = Pick<KeyRun, 'n' | 'table' | 'h1' | 'h2' | 'offset' | 'kind' | 'keyStart' | 'keyLen'> & { keys: Uint8Array };

/** Growable in-memory key entries: what the active segment (or a compaction) accumulates. */
export class KeyRun {
  n = 0;
  table: Uint32Array;
  h1: Uint32Array;
  h2: Uint32Array;
  offset: Float64Array;
  kind: Uint8Array;
  keyStart: Uint32Array;
  keyLen: Uint32Array;
  keys: Buffer;
  keyBytes = 0;
  /** Table names by hash, with one key JSON of each (the key column order for lookups). */
  readonly tables = new Map<number, { name: string; sampleKey: string | null }>();

  /**
   * With `shared`, the columns live in SharedArrayBuffers, so a worker thread reads them with
   * no copy (a sealed segment's run, see {@link splitBelow}): a copy of a segment's columns
   * cost more than the sort, mostly in page faults of the fresh memory.
   */
  constructor(
    cap = 1024,
    readonly shared = false,
  ) {
    const u32 = () => (shared ? new Uint32Array(new SharedArrayBuffer(cap * 4)) : new Uint32Array(cap));
    this.table = u32();
    this.h1 = u32();
    this.h2 = u32();
    this.offset = shared ? new Float64Array(new SharedArrayBuffer(cap * 8)) : new Float64Array(cap);
    this.kind = shared ? new Uint8Array(new SharedArrayBuffer(cap)) : new Uint8Array(cap);
    this.keyStart = u32();
    this.keyLen = u32();
    this.keys = shared ? Buffer.from(new SharedArrayBuffer(cap * 16)) : Buffer.allocUnsafe(cap * 16);
  }

  /**
   * The entries as columns for another thread: views, which `postMessage` shares when they
   * are in shared memory (a sealed segment's run) and copies otherwise.
   */
  columns(): KeyColumns {
    const n = this.n;
    return {
      n,
      table: this.table.subarray(0, n),
      h1: this.h1.subarray(0, n),
      h2: this.h2.subarray(0, n),
      offset: this.offset.subarray(0, n),
      kind: this.kind.subarray(0, n),
      keyStart: this.keyStart.subarray(0, n),
      keyLen: this.keyLen.subarray(0, n),
      keys: new Uint8Array(this.keys.buffer, this.keys.byteOffset, this.keyBytes),
    };
  }

  /** A run over `c` (adopted, not copied); its tables are not known. */
  static fromColumns(c: KeyColumns): KeyRun {
    const r = new KeyRun(1);
    r.n = c.n;
    r.table = c.table;
    r.h1 = c.h1;
    r.h2 = c.h2;
    r.offset = c.offset;
    r.kind = c.kind;
    r.keyStart = c.keyStart;
    r.keyLen = c.keyLen;
    r.keys = Buffer.from(c.keys.buffer, c.keys.byteOffset, c.keys.byteLength);
    r.keyBytes = c.keys.byteLength;
    return r;
  }

  /** Record that the event at `offset` changes `key` (JSON bytes `b[s, e)`) of `table`. */
  add(table: string, th: number, kind: number, b: Buffer, s: number, e: number, offset: number): void {
    if (this.n === this.table.length) this.grow();
    const i = this.n++;
    this.table[i] = th;
    this.offset[i] = offset;
    this.kind[i] = kind;
    if (kind === KIND_TRUNCATE) {
      this.h1[i] = 0;
      this.h2[i] = 0;
      this.keyStart[i] = this.keyBytes;
      this.keyLen[i] = 0;
    } else {
      // Hash and copy the key in one pass (keys are a few bytes: a loop beats copy()).
      const len = e - s;
      if (this.keyBytes + len > this.keys.length) {
        const next = Buffer.allocUnsafe(Math.max(this.keys.length * 2, this.keyBytes + len + 1024));
        this.keys.copy(next, 0, 0, this.keyBytes);
        this.keys = next;
      }
      const out = this.keys;
      let o = this.keyBytes;
      let h1 = 0x811c9dc5;
      let h2 = 0x9747b28c ^ len;
      for (let j = s; j < e; j++) {
        const c = b[j]!;
        out[o++] = c;
        h1 = Math.imul(h1 ^ c, 0x01000193);
        h2 = Math.imul(h2 ^ c, 0x5bd1e995);
        h2 ^= h2 >>> 15;
      }
      this.h1[i] = h1 >>> 0;
      this.h2[i] = h2 >>> 0;
      this.keyStart[i] = this.keyBytes;
      this.keyLen[i] = len;
      this.keyBytes = o;
    }
    if (!this.tables.has(th) && kind !== KIND_TRUNCATE) {
      const text = b.toString('utf8', s, e);
      if (text !== 'null') this.tables.set(th, { name: table, sampleKey: text });
    } else if (!this.tables.has(th)) {
      this.tables.set(th, { name: table, sampleKey: null });
    }
  }

  private grow(): void {
    const cap = this.table.length * 2;
    const g32 = (a: Uint32Array) => {
      const x = new Uint32Array(cap);
      x.set(a);
      return x;
    };
    this.table = g32(this.table);
    this.h1 = g32(this.h1);
    this.h2 = g32(this.h2);
    this.keyStart = g32(this.keyStart);
    this.keyLen = g32(this.keyLen);
    const o = new Float64Array(cap);
    o.set(this.offset);
    this.offset = o;
    const k = new Uint8Array(cap);
    k.set(this.kind);
    this.kind = k;
  }

  /**
   * Indices of the entries in (table, h1, h2, offset) order. Entries are added in offset
   * order, so a stable sort is enough: an LSD radix sort by (table, h1), 16 bits a pass (a
   * comparator sort of a segment's entries cost ~80 ms; this, a few), a pass skipped when
   * every entry falls in one bucket (one table, the usual case). Entries that tie on
   * (table, h1) are one key, or (rarely) two keys whose first hashes collide: an insertion
   * sort by h2 that moves only past a greater h2 keeps each key's offset order.
   */
  sortedOrder(): Uint32Array {
    const n = this.n;
    let idx = new Uint32Array(n);
    let tmp = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    const count = new Uint32Array(65537);
    for (const col of [this.h1, this.table]) {
      for (const shift of [0, 16]) {
        if (radixPass(col, shift, idx, tmp, count, n)) [idx, tmp] = [tmp, idx];
      }
    }
    orderTies(idx, this.table, this.h1, this.h2, n);
    return idx;
  }

  /** Drop every entry at or above `offset` (recovery cut the log there). */
  truncate(offset: number): void {
    while (this.n > 0 && this.offset[this.n - 1]! >= offset) this.n--;
    this.keyBytes = this.n ? this.keyStart[this.n - 1]! + this.keyLen[this.n - 1]! : 0;
  }

  /**
   * Split off the entries below `offset` (the segment being sealed) into a new run; this
   * run keeps the rest. Entries are in offset order, so it is a cut at one index.
   */
  splitBelow(offset: number): KeyRun {
    let cut = 0;
    while (cut < this.n && this.offset[cut]! < offset) cut++;
    // Column by column with typed-array copies: entry by entry cost a tenth of a sealing.
    const head = this.sharedHead(cut);
    for (const [k, v] of this.tables) head.tables.set(k, v);
    // The rest moves to the front of these arrays, which keep their capacity: the next
    // segment fills as many entries, and growing to it again from a small run copied every
    // column at each doubling.
    const n = this.n - cut;
    const k0 = n ? this.keyStart[cut]! : 0;
    this.table.copyWithin(0, cut, this.n);
    this.h1.copyWithin(0, cut, this.n);
    this.h2.copyWithin(0, cut, this.n);
    this.offset.copyWithin(0, cut, this.n);
    this.kind.copyWithin(0, cut, this.n);
    this.keyLen.copyWithin(0, cut, this.n);
    this.keyStart.copyWithin(0, cut, this.n);
    for (let i = 0; i < n; i++) this.keyStart[i]! -= k0;
    this.keys.copyWithin(0, k0, this.keyBytes);
    this.keyBytes -= k0;
    this.n = n;
    // Both keep every table seen so far: a superset is harmless (it lists tables to look
    // at), and entries past the cut were added before it, with their tables.
    return head;
  }

  /** Entries `[0, cut)` as a new run in shared memory (see the constructor), key bytes copied. */
  private sharedHead(cut: number): KeyRun {
    const r = new KeyRun(Math.max(16, cut), true);
    r.n = cut;
    r.table.set(this.table.subarray(0, cut));
    r.h1.set(this.h1.subarray(0, cut));
    r.h2.set(this.h2.subarray(0, cut));
    r.offset.set(this.offset.subarray(0, cut));
    r.kind.set(this.kind.subarray(0, cut));
    r.keyLen.set(this.keyLen.subarray(0, cut));
    // Keys were added in entry order, so the first `cut` entries own one run of bytes.
    const k0 = cut ? this.keyStart[0]! : 0;
    const k1 = cut ? this.keyStart[cut - 1]! + this.keyLen[cut - 1]! : 0;
    if (k1 - k0 > r.keys.length) r.keys = Buffer.from(new SharedArrayBuffer(k1 - k0));
    this.keys.copy(r.keys, 0, k0, k1);
    r.keyBytes = k1 - k0;
    for (let i = 0; i < cut; i++) r.keyStart[i] = this.keyStart[i]! - k0;
    return r;
  }

  /** Append entry `i` of `other` (key bytes copied). */
  copyFrom(other: KeyRun, i: number): void {
    const s = other.keyStart[i]!;
    this.addRaw(other.table[i]!, other.h1[i]!, other.h2[i]!, other.kind[i]!, other.offset[i]!, other.keys, s, s + other.keyLen[i]!);
  }

  /** Append an entry whose hashes are known. */
  addRaw(th: number, h1: number, h2: number, kind: number, offset: number, b: Buffer, s: number, e: number): void {
    if (this.n === this.table.length) this.grow();
    const i = this.n++;
    this.table[i] = th;
    this.h1[i] = h1;
    this.h2[i] = h2;
    this.kind[i] = kind;
    this.offset[i] = offset;
    const len = e - s;
    if (this.keyBytes + len > this.keys.length) {
      const next = Buffer.allocUnsafe(Math.max(this.keys.length * 2, this.keyBytes + len + 1024));
      this.keys.copy(next, 0, 0, this.keyBytes);
      this.keys = next;
    }
    b.copy(this.keys, this.keyBytes, s, e);
    this.keyStart[i] = this.keyBytes;
    this.keyLen[i] = len;
    this.keyBytes += len;
  }
}

/*
 * The sort's loops live in functions of their own: a segment is sealed a few times per run, and
 * V8 optimizes a small function called a few times far sooner than loops nested in one big one
 * (the first sort of 140k entries took 110 ms that way, against 18 ms).
 */

/** One stable counting pass of `idx` into `tmp` by 16 bits of `col`; false when every entry falls in one bucket (nothing moves). */
function radixPass(col: Uint32Array, shift: number, idx: Uint32Array, tmp: Uint32Array, count: Uint32Array, n: number): boolean {
  count.fill(0);
  for (let i = 0; i < n; i++) count[((col[i]! >>> shift) & 0xffff) + 1]!++;
  if (n && count[((col[0]! >>> shift) & 0xffff) + 1] === n) return false;
  for (let d = 0; d < 65536; d++) count[d + 1]! += count[d]!;
  for (let i = 0; i < n; i++) {
    const j = idx[i]!;
    tmp[count[(col[j]! >>> shift) & 0xffff]!++] = j;
  }
  return true;
}

/** Entries sorted by (table, h1) that tie: ordered by h2, moving only past a greater one (stable). */
function orderTies(idx: Uint32Array, table: Uint32Array, h1: Uint32Array, h2: Uint32Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const j = idx[i]!;
    const t = table[j]!;
    const a = h1[j]!;
    const c = h2[j]!;
    let k = i;
    while (k > 0) {
      const p = idx[k - 1]!;
      if (table[p] !== t || h1[p] !== a || h2[p]! <= c) break;
      idx[k] = p;
      k--;
    }
    idx[k] = j;
  }
}

/**
 * Sidecar form of a key run, sorted: fixed 32-byte entries then the key bytes.
 *
 * ```
 * entry: u32 table hash, u32 h1, u32 h2, u8 kind, 3 pad, f64 offset, u32 key start, u32 key length
 * ```
 */
export const KEY_ENTRY_BYTES = 32;

/**
 * Encode `run` sorted, as the sidecar's key section: entries, then the key bytes as the run
 * holds them (entries point into them; the bytes need no order of their own). `keys` is a
 * view of the run's bytes, not a copy: the run is not added to afterwards.
 */
export function encodeKeyRun(run: KeyRun): { entries: Buffer; keys: Buffer } {
  const order = run.sortedOrder();
  const ab = new ArrayBuffer(run.n * KEY_ENTRY_BYTES);
  const u32 = new Uint32Array(ab);
  const f64 = new Float64Array(ab);
  const u8 = new Uint8Array(ab);
  for (let j = 0; j < order.length; j++) {
    const i = order[j]!;
    const w = j * 8; // entry j in 32-bit words
    u32[w] = run.table[i]!;
    u32[w + 1] = run.h1[i]!;
    u32[w + 2] = run.h2[i]!;
    u8[j * KEY_ENTRY_BYTES + 12] = run.kind[i]!;
    f64[j * 4 + 2] = run.offset[i]!;
    u32[w + 6] = run.keyStart[i]!;
    u32[w + 7] = run.keyLen[i]!;
  }
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('the log format is little-endian; this machine is not');
  return { entries: Buffer.from(ab), keys: run.keys.subarray(0, run.keyBytes) };
}

/** One key-index entry as read back. */
export interface KeyEntry {
  table: number;
  h1: number;
  h2: number;
  kind: number;
  offset: number;
  key: Buffer;
}

/**
 * Random access to a sorted key section, through a `read(position, length)` function (a
 * pread on the sidecar, or a slice of a buffer in memory). Lookups binary-search the
 * fixed-size entries, so memory stays flat however large the segment.
 */
export class SortedKeys {
  constructor(
    readonly count: number,
    private readonly read: (pos: number, len: number) => Buffer,
    /** Where the entries start, and where the key bytes start, in the `read` space. */
    private readonly entriesAt: number,
    private readonly keysAt: number,
    /** Checks the whole section (its checksum) before a full pass; a no-op in memory. */
    private readonly verify: () => void = () => undefined,
  ) {}

  private entry(j: number): KeyEntry {
    const b = this.read(this.entriesAt + j * KEY_ENTRY_BYTES, KEY_ENTRY_BYTES);
    const ks = b.readUInt32LE(24);
    const kl = b.readUInt32LE(28);
    return { table: b.readUInt32LE(0), h1: b.readUInt32LE(4), h2: b.readUInt32LE(8), kind: b[12]!, offset: b.readDoubleLE(16), key: kl ? this.read(this.keysAt + ks, kl) : EMPTY };
  }

  /** First index whose (table, h1, h2) is >= the given triple. */
  private lowerBound(table: number, h1: number, h2: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.read(this.entriesAt + mid * KEY_ENTRY_BYTES, 12);
      const t = b.readUInt32LE(0);
      const a = b.readUInt32LE(4);
      const c = b.readUInt32LE(8);
      if (t < table || (t === table && (a < h1 || (a === h1 && c < h2)))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Entries of exactly this key (bytes compared), in offset order. */
  lookup(table: number, key: Buffer): KeyEntry[] {
    const [h1, h2] = keyHashes(key, 0, key.length);
    const out: KeyEntry[] = [];
    for (let j = this.lowerBound(table, h1, h2); j < this.count; j++) {
      const e = this.entry(j);
      if (e.table !== table || e.h1 !== h1 || e.h2 !== h2) break;
      if (e.key.equals(key)) out.push(e);
    }
    return out;
  }

  /** Truncates of `table` (they sort first in the table: hashes 0, 0). */
  truncates(table: number): KeyEntry[] {
    const out: KeyEntry[] = [];
    for (let j = this.lowerBound(table, 0, 0); j < this.count; j++) {
      const e = this.entry(j);
      if (e.table !== table || e.kind !== KIND_TRUNCATE) break;
      out.push(e);
    }
    return out;
  }

  /** Every entry of `table`, in (hash, offset) order: one pass, flat memory. */
  *ofTable(table: number): Generator<KeyEntry> {
    this.verify();
    for (let j = this.lowerBound(table, 0, 0); j < this.count; j++) {
      const e = this.entry(j);
      if (e.table !== table) return;
      yield e;
    }
  }

  /** Every entry, in sorted order. */
  *all(): Generator<KeyEntry> {
    this.verify();
    for (let j = 0; j < this.count; j++) yield this.entry(j);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The queries of {@link SortedKeys} over an in-memory run (the active segment), for entries
 * below `below` (the durable end). Lookups scan the typed arrays (a segment's worth, about a
 * millisecond); full passes sort a copy once.
 */
export class RunKeys {
  private sorted: SortedKeys | null = null;
  constructor(
    private readonly run: KeyRun,
    private readonly below: number,
  ) {}

  lookup(table: number, key: Buffer): KeyEntry[] {
    const r = this.run;
    const [h1, h2] = keyHashes(key, 0, key.length);
    const out: KeyEntry[] = [];
    for (let i = 0; i < r.n; i++) {
      if (r.offset[i]! >= this.below) break;
      if (r.h1[i] !== h1 || r.h2[i] !== h2 || r.table[i] !== table || r.kind[i] === KIND_TRUNCATE) continue;
      const s = r.keyStart[i]!;
      const k = r.keys.subarray(s, s + r.keyLen[i]!);
      if (k.equals(key)) out.push({ table, h1, h2, kind: r.kind[i]!, offset: r.offset[i]!, key: Buffer.from(k) });
    }
    return out;
  }

  truncates(table: number): KeyEntry[] {
    const r = this.run;
    const out: KeyEntry[] = [];
    for (let i = 0; i < r.n; i++) {
      if (r.offset[i]! >= this.below) break;
      if (r.kind[i] === KIND_TRUNCATE && r.table[i] === table) out.push({ table, h1: 0, h2: 0, kind: KIND_TRUNCATE, offset: r.offset[i]!, key: EMPTY });
    }
    return out;
  }

  ofTable(table: number): Iterable<KeyEntry> {
    return (this.sorted ??= sortedKeysOf(this.run, this.below)).ofTable(table);
  }

  all(): Iterable<KeyEntry> {
    return (this.sorted ??= sortedKeysOf(this.run, this.below)).all();
  }
}

/** What time travel and compaction ask of a segment's key entries. */
export interface KeyQueries {
  lookup(table: number, key: Buffer): KeyEntry[];
  truncates(table: number): KeyEntry[];
  ofTable(table: number): Iterable<KeyEntry>;
  all(): Iterable<KeyEntry>;
}

/** A sorted view of an in-memory run (the active segment), for the same queries. */
export function sortedKeysOf(run: KeyRun, below = Infinity): SortedKeys {
  // Entries at or above `below` are not durable yet: leave them out.
  let n = run.n;
  while (n > 0 && run.offset[n - 1]! >= below) n--;
  const view = new KeyRun(Math.max(16, n));
  for (let i = 0; i < n; i++) view.copyFrom(run, i);
  const { entries, keys } = encodeKeyRun(view);
  const all = Buffer.concat([entries, keys]);
  return new SortedKeys(n, (p, l) => all.subarray(p, p + l), 0, entries.length);
}
