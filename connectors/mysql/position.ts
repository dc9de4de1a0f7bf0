/**
 * The MySQL/MariaDB source position: `{file, pos, gtid}`.
 *
 * - `file` is the binlog file name (`mysql-bin.000123`); its numeric suffix orders files.
 * - `pos` is a byte offset inside that file.
 * - `gtid` is the GTID state at this position, or null when GTIDs are off: a MySQL GTID set
 *   (`uuid:1-5:7,uuid2:tag:1-3`) or a MariaDB per-domain state (`0-1-100,1-2-5`).
 *
 * Positions compare numerically by (file sequence, pos). The GTID set does not take part in
 * the comparison: within one server's binlog, file and offset already totally order it, and
 * the GTID set is what a reconnect uses when the file was purged or the server failed over.
 */
import type { Position, PositionTarget } from '../../src/core/source.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { MariadbGtidState, MysqlGtidSet } from './gtid.js';

const NOT_OURS_FIX =
  'the stored checkpoint is not a MySQL position (state written by another source type, or edited): give the pipeline its own state (name or state.dir), or remove its checkpoints to start afresh';

/** Numeric suffix of a binlog file name: `mysql-bin.000123` → 123; -1 when there is none. */
export function fileSequence(file: string): number {
  const dot = file.lastIndexOf('.');
  const tail = dot >= 0 ? file.slice(dot + 1) : '';
  if (tail.length === 0 || !/^\d+$/.test(tail)) return -1;
  return Number(tail);
}

export class MysqlPosition implements Position {
  /** The position before any binlog file: compares lower than every real position. */
  static readonly ZERO = new MysqlPosition('', 0, null);

  /** Cached numeric file sequence (parsed once). */
  readonly seq: number;

  constructor(
    readonly file: string,
    readonly pos: number,
    readonly gtid: string | null = null,
  ) {
    this.seq = fileSequence(file);
  }

  private text?: string;

  /** A JSON string: `{"file":"mysql-bin.000003","pos":1234,"gtid":"..."}` (made once: positions are immutable). */
  serialize(): string {
    return (this.text ??= JSON.stringify({ file: this.file, pos: this.pos, gtid: this.gtid }));
  }

  /** Parses {@link serialize} output; throws a coded error on anything else. */
  static parse(s: string): MysqlPosition {
    let o: unknown;
    try {
      o = JSON.parse(s);
    } catch (err) {
      throw new TributaryError(ErrorCodes.SOURCE_POSITION, `not a MySQL position: ${JSON.stringify(s)}`, { fix: NOT_OURS_FIX, cause: err });
    }
    if (
      typeof o !== 'object' || o === null ||
      typeof (o as { file?: unknown }).file !== 'string' ||
      typeof (o as { pos?: unknown }).pos !== 'number' ||
      !Number.isInteger((o as { pos: number }).pos) || (o as { pos: number }).pos < 0
    ) {
      throw new TributaryError(ErrorCodes.SOURCE_POSITION, `not a MySQL position: ${JSON.stringify(s)}`, { fix: NOT_OURS_FIX });
    }
    const g = (o as { gtid?: unknown }).gtid;
    return new MysqlPosition((o as { file: string }).file, (o as { pos: number }).pos, typeof g === 'string' ? g : null);
  }

  /** By file sequence number, then by offset. Never by string. */
  compare(other: Position): number {
    const o = other as unknown as MysqlPosition;
    if (this.seq !== o.seq) return this.seq < o.seq ? -1 : 1;
    if (this.seq === -1 && this.file !== o.file) return this.file < o.file ? -1 : 1;
    return this.pos === o.pos ? 0 : this.pos < o.pos ? -1 : 1;
  }

  /** `file-seq (8 hex) + pos (16 hex)`: fixed width, so string order equals position order. */
  fence(): string {
    const seq = this.seq < 0 ? 0 : this.seq;
    return seq.toString(16).padStart(8, '0') + this.pos.toString(16).padStart(16, '0');
  }

  /**
   * `file sequence * 2^30 + offset` (the core contract's numeric version). Exact for the
   * positions versions are made of, a transaction's start: the server rotates the file once a
   * transaction leaves it at max_binlog_size (at most 1 GiB), so no transaction starts past
   * 2^30. (A resume position after a huge transaction can; compare() has no such limit.)
   */
  ordinal(): bigint {
    const seq = this.seq < 0 ? 0 : this.seq;
    return (BigInt(seq) << 30n) + BigInt(this.pos);
  }

  withPos(pos: number, gtid: string | null = this.gtid): MysqlPosition {
    return new MysqlPosition(this.file, pos, gtid);
  }

  toString(): string {
    return `${this.file}:${this.pos}${this.gtid ? ` (${this.gtid})` : ''}`;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:/i;

/**
 * A position a user wrote, in one of the forms MySQL and MariaDB users know, as a test on the
 * log's transactions (null when the text is none of them):
 *
 * - `file:pos` (`mysql-bin.000003:1234`, a row's `source.file`/`source.pos`, SHOW MASTER
 *   STATUS) or a serialized position (`{"file":…,"pos":…}`, as checkpoints hold it): true from
 *   the first transaction that ends after it, so the transaction holding that offset is
 *   included;
 * - a GTID set (`3e11fa47-…:1-57`) or a MariaDB GTID position (`0-1-100`), optionally written
 *   `gtid:…`: read as replication reads it, the transactions already applied; true from the
 *   first transaction whose preceding GTID state includes all of it.
 */
export function mysqlPositionTarget(text: string): PositionTarget | null {
  let t = text.trim();
  const forced = /^gtid:/i.test(t);
  if (forced) t = t.slice(5).trim();
  if (!forced && t.startsWith('{')) {
    let at: MysqlPosition;
    try {
      at = MysqlPosition.parse(t);
    } catch {
      return null;
    }
    return afterPosition(at);
  }
  const fp = forced ? null : /^([^:\s{}]+):(\d+)$/.exec(t);
  if (fp && !UUID.test(t)) return afterPosition(new MysqlPosition(fp[1]!, Number(fp[2])));
  if (MariadbGtidState.looksLike(t)) {
    const want = MariadbGtidState.parse(t);
    return (x) => {
      const g = MysqlPosition.parse(x.txn).gtid;
      return g !== null && MariadbGtidState.looksLike(g) && MariadbGtidState.parse(g).includes(want);
    };
  }
  if (UUID.test(t)) {
    const want = MysqlGtidSet.parse(t);
    return (x) => {
      const g = MysqlPosition.parse(x.txn).gtid;
      return g !== null && !MariadbGtidState.looksLike(g) && MysqlGtidSet.parse(g).includes(want);
    };
  }
  return null;
}

function afterPosition(at: MysqlPosition): PositionTarget {
  return (x) => MysqlPosition.parse(x.resume).compare(at) > 0;
}
