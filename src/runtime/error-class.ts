import { TributaryError } from '../core/errors.js';

/**
 * What a failure means for retrying. This is the one place that decides it, for both sources
 * (and for sink targets, through `isRetryableError`):
 *
 * - `transient`: the server is unreachable, restarting or shutting down, or the connection
 *   broke. Reconnecting on a new connection will work once it is back: retry with backoff
 *   and jitter, for ever unless `source.reconnect.max_elapsed` caps it.
 * - `auth`: the server refused the login (password or user). Retried slowly when the same
 *   login has worked before (a password rotation is not a reason to stop); a login that never
 *   worked is a configuration error (TRB2200).
 * - `config`: only a person can fix it (a bad URL, a missing database, privilege, setting or
 *   slot, a purged binlog, a coded error that says retrying cannot help). Fails fast.
 * - `unknown`: anything else (a bug, an unexpected server error). A pipeline that fails with
 *   it is restarted from its checkpoints with a growing backoff.
 */
export type ErrorClass = 'transient' | 'auth' | 'config' | 'unknown';

/** Codes (node system errors, Postgres SQLSTATEs, mysql2 and ioredis codes) of a lost or unreachable server. */
const TRANSIENT_CODES = new Set([
  // node: the connection was refused, reset, timed out, or the host/network is unreachable
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'EHOSTDOWN',
  'ENETUNREACH', 'ENETDOWN', 'ENETRESET', 'ECONNABORTED',
  // Postgres: admin shutdown, crash shutdown, cannot connect now ("the database system is
  // starting up"), idle-session timeout, too many connections, connection exceptions (class 08)
  '57P01', '57P02', '57P03', '57P05', '53300', '08000', '08001', '08003', '08004', '08006',
  // Postgres 55006 (object in use): "replication slot … is active for PID n", the walsender of
  // a connection that just died (a SIGKILLed process's) still holds the slot until it notices.
  // As an unknown error it restarted the whole pipeline with a backoff that doubles from 1 s,
  // which after a restart under load could stall a run for tens of seconds.
  '55006',
  // mysql2
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN', 'ER_CONNECTION_KILLED',
  'ER_NET_READ_ERROR', 'ER_NET_READ_INTERRUPTED', 'ER_NET_ERROR_ON_WRITE', 'ER_NET_WRITE_INTERRUPTED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

/**
 * MySQL/MariaDB error numbers of a lost or unreachable server: client 2002/2003 (cannot
 * connect), 2006/2013 (server gone, connection lost), 2055; server 1040 (too many
 * connections), 1053 (shutdown in progress), 1152-1161 (network read/write errors), 1927
 * (connection killed, MariaDB), 4031 (idle timeout, MySQL 8).
 */
const TRANSIENT_ERRNOS = new Set([2002, 2003, 2006, 2013, 2055, 1040, 1053, 1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, 1927, 4031]);

/** Postgres 28P01 (password refused), 28000 (no such role, pg_hba rejected); MySQL 1045/1698 (access denied). */
const AUTH_CODES = new Set(['28P01', '28000', 'ER_ACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR']);
const AUTH_ERRNOS = new Set([1045, 1698]);

/**
 * Errors only a person can fix: Postgres 3D000 (no such database), 42501 (privilege), 42704
 * (no such slot or publication), 55000 (slot invalidated); MySQL 1044 (no access to the
 * database), 1049 (no such database), 1142 (table privilege), 1227 (privilege); a malformed URL.
 */
const CONFIG_CODES = new Set(['3D000', '42501', '42704', '55000', 'ER_DBACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR', 'ER_TABLEACCESS_DENIED_ERROR', 'ER_SPECIFIC_ACCESS_DENIED_ERROR', 'ERR_INVALID_URL']);
const CONFIG_ERRNOS = new Set([1044, 1049, 1142, 1227]);

/**
 * Messages of a lost connection that carry no code: pg's "Connection terminated
 * (unexpectedly)" and connect timeout, a server that is starting or stopping, mysql2's use of
 * a closed connection, and the classic MySQL client texts.
 */
const TRANSIENT_MESSAGE =
  /the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)|Connection terminated|Connection (is )?closed|closed state|socket hang up|^timeout expired$|server has gone away|Lost connection to (MySQL |MariaDB )?server|Server shutdown in progress|read ECONNRESET|connect ECONNREFUSED/i;

/** The class of `err`'s own code, errno or message, or null when it says nothing known. */
function ownClass(e: { code?: unknown; errno?: unknown; message?: unknown }): ErrorClass | null {
  const code = typeof e.code === 'string' ? e.code : undefined;
  // node system errors carry a negative errno; server errno values are positive.
  const errno = typeof e.errno === 'number' && e.errno > 0 ? e.errno : undefined;
  if ((code && AUTH_CODES.has(code)) || (errno && AUTH_ERRNOS.has(errno))) return 'auth';
  if ((code && CONFIG_CODES.has(code)) || (errno && CONFIG_ERRNOS.has(errno))) return 'config';
  if ((code && TRANSIENT_CODES.has(code)) || (errno && TRANSIENT_ERRNOS.has(errno))) return 'transient';
  if (typeof e.message === 'string' && TRANSIENT_MESSAGE.test(e.message)) return 'transient';
  return null;
}

/**
 * Classifies a failure. A coded error that says retrying cannot help (`retryable: false`) is
 * final whatever it wraps. Otherwise the most specific thing known wins: the error's own code,
 * errno or message, then its `cause` chain (a coded wrapper around a refused password is an
 * auth failure), then `retryable: true`.
 */
export function classifyError(err: unknown, depth = 0): ErrorClass {
  if (err === null || typeof err !== 'object' || depth > 8) return 'unknown';
  if (err instanceof TributaryError && !err.retryable) return 'config';
  const own = ownClass(err as object);
  if (own) return own;
  // net.connect to a name with several addresses fails with one error per address.
  const inner = err instanceof AggregateError ? err.errors : [];
  const cause = (err as { cause?: unknown }).cause;
  for (const c of cause === undefined ? inner : [cause, ...inner]) {
    const k = classifyError(c, depth + 1);
    if (k !== 'unknown') return k;
  }
  return (err as { retryable?: unknown }).retryable === true ? 'transient' : 'unknown';
}

/**
 * An error that says the target or source is unreachable rather than that the data is bad:
 * worth retrying on a new connection for as long as it takes.
 */
export function isRetryableError(err: unknown): boolean {
  return classifyError(err) === 'transient';
}
