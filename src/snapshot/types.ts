import type { ChangeEvent, JsonValue, Row, SerializedChangeEvent } from '../core/event.js';
import { JsonBytes } from '../core/json-bytes.js';

/** A snapshot row's `key`: its key columns, or null when the table has none (ctid chunks). */
export function snapshotKey(table: SnapshotTable, row: Row): Row | null {
  if (!table.key.length) return null;
  const key: Row = {};
  for (const k of table.key) key[k] = row[k] ?? null;
  return key;
}

/**
 * The reconciliation key of a row image: what the coordinator notes for every streamed change
 * inside a chunk window and looks up for every snapshot row. For a keyed table it is the JSON
 * of each key value followed by a NUL (JSON text never holds a raw NUL, so the parts split
 * back apart); for a key-less (ctid) table it is the JSON of the whole row. Readers build the
 * same string for their rows without row objects (see {@link ChunkRows}).
 */
export function keyString(table: SnapshotTable, row: Row | null): string | null {
  if (!row) return null;
  if (!table.key.length) return JSON.stringify(row);
  let s = '';
  for (const k of table.key) s += JSON.stringify(row[k] ?? null) + '\u0000';
  return s;
}

/**
 * One chunk's rows as a reader hands them over: already serialized, because every row goes
 * into the stream as JSON and building row objects only to stringify them again was most of
 * a snapshot's cost. `rows[i]` is row i's `after` image as JSON text (equal in meaning to
 * `JSON.stringify` of its decoded object; for a key-less table exactly that, since the row
 * is its own key); `keys[i]` is its {@link keyString}. The two arrays are parallel.
 */
export interface ChunkRows {
  rows: string[];
  keys: string[];
  /** The rows as UTF-8 bytes instead of `rows` (left empty then): see {@link ByteRows}. */
  bytes?: ByteRows;
}

/**
 * A {@link RowSink} that keeps each row's JSON as bytes, in arena slabs (json-bytes.ts), and
 * its key as a string. The coordinator's own readers use it: the envelope is then written
 * from these bytes straight into bytes (no row string, no concatenation to flatten, no
 * encoding again in a jsonl sink), and a whole chunk costs the GC almost nothing.
 */
export class ByteRows implements RowSink {
  private readonly w = new JsonBytes(256 * 1024, true);
  /** Row i's JSON is `slabs[i][starts[i], ends[i])`. */
  readonly slabs: Buffer[] = [];
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly keys: string[] = [];

  bytes(buf: Buffer, s: number, rowEnd: number, keyEnd: number): void {
    const w = this.w;
    w.raw(buf, s, rowEnd);
    this.keep();
    this.keys.push(buf.toString('utf8', rowEnd, keyEnd));
  }

  strings(row: string, key: string): void {
    this.w.text(row);
    this.keep();
    this.keys.push(key);
  }

  private keep(): void {
    const w = this.w;
    this.slabs.push(w.buf);
    this.starts.push(w.mark);
    this.ends.push(w.n);
    w.seal();
  }

  /** The rows as a {@link ChunkRows}. */
  get chunk(): ChunkRows {
    return { rows: [], keys: this.keys, bytes: this };
  }
}

/** No rows (a truncate inside the window makes the whole chunk stale). */
export function emptyChunk(): ChunkRows {
  return { rows: [], keys: [] };
}

/**
 * How a table is cut into chunks. `pk`/`unique`/`configured`: keyset pagination on those
 * columns (row-value comparison for composite keys). `ctid`: Postgres physical block ranges,
 * for tables with no key at all.
 */
export type ChunkKeyKind = 'pk' | 'unique' | 'configured' | 'ctid';

/** A table a snapshot can read. */
export interface SnapshotTable {
  /** `schema.table` or `db.table`. */
  name: string;
  /** Key columns used for chunking and for reconciling with the stream. */
  key: string[];
  keyKind: ChunkKeyKind;
  /** SQL types of the key columns, to cast boundary values back (persisted with the plan). */
  keyTypes?: string[];
  /** Estimated rows (statistics), for progress only; null when the database has none (a table never ANALYZEd). */
  estimate: number | null;
}

/**
 * One chunk: rows with key in (lo, hi] (lo exclusive, hi inclusive; null = unbounded).
 * For ctid chunks, lo/hi are `[block]` numbers and the range is [lo, hi).
 */
export interface ChunkBounds {
  lo: JsonValue[] | null;
  hi: JsonValue[] | null;
}

/** The chunks that ascending boundary keys cut a table into: (-∞, b0], (b0, b1], …, (bn, ∞). */
export function chunksBetween(bounds: JsonValue[][]): ChunkBounds[] {
  const chunks: ChunkBounds[] = [];
  let lo: JsonValue[] | null = null;
  for (const b of bounds) {
    chunks.push({ lo, hi: b });
    lo = b;
  }
  chunks.push({ lo, hi: null });
  return chunks;
}

/** What a source implements so the engine can snapshot it (the DBLog algorithm, see docs/snapshots.md). */
export interface SnapshotSupport {
  /** Captured tables (optionally only `only`), with their chunking key. Throws a coded error when a table has no usable key. */
  tables(only?: string[]): Promise<SnapshotTable[]>;
  /**
   * Every chunk of a table up front: every `chunkRows`-th key, numbered on the server in one
   * pass over the key (or, for `ctid` tables, block ranges from the statistics). The engine
   * uses it only for `ctid` tables; keyed tables are cut as they are read ({@link ChunkPlanner}).
   */
  plan(table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]>;
  /** Open a planner: one connection that finds keyed chunks' bounds one at a time. */
  planner(): Promise<ChunkPlanner>;
  /**
   * Vet a snapshot filter (`--where`) before a snapshot with it is accepted: refuse text that
   * could be more than one condition (`assertSafeFilter`, TRB6003), then have the database
   * plan `SELECT … WHERE (filter)` with EXPLAIN inside a READ ONLY transaction, so a syntax
   * error or an unknown column is answered at once with the database's message (TRB6004)
   * instead of failing every chunk read.
   */
  checkFilter(table: SnapshotTable, where: string): Promise<void>;
  /** Open a reader: one connection, used by one worker for its chunks and watermarks. */
  reader(): Promise<SnapshotReader>;
}

/**
 * Cuts a keyed table into chunks lazily, each bound found by a short index probe when it is
 * needed, instead of numbering every key before the first chunk is read.
 */
export interface ChunkPlanner {
  /**
   * The upper bound of the chunk that starts after `lo` (null: at the table's start): the
   * `chunkRows`-th key after `lo`, or null when at most `chunkRows` rows (matching `where`)
   * remain, so the chunk runs to the end of the table and is its last. A chunk therefore
   * never ends exactly at the last row with an empty chunk behind it.
   */
  next(table: SnapshotTable, lo: JsonValue[] | null, chunkRows: number, where: string | null): Promise<JsonValue[] | null>;
  close(): Promise<void>;
}

/**
 * Where a reader appends a chunk's rows: row JSON text and key string (see {@link ChunkRows}),
 * either as UTF-8 bytes (readers that write JSON from wire bytes) or as strings.
 */
export interface RowSink {
  /** A row whose JSON text is `buf[s, rowEnd)` and whose key string is `buf[rowEnd, keyEnd)`, UTF-8. */
  bytes(buf: Buffer, s: number, rowEnd: number, keyEnd: number): void;
  /** A row as strings. */
  strings(row: string, key: string): void;
}

/** A {@link RowSink} that collects {@link ChunkRows} (strings). */
export class StringRows implements RowSink {
  readonly out: ChunkRows = { rows: [], keys: [] };
  bytes(buf: Buffer, s: number, rowEnd: number, keyEnd: number): void {
    this.out.rows.push(buf.toString('utf8', s, rowEnd));
    this.out.keys.push(buf.toString('utf8', rowEnd, keyEnd));
  }
  strings(row: string, key: string): void {
    this.out.rows.push(row);
    this.out.keys.push(key);
  }
}

export interface SnapshotReader {
  /** Write a watermark into the change log: it comes back through the stream as a `watermark` item. */
  watermark(id: string, mark: 'low' | 'high'): Promise<void>;
  /** Read one chunk's rows, in the lossless JSON form, serialized (see {@link ChunkRows}). */
  read(table: SnapshotTable, chunk: ChunkBounds, where: string | null): Promise<ChunkRows>;
  /** As {@link read}, appending the rows to `out` (a worker thread packs them as bytes). */
  readInto?(table: SnapshotTable, chunk: ChunkBounds, where: string | null, out: RowSink): Promise<void>;
  close(): Promise<void>;
}

/** `source.snapshot` of a snapshot row. */
export type SnapshotFlag = 'true' | 'last' | 'incremental';

/** Where the high watermark sits in the log: Postgres `lsn`; MySQL `file`/`pos`. */
export interface WatermarkAt {
  lsn?: string;
  file?: string;
  pos?: number;
}

/** Serializes the envelopes of one chunk's rows (`row` and `key` as in {@link ChunkRows}). */
export interface ChunkSerializer {
  (row: string, key: string, snapshot: SnapshotFlag): SerializedChangeEvent;
  /** The same from row `i` of a {@link ByteRows}: the envelope is made as bytes. */
  bytes(rows: ByteRows, i: number, snapshot: SnapshotFlag): SerializedChangeEvent;
}

/**
 * Builds the envelopes of snapshot rows (the source knows its `source` block). Called as a
 * function it builds the object envelope of one row: the reference form, which the
 * serialized form must equal in meaning and key order. `chunk` gives the serializer the
 * coordinator uses: everything but the row, its key and the flag is the same for a whole
 * chunk, so each envelope is a few string concatenations.
 */
export interface SnapshotEventBuilder {
  (table: SnapshotTable, row: Row, snapshot: SnapshotFlag, at: WatermarkAt, now?: number): ChangeEvent;
  chunk(table: SnapshotTable, at: WatermarkAt, now: number): ChunkSerializer;
}

/** Persisted progress of one snapshot (`state.put(pipeline, 'snapshot', …)`). */
export interface SnapshotState {
  id: string;
  kind: 'initial' | 'incremental';
  /**
   * `failed`: an error retrying cannot fix by itself stops it (see `error`); it is still tried
   * again with backoff, and resumed after a restart, until it is done or cancelled.
   */
  status: 'running' | 'paused' | 'done' | 'cancelled' | 'failed';
  startedAt: number;
  finishedAt?: number;
  /** While `failed`: the coded error, and since when (epoch ms). */
  error?: { code: string; message: string; fix?: string; since: number };
  tables: SnapshotTableState[];
  /**
   * A targeted snapshot: its rows are for this sink alone (one that fell off the log where
   * the compacted state does not cover it); the other sinks skip them.
   */
  target?: string;
}

export interface SnapshotTableState {
  table: SnapshotTable;
  where: string | null;
  /**
   * The chunks found so far, in key order: a keyed table is cut as it is read, so this is a
   * prefix of the table's chunks while `open` is true.
   */
  chunks: ChunkBounds[];
  /**
   * True while chunks after the last one remain to be found (the next starts at the last
   * one's `hi`). Absent in states stored before chunks were cut lazily: those lists are
   * complete.
   */
  open?: boolean;
  /** done[i] is true once chunk i is durable in every sink. */
  done: boolean[];
  /** Rows durable so far. */
  rows: number;
}
