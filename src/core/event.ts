/**
 * The change-event envelope: the JSON shape users script against (see DESIGN.md).
 *
 * The value is Debezium-compatible (`op`, `before`, `after`, `source`, `ts_ms`) plus a `key`.
 * Column values are already in their lossless JSON form when an event is built: sources
 * convert, sinks never re-interpret.
 */

import type { JsonBytes } from './json-bytes.js';

/** `c` insert, `u` update, `d` delete, `r` snapshot read, `t` truncate. */
export type Op = 'c' | 'u' | 'd' | 'r' | 't';

/** A JSON value as it appears in a row: numbers, strings, booleans, null, arrays, objects. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** One row image, column name to lossless JSON value. */
export type Row = Record<string, JsonValue>;

/**
 * Where an event came from. Postgres fills `lsn` and `txId`; MySQL fills `file`, `pos`,
 * `gtid`, `server_id` and `row`. `unchanged` names Postgres columns whose TOASTed value was
 * not sent and could not be filled from an old row: keyed sinks must keep what they hold.
 */
export interface SourceInfo {
  connector: 'postgresql' | 'mysql';
  /** Pipeline name. */
  name: string;
  db: string;
  schema?: string;
  table: string;
  /** Commit time on the source, in epoch milliseconds. */
  ts_ms: number;
  /** `"false"` when streaming; `"true"`, `"last"` or `"incremental"` for snapshot reads. */
  snapshot: 'false' | 'true' | 'last' | 'incremental';
  lsn?: string;
  txId?: number;
  file?: string;
  pos?: number;
  gtid?: string | null;
  server_id?: number;
  row?: number;
  unchanged?: string[];
}

/** A change event in its JSON form. */
export interface ChangeEvent {
  op: Op;
  before: Row | null;
  after: Row | null;
  key: Row | null;
  source: SourceInfo;
  /** When Tributary built the event, epoch milliseconds. */
  ts_ms: number;
}

/** `schema.table` for Postgres, `db.table` for MySQL: the name used by filters and templates. */
export function qualifiedTable(ev: ChangeEvent): string {
  return `${ev.source.schema ?? ev.source.db}.${ev.source.table}`;
}

/**
 * An envelope that a source serialized itself, straight from the wire (no intermediate row
 * objects, no JSON.parse/JSON.stringify round trip). Sinks that only need the JSON line never
 * pay for objects; the first read of any field parses the JSON once.
 */
export class SerializedChangeEvent implements ChangeEvent {
  private parsed?: ChangeEvent;
  private text: string | undefined;
  /** The envelope's UTF-8 bytes, when the source made bytes: `bytes[offset, offset + byteLength)`. */
  readonly bytes: Buffer | null;
  readonly offset: number;
  readonly byteLength: number;
  /**
   * The `key` value's bytes, `bytes[keyStart, keyEnd)`, when the writer noted them (-1 when
   * not): the log indexes keys without searching the envelope for them.
   */
  keyStart = -1;
  keyEnd = -1;

  constructor(
    /** The envelope as JSON, exactly what `JSON.stringify` of the parsed value would mean. */
    json: string,
    /** `schema.table` or `db.table`, known without parsing. */
    readonly table: string,
    /** The commit time, known without parsing. */
    readonly commitTsMs: number,
    bytes: Buffer | null = null,
    offset = 0,
    byteLength = 0,
  ) {
    this.text = bytes ? undefined : json;
    this.bytes = bytes;
    this.offset = offset;
    this.byteLength = byteLength;
  }

  /**
   * An envelope held as UTF-8 bytes (an arena JsonBytes). The string is made only if something
   * reads `json` (a sink that wants text, a field access); a sink that writes bytes copies
   * them as they are.
   */
  static fromBytes(bytes: Buffer, offset: number, byteLength: number, table: string, commitTsMs: number): SerializedChangeEvent {
    return new SerializedChangeEvent('', table, commitTsMs, bytes, offset, byteLength);
  }

  /** The envelope an arena writer just finished (`w.buf[w.mark, w.n)`), with its key range if noted. */
  static fromWriter(w: JsonBytes, table: string, commitTsMs: number): SerializedChangeEvent {
    const e = new SerializedChangeEvent('', table, commitTsMs, w.buf, w.mark, w.n - w.mark);
    if (w.keyTo > w.keyFrom && w.keyFrom > 0) {
      e.keyStart = w.mark + w.keyFrom;
      e.keyEnd = w.mark + w.keyTo;
    }
    return e;
  }

  /** The envelope as one JSON line. */
  get json(): string {
    return (this.text ??= this.bytes!.toString('utf8', this.offset, this.offset + this.byteLength));
  }

  private get value(): ChangeEvent {
    return (this.parsed ??= JSON.parse(this.json) as ChangeEvent);
  }
  get op(): Op {
    return this.value.op;
  }
  get before(): Row | null {
    return this.value.before;
  }
  get after(): Row | null {
    return this.value.after;
  }
  get key(): Row | null {
    return this.value.key;
  }
  get source(): SourceInfo {
    return this.value.source;
  }
  get ts_ms(): number {
    return this.value.ts_ms;
  }
  /** JSON.stringify of this object yields the envelope, not the class's fields. */
  toJSON(): ChangeEvent {
    return this.value;
  }
}

/** An event's commit time, without parsing a serialized one. */
export function commitTime(ev: ChangeEvent): number {
  return ev instanceof SerializedChangeEvent ? ev.commitTsMs : ev.source.ts_ms;
}
