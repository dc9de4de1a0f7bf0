import type { Logger } from 'pino';
import type { ChangeEvent } from './event.js';
import type { ErrorCode } from './errors.js';
import type { StateStore } from '../state/store.js';
import type { SnapshotEventBuilder, SnapshotSupport } from '../snapshot/types.js';
import type { TxnSnapshot } from '../snapshot/visibility.js';

export type { SnapshotEventBuilder, SnapshotSupport };

/**
 * A source position as a value object. The engine stores only `serialize()` strings; the
 * source alone knows how to parse and compare them. Comparison is numeric, never textual.
 */
export interface Position {
  /** A stable string form, parsed back by the source's `parsePosition`. */
  serialize(): string;
  /** Negative, zero or positive, like a sort comparator. Numeric, never by string. */
  compare(other: Position): number;
  /**
   * A fixed-width string that sorts like the position: two fences compare with plain string
   * comparison (Lua, SQL), because every part is zero-padded hex of a fixed width.
   */
  fence(): string;
  /**
   * A non-negative integer that orders transaction positions exactly, for targets that need
   * a numeric version (`SinkEvent.version` is `ordinal << 32 | index`). Postgres: the LSN
   * (up to 2^64); MySQL: file sequence * 2^30 + offset.
   */
  ordinal(): bigint;
}

/** A transaction as the log records it: its position and where the source resumes after it (serialized). */
export interface TxnBounds {
  txn: string;
  resume: string;
}

/**
 * A position a user names (`tributary rewind --to`, `log read --from`) in the source's own
 * form, as a test on the log's transactions in commit order: false for the transactions the
 * position covers, true from the first one it does not. Monotone: once true, true for every
 * later transaction (the log finds the first one by skipping whole segments).
 */
export type PositionTarget = (t: TxnBounds) => boolean;

/** One item a source hands to the runtime. */
export type SourceItem =
  | {
      kind: 'event';
      event: ChangeEvent;
      /** Position of the transaction this event belongs to (same for all its events). */
      txn: Position;
      /** Index of the event inside its transaction, from 0. */
      idx: number;
      /**
       * The transaction's id in the database, where snapshot reads can tell whether they saw
       * it (Postgres: the 32-bit xid). Snapshots use it to reconcile chunks with changes that
       * precede the low watermark but were not yet visible to the chunk's read (visibility.ts).
       */
      xid?: number;
    }
  | {
      /**
       * A snapshot watermark the engine wrote into the log (DBLog): the low one opens a
       * chunk's window, the high one closes it. It sits inside a transaction of its own.
       */
      kind: 'watermark';
      id: string;
      mark: 'low' | 'high';
      txn: Position;
      idx: number;
      /** Where it sits in the log, for the `source` block of snapshot rows. */
      at: { lsn?: string; file?: string; pos?: number };
      /**
       * Which transactions the database showed as finished before the watermark committed
       * (Postgres: a low watermark carries a snapshot taken in its own transaction, a high one
       * the snapshot the chunk's rows were read in). Absent where the source has none.
       */
      visibility?: TxnSnapshot;
    }
  | {
      kind: 'commit';
      /** The transaction's position, equal to `txn` on its events. */
      txn: Position;
      /** Where to resume so that this transaction is not received again. */
      resume: Position;
    };

/**
 * What a source writes into. `push` returns false when the stream is over its byte budget:
 * the source must then stop reading its socket until `drained()` resolves.
 */
export interface SourceOutput {
  push(item: SourceItem): boolean;
  drained(): Promise<void>;
}

/** A problem found by preflight, with the statement or setting that fixes it. */
export interface PreflightProblem {
  /** The problem's own code (each cause has one; the run refuses with the first error's). */
  code: ErrorCode;
  message: string;
  fix: string;
  /** Warnings do not stop a pipeline; errors do. */
  severity: 'error' | 'warning';
}

/**
 * The engine's side of a source's connection (src/runtime/source-link.ts): the one place
 * that classifies connection errors, paces reconnects, logs an outage once when it begins and
 * once when it ends, and keeps `tributary_source_up`. A source calls `lost` when its
 * connection fails and reconnects on a new connection once it resolves; it calls `up` when a
 * connection works (data or a keepalive arrived), which ends the outage.
 */
export interface SourceLink {
  /** A connection works. Cheap: call it on every message if that is simplest. */
  up(): void;
  /**
   * A connection failed with `err`. Resolves after the backoff when reconnecting can help
   * (the server is unreachable, restarting, or refused a login that worked before). Rejects
   * when it cannot: with `err` itself (bad config, or an unknown error, which makes the
   * pipeline restart from its checkpoints), or with a coded error (TRB2200, TRB2201).
   */
  lost(err: unknown): Promise<void>;
}

/**
 * What a source makes its database keep for this pipeline, as `/status` shows it (`held_back`)
 * and the `tributary_source_retained_*` metrics publish it. Postgres fills `wal_bytes`;
 * MySQL/MariaDB the binlog fields.
 */
export interface HeldBack {
  /** Postgres: WAL bytes the slot retains, `pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)`. */
  wal_bytes?: number;
  /** Postgres: the slot's `wal_status` (`reserved`, `extended`, `unreserved`, `lost`). */
  wal_status?: string;
  /** Postgres: the slot does not exist (not created yet, or dropped). */
  slot_missing?: boolean;
  /** MySQL: binlog files at or after {@link oldest_binlog_file} still on the server. */
  binlog_files?: number;
  /** MySQL: their total size in bytes (`SHOW BINARY LOGS` File_size). */
  binlog_bytes?: number;
  /** MySQL: the oldest file a resume needs (that of the acknowledged position). */
  oldest_binlog_file?: string;
  /** MySQL: that file is no longer listed: the server purged it. */
  oldest_binlog_purged?: boolean;
}

/** Context handed to sources. */
export interface SourceContext {
  pipeline: string;
  logger: Logger;
  /** Aborted when the pipeline stops. */
  signal: AbortSignal;
  metrics: { inc(name: string, value?: number, labels?: Record<string, string>): void; set(name: string, value: number, labels?: Record<string, string>): void };
  /** Durable state (snapshot progress, schema history). */
  store: StateStore;
  /**
   * Snapshot tables (`schema.table`) that joined the capture while the stream ran or resumed:
   * their rows from before they joined were never streamed. Resolves once a snapshot that
   * covers them has begun and its plan is stored (it may wait for a running snapshot to
   * finish), or at once when the pipeline's snapshot mode is `never`. Absent outside a
   * running pipeline (`validate`).
   */
  requestSnapshot?(tables: string[]): Promise<void>;
  /** Reconnect policy and outage bookkeeping; see {@link SourceLink}. */
  link: SourceLink;
}

/**
 * A change source, as the pipeline runs it. Connectors do not implement this themselves: they
 * supply a `SourceDriver` and the one source runtime (`SourceRuntime`, source-sdk.ts) is the
 * `Source`. `run` streams until the signal aborts or a fatal error occurs; when a connection
 * fails it asks `ctx.link.lost(err)` whether and when to reconnect, on a new connection. Failures before `run` (preflight, prepare) are thrown: the engine retries the
 * whole start with a new source. `acknowledge` tells it that every consumer
 * holds all data up to that resume position durably, so the database may discard it.
 */
export interface Source {
  preflight(): Promise<PreflightProblem[]>;
  parsePosition(s: string): Position;
  /**
   * Create what streaming needs (publication, slot) so that every change committed after
   * this resolves is captured. Called once, after preflight, before `run`.
   */
  prepare?(from: Position | null): Promise<{ positionLost?: boolean } | void>;
  /** Snapshot support (chunked reads and watermarks), when the source has it. */
  snapshots?(): SnapshotSupport;
  /** The envelope of a snapshot row. */
  snapshotEvent?: SnapshotEventBuilder;
  run(from: Position | null, out: SourceOutput): Promise<void>;
  acknowledge(resume: Position): void;
  /**
   * What the database keeps for this pipeline (see {@link HeldBack}). A short catalog query on
   * a control connection, never on the replication connection; the runtime polls it every
   * ~15 s off the hot path (src/runtime/held-back.ts). Optional: a source without it shows no
   * `held_back` figures.
   */
  heldBack?(): Promise<HeldBack>;
  close(): Promise<void>;
}
