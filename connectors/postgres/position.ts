import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { Position, PositionTarget } from '../../src/core/source.js';

/**
 * A Postgres WAL position (LSN), held as a bigint and compared numerically. Serialized in
 * Postgres' own `XXXXXXXX/XXXXXXXX` form.
 *
 * Used two ways: a transaction's position is its commit LSN (the start of the commit
 * record, `commit_lsn` in pgoutput), and a resume position is the end of that commit
 * record (`end_lsn`): START_REPLICATION at `end_lsn` skips exactly the transactions at or
 * before it.
 */
export class PgPosition implements Position {
  static readonly ZERO = new PgPosition(0n);

  constructor(readonly lsn: bigint) {}

  static parse(s: string): PgPosition {
    const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(s.trim());
    if (!m) {
      throw new TributaryError(ErrorCodes.SOURCE_POSITION, `not a Postgres LSN: "${s}" (expected the form 0/16B3748)`, {
        fix: 'the stored checkpoint is not a Postgres position (state written by another source type, or edited): give the pipeline its own state (name or state.dir), or remove its checkpoints to start afresh',
      });
    }
    return new PgPosition((BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`));
  }


  private text?: string;

  /** Postgres' own form, made once (positions are immutable; the log and sinks ask often). */
  serialize(): string {
    return (this.text ??= `${(this.lsn >> 32n).toString(16).toUpperCase()}/${(this.lsn & 0xffffffffn).toString(16).toUpperCase()}`);
  }

  toString(): string {
    return this.serialize();
  }

  compare(other: Position): number {
    const o = (other as PgPosition).lsn;
    return this.lsn < o ? -1 : this.lsn > o ? 1 : 0;
  }

  fence(): string {
    return this.lsn.toString(16).padStart(16, '0');
  }

  /** The LSN itself (exact, up to 2^64). */
  ordinal(): bigint {
    return this.lsn;
  }
}

/**
 * An LSN a user wrote (`0/16B3748`: a row's `source.lsn`, a checkpoint, `pg_current_wal_lsn()`)
 * as a test on the log's transactions: true from the first transaction that ends after it,
 * which is the one holding that LSN (its commit record ends after any of its rows), or the
 * first one after it. Null when the text is not an LSN.
 */
export function pgPositionTarget(text: string): PositionTarget | null {
  if (!/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(text.trim())) return null;
  const at = PgPosition.parse(text).lsn;
  return (t) => PgPosition.parse(t.resume).lsn > at;
}
