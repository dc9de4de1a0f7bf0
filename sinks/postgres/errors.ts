import { ErrorCodes, PoisonEventError, TributaryError } from '../../src/sdk/index.js';

/** SQLSTATEs that mean "this data can never go in", whatever we retry. */
function isDataError(code: string): boolean {
  return (
    code.startsWith('22') || // data exception: bad text representation, out of range, NUL byte, bad JSON…
    code.startsWith('23') || // integrity: NOT NULL, CHECK, foreign key, unique
    code === '42804' || // datatype mismatch
    code === '42846' || // cannot coerce
    code === '54000' // program limit: e.g. an index row larger than a btree page
  );
}

/** SQLSTATEs worth retrying on the same target as-is (contention, cancel, resource pressure). */
function isTransient(code: string): boolean {
  return code === '40001' || code === '40P01' || code === '55P03' || code === '57014' || code.startsWith('53') || code.startsWith('08') || code.startsWith('57P');
}

/**
 * Map a `pg` error to what the runtime acts on:
 * - data errors become `PoisonEventError`: the runtime bisects the batch down to the one event
 *   the target rejects and dead-letters it, and the rest of the batch is written;
 * - connection errors are returned unchanged (the runtime recognizes them and retries on a new
 *   connection for as long as it takes);
 * - target-side setup problems (permissions, a table without the key as PRIMARY KEY, a missing
 *   database) are retryable coded errors with a fix: no event is to blame, so nothing is
 *   dead-lettered while an operator fixes the target.
 */
export function classifyPgError(err: unknown, what: string, sinkName: string): Error {
  if (err instanceof TributaryError) return err;
  const e = err as { code?: unknown; message?: string } | null;
  const code = typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  const msg = e?.message ?? String(err);
  if (!code) return err as Error; // socket-level: ECONNREFUSED, "Connection terminated", …
  if (isDataError(code)) {
    return new PoisonEventError(`postgres sink ${sinkName}: the target rejected ${what}: ${msg} (SQLSTATE ${code})`, { cause: err });
  }
  if (isTransient(code)) {
    return new TributaryError(ErrorCodes.SINK_TARGET, `postgres sink ${sinkName}: transient error while writing ${what}: ${msg} (SQLSTATE ${code})`, { cause: err, retryable: true });
  }
  let fix = 'check the target database and the sink config; the batch is retried';
  if (code === '42P10') fix = 'the target table needs a PRIMARY KEY (or unique index) on the source key columns; add it or drop the table so the sink recreates it';
  else if (code === '42501') fix = 'grant the sink user CREATE on the target schema and INSERT/UPDATE/DELETE/TRUNCATE on its tables';
  else if (code.startsWith('28')) fix = 'check the user and password in the sink url';
  else if (code === '3D000') fix = 'create the target database named in the sink url';
  return new TributaryError(ErrorCodes.SINK_TARGET, `postgres sink ${sinkName}: cannot write ${what}: ${msg} (SQLSTATE ${code})`, { cause: err, fix, retryable: true });
}
