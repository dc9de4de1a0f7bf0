import { ErrorCodes, PoisonEventError, TributaryError } from '../../src/sdk/index.js';

/**
 * Map a DuckDB error (a plain Error whose message starts with its class, e.g.
 * `Conversion Error: ...`) to what the runtime acts on:
 * - the value did not fit (conversion, constraint, invalid input, out of range): a
 *   `PoisonEventError`, so the runtime bisects the batch to the one event and dead-letters it;
 * - anything else (I/O, a lock held by another process, a catalog surprise): a retryable coded
 *   error with a fix; no event is to blame.
 */
export function classifyDuckError(err: unknown, what: string, sinkName: string): Error {
  if (err instanceof TributaryError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const first = msg.split('\n')[0]!;
  if (/^(Conversion|Constraint|Invalid Input|Out of Range|Mismatch Type) Error/.test(first)) {
    return new PoisonEventError(`duckdb sink ${sinkName}: the target rejected ${what}: ${first}`, { cause: err });
  }
  let fix = 'check the DuckDB file and the sink config; the batch is retried';
  if (/Could not set lock|Conflicting lock/i.test(msg)) fix = 'another process has the DuckDB file open for writing; stop it (DuckDB allows one writer per file)';
  else if (/^IO Error/.test(first)) fix = 'check that the directory of the DuckDB file exists, is writable and has free space';
  return new TributaryError(ErrorCodes.SINK_TARGET, `duckdb sink ${sinkName}: cannot write ${what}: ${first}`, { cause: err, fix, retryable: true });
}
