import type { ChangeEvent, JsonValue, Row } from '../core/event.js';

/** A snapshot row's `key`: its key columns, or null when the table has none (ctid chunks). */
export function snapshotKey(table: SnapshotTable, row: Row): Row | null {
  if (!table.key.length) return null;
  const key: Row = {};
  for (const k of table.key) key[k] = row[k] ?? null;
  return key;
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
  /** Estimated rows (statistics), for progress only. */
  estimate: number;
}

/**
 * One chunk: rows with key in (lo, hi] (lo exclusive, hi inclusive; null = unbounded).
 * For ctid chunks, lo/hi are `[block]` numbers and the range is [lo, hi).
 */
export interface ChunkBounds {
  lo: JsonValue[] | null;
  hi: JsonValue[] | null;
}

/** What a source implements so the engine can snapshot it (the DBLog algorithm, see docs/snapshots.md). */
export interface SnapshotSupport {
  /** Captured tables (optionally only `only`), with their chunking key. Throws a coded error when a table has no usable key. */
  tables(only?: string[]): Promise<SnapshotTable[]>;
  /** Chunk boundaries: every `chunkRows`-th key, computed on the server. */
  plan(table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]>;
  /** Open a reader: one connection, used by one worker for its chunks and watermarks. */
  reader(): Promise<SnapshotReader>;
}

export interface SnapshotReader {
  /** Write a watermark into the change log: it comes back through the stream as a `watermark` item. */
  watermark(id: string, mark: 'low' | 'high'): Promise<void>;
  /** Read one chunk's rows, decoded to the lossless JSON form. */
  read(table: SnapshotTable, chunk: ChunkBounds, where: string | null): Promise<Row[]>;
  close(): Promise<void>;
}

/** Build the envelope of a snapshot row (the source knows its `source` block). */
export type SnapshotEventBuilder = (table: SnapshotTable, row: Row, snapshot: 'true' | 'last' | 'incremental', at: { lsn?: string; file?: string; pos?: number }) => ChangeEvent;

/** Persisted progress of one snapshot (`state.put(pipeline, 'snapshot', …)`). */
export interface SnapshotState {
  id: string;
  kind: 'initial' | 'incremental';
  status: 'running' | 'paused' | 'done' | 'cancelled';
  startedAt: number;
  finishedAt?: number;
  tables: SnapshotTableState[];
}

export interface SnapshotTableState {
  table: SnapshotTable;
  where: string | null;
  chunks: ChunkBounds[];
  /** done[i] is true once chunk i is durable in every sink. */
  done: boolean[];
  /** Rows durable so far. */
  rows: number;
}
