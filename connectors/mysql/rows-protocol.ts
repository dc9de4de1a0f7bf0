/**
 * The messages between the main thread (rows-offload.ts) and the rows decode worker
 * (rows-worker.ts). Bulk data travels as transferred ArrayBuffers, never as arrays of
 * strings: structured-cloning a string costs about as much as building it.
 */
import type { TableSchemaHint } from './row-decoder.js';

/** A table's decoder, sent once per TABLE_MAP change: the worker builds the same RowDecoder. */
export interface TableDesc {
  /** Offload-wide id the events refer to (not the binlog table id, which is reused). */
  id: number;
  tableId: number;
  /** TABLE_MAP body from the db name on (TableMap.signature): re-parsed by the worker. */
  sig: Uint8Array;
  /** The map came from MariaDB (TableMap.mariadb): the signature is parsed the same way. */
  mariadb: boolean;
  names: string[];
  hint: TableSchemaHint | undefined;
}

/** Per-event fields of {@link BatchMessage.meta}, in this order. */
export const enum M {
  DESC, EV_OFF, EV_LEN, BODY_POS, END, TYPE, START, POS, TS, SERVER_ID, NOW, FILE, GTID,
  /** Fields per event. */
  SIZE,
}

/** Main → worker: a run of rows events to decode, in binlog order. */
export interface BatchMessage {
  /** Connection generation and batch number: the result carries them back. */
  gen: number;
  seq: number;
  /** Forget every table first (main evicts after many TABLE_MAP changes). */
  reset: boolean;
  /** Tables first used by this batch. */
  descs: TableDesc[];
  /** File names and GTIDs the events index (M.FILE, M.GTID; -1 for a null GTID). */
  strs: string[];
  /** `count` × M.SIZE numbers (Float64: timestamps in ms exceed 2^32). */
  meta: ArrayBuffer;
  count: number;
  /** The events, each whole (header to CRC trailer), at M.EV_OFF. */
  evs: ArrayBuffer;
  /**
   * Offset buffers of earlier results, handed back for reuse (fresh ones per batch cost page
   * faults and, as external memory, extra GCs). Not the envelopes: their events keep them.
   */
  free: ArrayBuffer[];
}

/** An error thrown while decoding, carried over field by field (TributaryError when `code` is set). */
export interface WorkerError {
  name: string;
  message: string;
  code?: string;
  fix?: string;
  retryable?: boolean;
  stack?: string;
}

/** Worker → main: the envelopes of a batch. */
export interface ResultMessage {
  gen: number;
  seq: number;
  /** The UTF-8 envelopes, back to back; row r spans [ends[r-1] (or 0), ends[r]). */
  out: ArrayBuffer;
  /** Uint32 end offsets, one per row, over the whole batch. */
  ends: ArrayBuffer;
  /** Uint32 row count per event. With `error`, the failing event's count is the rows done before it failed. */
  counts: ArrayBuffer;
  /** The batch's `evs` and `meta` buffers, handed back for reuse. */
  evs: ArrayBuffer;
  meta: ArrayBuffer;
  /** Set when event `errorAt` failed; the events after it were not decoded. */
  error?: WorkerError;
  errorAt?: number;
}
