/**
 * The coded error catalogue. Every error a user can meet has a code, a message that says
 * what is wrong, and a fix that says what to do. Codes are stable: scripts and docs refer
 * to them (docs/errors.md lists them all).
 */
export const ErrorCodes = {
  // Configuration (exit 2)
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
  // Source preflight and connection
  PG_WAL_LEVEL: 'TRB2001',
  PG_REPLICATION_PRIVILEGE: 'TRB2002',
  PG_SLOT_HEADROOM: 'TRB2003',
  PG_REPLICA_IDENTITY: 'TRB2004',
  PG_SLOT_LOST: 'TRB2005',
  PG_CONNECT: 'TRB2006',
  PG_PROTOCOL: 'TRB2007',
  PG_TABLE_MISSING: 'TRB2008',
  /** A matched table has no replica identity: it is left out of the publication (warning). */
  PG_KEYLESS_TABLE: 'TRB2020',
  /** The source role lacks a privilege (preflight), or the server said "permission denied". */
  PG_PRIVILEGE: 'TRB2021',
  /** The publication is missing and `source.create_publication` is false. */
  PG_PUBLICATION: 'TRB2022',
  MYSQL_BINLOG: 'TRB2101',
  MYSQL_CONNECT: 'TRB2102',
  MYSQL_PURGED: 'TRB2103',
  MYSQL_SCHEMA_UNKNOWN: 'TRB2104',
  MYSQL_DECODE: 'TRB2105',
  MYSQL_TRUNCATED: 'TRB2106',
  MYSQL_CHECKSUM: 'TRB2107',
  // Source connections, either source (src/runtime/source-link.ts)
  SOURCE_AUTH: 'TRB2200',
  SOURCE_GAVE_UP: 'TRB2201',
  // Sinks and runtime
  SINK_WRITE: 'TRB3001',
  SINK_POISON: 'TRB3002',
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
  SNAPSHOT: 'TRB4001',
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
  // The admin HTTP API
  HTTP_UNAUTHORIZED: 'TRB6001',
  HTTP_TOKEN_REQUIRED: 'TRB6002',
  SNAPSHOT_FILTER_UNSAFE: 'TRB6003',
  SNAPSHOT_FILTER_REJECTED: 'TRB6004',
  HTTP_BAD_REQUEST: 'TRB6005',
  /** A snapshot may not read a table or write its watermarks (a missing privilege). */
  SNAPSHOT_PRIVILEGE: 'TRB4010',
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
