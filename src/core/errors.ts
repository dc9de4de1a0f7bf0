/**
 * The coded error catalogue. Every error a user can meet has a code, a message that says
 * what is wrong, and a fix that says what to do. Codes are stable: scripts and docs refer
 * to them (docs/errors.md lists them all).
 */
export const ErrorCodes = {
  // Configuration and usage (exit 2)
  CONFIG_READ: 'TRB1001',
  CONFIG_SYNTAX: 'TRB1002',
  CONFIG_INVALID: 'TRB1003',
  CONFIG_ENV: 'TRB1004',
  CONFIG_SINK_TYPE: 'TRB1005',
  USAGE: 'TRB1006',
  CONFIG_URL: 'TRB1010',
  CONFIG_SECRET_FILE: 'TRB1011',
  CONFIG_SECRET_TWICE: 'TRB1012',
  SINK_CHECK: 'TRB1013',
  SNAPSHOT_TABLE_PIPELINE: 'TRB1014',
  /** `source.type` names no registered connector (src/runtime/source-registry.ts). */
  CONFIG_SOURCE_TYPE: 'TRB1015',
  /** `validate --check-source`: the source's preflight found problems (each listed with its own code). */
  SOURCE_CHECK: 'TRB1016',
  // Postgres source
  PG_WAL_LEVEL: 'TRB2001',
  PG_REPLICATION_PRIVILEGE: 'TRB2002',
  PG_SLOT_HEADROOM: 'TRB2003',
  PG_REPLICA_IDENTITY: 'TRB2004',
  PG_SLOT_LOST: 'TRB2005',
  PG_CONNECT: 'TRB2006',
  /** Unexpected pgoutput protocol data (a bug or an unsupported server). */
  PG_PROTOCOL: 'TRB2007',
  PG_TABLE_MISSING: 'TRB2008',
  /** The replication slot exists but was made with another output plugin than pgoutput. */
  PG_SLOT_PLUGIN: 'TRB2009',
  /** START_REPLICATION or the stream failed with a server error retrying cannot fix (a missing slot or publication, database). */
  PG_REPLICATION: 'TRB2010',
  /** A matched table has no replica identity: it is left out of the publication (warning). */
  PG_KEYLESS_TABLE: 'TRB2020',
  /** The source role lacks a privilege (preflight), or the server said "permission denied". */
  PG_PRIVILEGE: 'TRB2021',
  /** The publication is missing and `source.create_publication` is false. */
  PG_PUBLICATION: 'TRB2022',
  // MySQL/MariaDB source
  /** The binary log is off (log_bin=OFF, or SHOW MASTER STATUS / SHOW BINARY LOGS return nothing). */
  MYSQL_BINLOG_OFF: 'TRB2101',
  MYSQL_CONNECT: 'TRB2102',
  MYSQL_PURGED: 'TRB2103',
  MYSQL_SCHEMA_UNKNOWN: 'TRB2104',
  MYSQL_DECODE: 'TRB2105',
  MYSQL_TRUNCATED: 'TRB2106',
  MYSQL_CHECKSUM: 'TRB2107',
  /** binlog_format is not ROW. */
  MYSQL_BINLOG_FORMAT: 'TRB2108',
  /** binlog_row_image is not FULL. */
  MYSQL_ROW_IMAGE: 'TRB2109',
  /** binlog_row_metadata is missing or not FULL (warning). */
  MYSQL_ROW_METADATA: 'TRB2110',
  /** The server's own server_id is 0: it cannot serve replicas. */
  MYSQL_SERVER_ID_ZERO: 'TRB2111',
  /** `source.server_id` is the server's own, or another replica's. */
  MYSQL_SERVER_ID_TAKEN: 'TRB2112',
  /** binlog_checksum is neither NONE nor CRC32. */
  MYSQL_CHECKSUM_ALGORITHM: 'TRB2113',
  /** MySQL gtid_mode is not ON (warning). */
  MYSQL_GTID_MODE: 'TRB2114',
  /** Partial JSON updates (binlog_row_value_options=PARTIAL_JSON) without a full before image. */
  MYSQL_PARTIAL_JSON: 'TRB2115',
  /** The source user lacks REPLICATION SLAVE, REPLICATION CLIENT or SELECT. */
  MYSQL_PRIVILEGE: 'TRB2116',
  /** The server refused the binlog dump (error 1236) for a reason other than a purged file or a server_id clash. */
  MYSQL_DUMP_REFUSED: 'TRB2117',
  /** A start GTID set with tagged GTIDs, which COM_BINLOG_DUMP_GTID cannot carry. */
  MYSQL_GTID_TAGGED: 'TRB2118',
  /** The snapshot signal table (`source.signal_table`) cannot be created or written. */
  MYSQL_SIGNAL_TABLE: 'TRB2119',
  /** `tributary binlog decode`: a binlog file cannot be read. */
  MYSQL_BINLOG_FILE: 'TRB2120',
  // Source connections and positions, either source (src/runtime/source-link.ts)
  SOURCE_AUTH: 'TRB2200',
  SOURCE_GAVE_UP: 'TRB2201',
  /** A stored position (checkpoint) the source cannot read: another source type's, or edited by hand. */
  SOURCE_POSITION: 'TRB2202',
  // Sinks and runtime
  /** A sink rejected an event and `dead_letter.policy` is `stop`. */
  DEAD_LETTER_STOP: 'TRB3001',
  SINK_POISON: 'TRB3002',
  /** The sink's config does not fit its target or data: a missing table or index, columns, an invalid rendered name. */
  SINK_CONFIG: 'TRB3003',
  DEAD_LETTER: 'TRB3004',
  STATE_STORE: 'TRB3005',
  STATE_NOT_DURABLE: 'TRB3010',
  STATE_LOCKED: 'TRB3011',
  STATE_LEASE_LOST: 'TRB3012',
  SINK_FILE_NOT_OURS: 'TRB3013',
  SINK_STATE_NOT_JSON: 'TRB3014',
  PLUGIN_ZOD_MAJOR: 'TRB3015',
  VERSION_RANGE: 'TRB3016',
  /** The target cannot take writes, through no event's fault: unreachable, busy, locked, a refused login or grant. Retried. */
  SINK_TARGET: 'TRB3017',
  /** The target refused a statement (not the connection): retried `max_attempts` times, then bisected and dead-lettered. */
  SINK_REJECTED: 'TRB3018',
  /** A sink was used after close() (while the pipeline stops). */
  SINK_CLOSED: 'TRB3019',
  // Dead letters (docs/dead-letters.md)
  /** An event parked behind an earlier dead letter of the same key (per-key order); not an error of its own. */
  DLQ_HELD: 'TRB3030',
  /** A dead-letter id that the sink's store does not hold (retried or discarded already, or mistyped). */
  DLQ_UNKNOWN_ID: 'TRB3031',
  /** A dead-letter retry or discard needs the running process (it holds the pipeline's lock), which cannot be reached or is not running the pipeline. */
  DLQ_LIVE: 'TRB3032',
  /** A retry asked for a later dead letter of a key while an earlier one of that key stays parked. */
  DLQ_ORDER: 'TRB3033',
  /** The dead-letter store cannot be read (a damaged journal line in the middle, an unreadable Redis value). */
  DLQ_STORE: 'TRB3034',
  // Snapshots
  /** A snapshot request reached no running pipeline. */
  SNAPSHOT_NOT_RUNNING: 'TRB4001',
  /** A snapshot request names a table the pipeline does not capture (or not as db.table / schema.table). */
  SNAPSHOT_TABLE_UNKNOWN: 'TRB4002',
  /** A stored chunk boundary does not fit the table's key any more. */
  SNAPSHOT_BOUND: 'TRB4003',
  /** A table was dropped while it was being snapshotted. */
  SNAPSHOT_TABLE_GONE: 'TRB4004',
  /** `source.key_columns` names columns the table lacks, or nullable ones. */
  SNAPSHOT_KEY_COLUMNS: 'TRB4005',
  /** A table has no key to page by: no primary key or NOT NULL unique key, or its key holds NULLs. */
  SNAPSHOT_NO_KEY: 'TRB4006',
  /** A snapshot request while another snapshot of the pipeline is running. */
  SNAPSHOT_BUSY: 'TRB4007',
  /** A cancel, pause or resume request while no snapshot is running. */
  SNAPSHOT_NONE: 'TRB4008',
  /** A snapshot request to a pipeline whose source cannot snapshot. */
  SNAPSHOT_UNSUPPORTED: 'TRB4009',
  // The log
  LOG_CORRUPT: 'TRB5001',
  LOG_GAP: 'TRB5002',
  LOG_BEFORE_HISTORY: 'TRB5003',
  LOG_IO: 'TRB5004',
  LOG_POSITION: 'TRB5005',
  /** A rewind target outside the retained log (before its start, other than `earliest`), or a log with nothing committed. */
  LOG_TARGET: 'TRB5010',
  /** `log`, `state` or `rewind` on a pipeline whose stream is not the log (`stream: memory`). */
  LOG_NOT_ENABLED: 'TRB5011',
  /** No log in the pipeline's state directory yet. */
  LOG_MISSING: 'TRB5012',
  /** No pipeline or sink of that name (or several pipelines and none named). */
  LOG_UNKNOWN_NAME: 'TRB5013',
  /** The pipeline runs in another process, which did not take the rewind over HTTP. */
  LOG_REWIND_LIVE: 'TRB5014',
  /** `run --role source|all`: another process already writes this pipeline's log (its writer lock is held). */
  ROLE_WRITER_LOCKED: 'TRB5020',
  /** `run --role sinks|all`: a sink already runs in another process (its sink lock is held). */
  ROLE_SINK_LOCKED: 'TRB5021',
  /** `run --role source|sinks` on a pipeline whose stream is not the embedded log. */
  ROLE_NEEDS_LOG: 'TRB5022',
  /** `run --sink NAME` names no sink of the pipeline, or goes with `--role source`; or `--role` is unknown. */
  ROLE_USAGE: 'TRB5023',
  /** A sink fell off the log with `on_gap: rebuild`, but the compacted state does not reach back to where the log starts. */
  LOG_REBUILD_UNCOVERED: 'TRB5024',
  // The admin HTTP API
  HTTP_UNAUTHORIZED: 'TRB6001',
  HTTP_TOKEN_REQUIRED: 'TRB6002',
  SNAPSHOT_FILTER_UNSAFE: 'TRB6003',
  SNAPSHOT_FILTER_REJECTED: 'TRB6004',
  HTTP_BAD_REQUEST: 'TRB6005',
  CONSOLE_MISSING: 'TRB6020',
  /** A snapshot may not read a table or write its watermarks (a missing privilege). */
  SNAPSHOT_PRIVILEGE: 'TRB4010',
  // Metrics and monitoring
  /** A metric was updated with label names other than those it was defined (or first updated) with. */
  METRIC_LABELS: 'TRB6010',
  /** The source could not be asked what it holds back (retained WAL, binlog files); /status shows the error. */
  HELD_BACK_QUERY: 'TRB6011',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class: `code`, a message saying what is wrong, and `fix` saying what to do. */
export class TributaryError extends Error {
  readonly code: ErrorCode;
  readonly fix: string | undefined;
  /** False when retrying cannot help (bad config, missing privilege, poison event). */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, opts: { fix?: string; cause?: unknown; retryable?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TributaryError';
    this.code = code;
    this.fix = opts.fix;
    this.retryable = opts.retryable ?? false;
  }

  /** One line for a terminal: `TRB2001 wal_level is replica. Fix: ALTER SYSTEM ...`. */
  format(): string {
    return `${this.code} ${this.message}${this.fix ? `\n  fix: ${this.fix}` : ''}`;
  }
}

/** A configuration error: exit code 2. Carries file, line and field path when known. */
export class ConfigError extends TributaryError {
  constructor(code: ErrorCode, message: string, opts: { fix?: string; cause?: unknown } = {}) {
    super(code, message, opts);
    this.name = 'ConfigError';
  }
}

/**
 * Thrown by a sink for an event it can never accept (bad mapping, constraint violation).
 * The runtime sends such events to the dead-letter store at once, without retries.
 */
export class PoisonEventError extends TributaryError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(ErrorCodes.SINK_POISON, message, { ...opts, retryable: false });
    this.name = 'PoisonEventError';
  }
}

/** One line: the code and message without the fix (for log lines repeated per outage, and `/status`). */
export function errorSummary(err: unknown): string {
  if (err instanceof TributaryError) return `${err.code} ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export function errorMessage(err: unknown): string {
  if (err instanceof TributaryError) return err.format();
  if (err instanceof Error) return err.message;
  return String(err);
}
