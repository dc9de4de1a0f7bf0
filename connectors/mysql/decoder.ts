/**
 * The stateful binlog event-stream decoder.
 *
 * Feed it one complete raw event at a time (19-byte header + body + CRC32 trailer when
 * checksums are on), exactly as framed from a binlog file or as received after the OK byte
 * of a replication packet: the decoder behaves identically for both. It tracks the format
 * description (checksum algorithm, post-header lengths), the current file and offset, table
 * maps, the open transaction and the GTID state, and emits {@link MysqlSourceItem}s:
 *
 * - `{kind:'event'}` for every row change, with `txn` = the transaction's start position;
 * - `{kind:'commit'}` at every transaction end (XID, QUERY COMMIT/ROLLBACK, a DDL statement,
 *   the single statement after a MariaDB FL_STANDALONE GTID), with `resume` = the position
 *   just after the end event and the GTID state including this transaction.
 *
 * Positions are only ever produced at transaction boundaries. Events inside a
 * TRANSACTION_PAYLOAD carry log_pos 0; their positions come from the outer payload event.
 *
 * `feed` is synchronous except for a zstd TRANSACTION_PAYLOAD, for which it returns a
 * Promise. Callers must await that Promise before feeding the next event:
 *
 * ```ts
 * const p = decoder.feed(raw);
 * if (p) await p;
 * ```
 */
import { crc32 } from 'node:zlib';
import { type ChangeEvent, type Op, type Row, SerializedChangeEvent } from '../../src/core/event.js';
import type { SourceItem } from '../../src/core/source.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { inflateZstd } from './compression.js';
import { EventType as E, HEADER_LEN, LOG_EVENT_ARTIFICIAL_F, LOG_EVENT_BINLOG_IN_USE_F, eventTypeName } from './event-header.js';
import {
  ChecksumAlg, type FormatDescription, MariadbGtidFlags, PayloadCompression, defaultPostHeaderLengths, parseFormatDescription,
  parseGtidList, parseGtidTagged, parseMariadbGtid, parseMysqlGtid, parsePayloadHeader, parsePreviousGtids, parseQuery, parseRotate,
} from './events.js';
import { MariadbGtidState, MysqlGtidSet } from './gtid.js';
import { MysqlPosition } from './position.js';
import { Reader } from './reader.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import { RowDecoder, type TableSchemaHint } from './row-decoder.js';
import { RowsJsonWriter, RowsLayout, fileBytesFor, gtidBytesFor, rowsOverrun, sourceHeadFor } from './rows-json.js';
import { type TableMap, parseTableMapBody, peekTableMap } from './table-map.js';

/** A SourceItem whose positions are {@link MysqlPosition}s. */
export type MysqlSourceItem =
  | { kind: 'event'; event: ChangeEvent; txn: MysqlPosition; idx: number }
  | { kind: 'commit'; txn: MysqlPosition; resume: MysqlPosition };

// Compile-time check that MysqlSourceItem is a SourceItem.
const _assignable: (i: MysqlSourceItem) => SourceItem = (i) => i;
void _assignable;

/** A schema-changing (or any non-transaction-control) statement seen in a QUERY event. */
export interface DdlStatement {
  /** Default database of the session (`USE db`), '' when none. */
  db: string;
  sql: string;
  /** Event timestamp, epoch ms. */
  ts_ms: number;
  /** Position of the QUERY event. */
  pos: MysqlPosition;
  /** Position just after it: the schema change is in effect from here on. */
  resume: MysqlPosition;
  /** GTID of the statement's transaction, when GTIDs are on. */
  gtid: string | null;
}

export interface BinlogDecoderOptions {
  /** Pipeline name, copied to `source.name`. */
  pipeline?: string;
  /**
   * Current binlog file name. Files: the file's base name. Live streams: the requested file
   * (the server's artificial ROTATE then confirms or replaces it).
   */
  file?: string;
  /** Offset where decoding starts (default 4, just after the magic). */
  pos?: number;
  /** GTID state at the start (MySQL GTID set or MariaDB `d-s-n,...`). */
  gtid?: string | null;
  /**
   * Supplies what a TABLE_MAP lacks: column names when binlog_row_metadata is not FULL,
   * primary key, JSON columns on MariaDB. Called when a TABLE_MAP is (re)compiled.
   * Return undefined when the table is unknown.
   */
  schemaFor?: (db: string, table: string, map: TableMap) => TableSchemaHint | undefined;
  /**
   * Name unnamed columns `_col0`, `_col1`… instead of failing with MYSQL_SCHEMA_UNKNOWN.
   * For offline decoding only: such names do not survive a column reorder.
   */
  fallbackColumnNames?: boolean;
  /** Only decode rows of tables this returns true for (others are skipped cheaply). */
  includeTable?: (db: string, table: string) => boolean;
  /** Called for DDL and other non-transaction-control statements, e.g. schema history. */
  onDdl?: (ddl: DdlStatement) => void;
  /** Called for every HEARTBEAT with the decoder's current (between-transactions) position. */
  onHeartbeat?: (pos: MysqlPosition) => void;
  /** Verify CRC32 trailers (default true). */
  verifyChecksum?: boolean;
  /**
   * Whether events that arrive before the first FORMAT_DESCRIPTION carry a CRC32 trailer
   * (live streams: true when `@master_binlog_checksum` is CRC32). Default false.
   */
  checksumBeforeFde?: boolean;
  /**
   * What to do with a PARTIAL_UPDATE_ROWS JSON diff whose column is missing from the before
   * image (binlog_row_image=MINIMAL with binlog_row_value_options=PARTIAL_JSON), so the new
   * document cannot be rebuilt:
   * - `'error'` (default): throw MYSQL_DECODE naming the fix. Emitting anything else would
   *   let a keyed sink keep a stale document.
   * - `'diff'`: emit the column as `{"$jsonDiff": [{"op":"replace","path":"$.age","value":26}]}`
   *   (the offline decode CLI uses this to show what the binlog holds).
   * With binlog_row_image=FULL the before image is complete and diffs are always applied.
   */
  partialJson?: 'error' | 'diff';
  /**
   * Tables whose row events are emitted as {@link SerializedChangeEvent}s, the envelope
   * written as JSON straight from the row images (no Row objects, no JSON.stringify later).
   * Asked when a table's TABLE_MAP is compiled and again on {@link BinlogDecoder.reconsiderTables};
   * return false for tables whose events the caller inspects or amends as objects. Unset: none
   * (plain ChangeEvent objects, as the offline decoder and tests want them).
   */
  serializeTable?: (db: string, table: string) => boolean;
  /** Clock for the envelope's `ts_ms` (tests inject a fixed one). */
  clock?: () => number;
  /** Where items go. */
  emit: (item: MysqlSourceItem) => void;
}

interface TableEntry {
  /** TABLE_MAP body bytes from the db name on; identical bytes → reuse the decoder. */
  sig: Buffer;
  map: TableMap;
  /** Null when the table is filtered out. */
  decoder: RowDecoder | null;
  /** Row events become {@link SerializedChangeEvent}s (see `serializeTable`). */
  serialize: boolean;
  /** `db.table`, the SerializedChangeEvent's table. */
  qualified: string;
  /** `,"source":` and the constant head of the `source` object, up to `"ts_ms":`. */
  sourceHead: Buffer;
}

interface Txn {
  start: MysqlPosition;
  gtid: string | null;
  /** `,"gtid":<gtid>,"server_id":` for serialized envelopes, made at the first one. */
  gtidBytes?: Buffer;
  idx: number;
}

/** Where the GTID of the upcoming transaction goes once it commits. */
type PendingGtid =
  | { flavor: 'mysql'; gtid: string; uuid: string; tag: string; gno: number }
  | { flavor: 'mariadb'; gtid: string; domain: number; serverId: number; seq: number }
  | null;

const DDL_RE = /^\s*(?:\/\*.*?\*\/\s*)*(CREATE|ALTER|DROP|RENAME|TRUNCATE)\b/is;
const TRUNCATE_RE = /^\s*(?:\/\*.*?\*\/\s*)*TRUNCATE\s+(?:TABLE\s+)?((?:`[^`]+`|[\w$]+)(?:\s*\.\s*(?:`[^`]+`|[\w$]+))?)\s*;?\s*$/is;

function unquote(s: string): string {
  return s.startsWith('`') ? s.slice(1, -1).replace(/``/g, '`') : s;
}

export class BinlogDecoder {
  private readonly opts: BinlogDecoderOptions;
  private readonly emit: (item: MysqlSourceItem) => void;
  private readonly clock: () => number;
  private readonly name: string;
  private fde: FormatDescription | null = null;
  private postHeader: Uint8Array = defaultPostHeaderLengths();
  private checksum: boolean;
  private readonly verify: boolean;
  private file: string;
  private nextPos: number;
  private mysqlGtids: MysqlGtidSet | null = null;
  private mariaGtids: MariadbGtidState | null = null;
  private readonly tables = new Map<number, TableEntry>();
  private txn: Txn | null = null;
  private pendingStart: number | null = null;
  private pendingGtid: PendingGtid = null;
  /** A MariaDB FL_STANDALONE GTID: the next statement is the whole transaction. */
  private standalone = false;
  /** Outer TRANSACTION_PAYLOAD bounds while its inner events are decoded. */
  private outerStart = -1;
  private outerEnd = -1;
  /** The envelope's `source` from `snapshot` to `pos`, and the file name it was made for. */
  private fileBytes: Buffer = Buffer.alloc(0);
  private fileBytesOf: string | null = null;
  /** The rows event being decoded (reused), and the serialized path's envelope writer. */
  private readonly layout = new RowsLayout();
  private readonly writer = new RowsJsonWriter(new JsonBytes(256 * 1024, true));

  /** Events fed, row changes emitted, transactions committed. */
  readonly stats = { events: 0, rows: 0, commits: 0 };

  constructor(opts: BinlogDecoderOptions) {
    this.opts = opts;
    this.emit = opts.emit;
    this.clock = opts.clock ?? Date.now;
    this.name = opts.pipeline ?? '';
    this.file = opts.file ?? '';
    this.nextPos = opts.pos ?? 4;
    this.checksum = opts.checksumBeforeFde ?? false;
    this.verify = opts.verifyChecksum ?? true;
    const g = opts.gtid;
    if (g) {
      if (MariadbGtidState.looksLike(g)) this.mariaGtids = MariadbGtidState.parse(g);
      else this.mysqlGtids = MysqlGtidSet.parse(g);
    }
  }

  /** The current binlog file name. */
  get currentFile(): string {
    return this.file;
  }

  /** The last FORMAT_DESCRIPTION seen (server version, checksum algorithm...). */
  get formatDescription(): FormatDescription | null {
    return this.fde;
  }

  /** True between a transaction's start and its end event. */
  get inTransaction(): boolean {
    return this.txn !== null || this.pendingStart !== null;
  }

  /** Current GTID state string, or null when no GTIDs have been seen or configured. */
  get gtidState(): string | null {
    const s = this.mariaGtids ? this.mariaGtids.toString() : this.mysqlGtids ? this.mysqlGtids.toString() : '';
    return s === '' ? null : s;
  }

  /**
   * The position after the last fully decoded event. A valid resume point only when
   * {@link inTransaction} is false (use it to acknowledge heartbeats on idle servers).
   */
  get position(): MysqlPosition {
    return new MysqlPosition(this.file, this.nextPos, this.gtidState);
  }

  /** Switches to a new file (used by the file reader between files). */
  startFile(file: string, pos = 4): void {
    this.file = file;
    this.nextPos = pos;
  }

  /** Drops every cached TABLE_MAP decoder (after a schema change, or on reconnect). */
  resetTables(): void {
    this.tables.clear();
  }

  /**
   * Asks `serializeTable` again for every cached table, for when its answer changed (a
   * table gained a derived key). The decoders themselves stay: the next rows event of a
   * transaction has no TABLE_MAP before it.
   */
  reconsiderTables(): void {
    for (const e of this.tables.values()) e.serialize = this.wantsJson(e.map, e.decoder);
  }

  private wantsJson(map: TableMap, dec: RowDecoder | null): boolean {
    const f = this.opts.serializeTable;
    return dec !== null && dec.canEncode && f !== undefined && f(map.db, map.table);
  }

  /**
   * Decodes one complete event. `offset` is the event's start offset in its file when the
   * caller knows it (file reading); otherwise it is derived from the header's log_pos.
   * Returns a Promise only for compressed TRANSACTION_PAYLOAD events.
   */
  feed(ev: Buffer, offset?: number): void | Promise<void> {
    if (ev.length < HEADER_LEN) {
      throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${this.where(offset)}: event of ${ev.length} bytes is shorter than its header`);
    }
    const type = ev[4]!;
    const size = ev.readUInt32LE(9);
    const logPos = ev.readUInt32LE(13);
    const flags = ev.readUInt16LE(17);
    if (size !== ev.length) {
      throw new TributaryError(
        ErrorCodes.MYSQL_DECODE,
        `${this.where(offset)}: ${eventTypeName(type)} header says ${size} bytes, got ${ev.length}`,
      );
    }
    this.stats.events++;
    const start = offset ?? (logPos > 0 && logPos >= size ? logPos - size : this.nextPos);
    let end = size;

    if (type === E.FORMAT_DESCRIPTION) {
      const fde = parseFormatDescription(ev, size);
      // The FDE always ends with alg byte + 4 CRC bytes (when it has an alg byte at all).
      if (fde.checksumAlg === ChecksumAlg.CRC32 && this.verify) this.checkCrc(ev, size, start, true);
      this.fde = fde;
      this.postHeader = fde.postHeaderLengths;
      this.checksum = fde.checksumAlg === ChecksumAlg.CRC32;
      // A new FDE at a file start: table ids from the previous file are no longer valid.
      if (logPos !== 0) this.tables.clear();
      this.advance(logPos, flags);
      return;
    }
    if (this.checksum) {
      end = size - 4;
      if (this.verify) this.checkCrc(ev, size, start, false);
    }
    const result = this.dispatch(ev, type, start, end, logPos, flags);
    // ROTATE's log_pos belongs to the old file; a heartbeat's is not an event boundary.
    if (type === E.ROTATE || type === E.HEARTBEAT || type === E.HEARTBEAT_V2) return;
    if (result) return result.then(() => this.advance(logPos, flags));
    this.advance(logPos, flags);
  }

  private advance(logPos: number, flags: number): void {
    if (logPos !== 0 && (flags & LOG_EVENT_ARTIFICIAL_F) === 0) this.nextPos = logPos;
  }

  private where(offset?: number): string {
    return `${this.file || 'binlog'} at ${offset ?? this.nextPos}`;
  }

  private checkCrc(ev: Buffer, size: number, start: number, isFde: boolean): void {
    const stored = ev.readUInt32LE(size - 4);
    let c: number;
    if (isFde && (ev[17]! & LOG_EVENT_BINLOG_IN_USE_F) !== 0) {
      // The server computed the FDE checksum before it set the "binlog in use" flag.
      c = crc32(ev.subarray(0, 17));
      c = crc32(Buffer.of(ev[17]! & ~LOG_EVENT_BINLOG_IN_USE_F), c);
      c = crc32(ev.subarray(18, size - 4), c);
    } else c = crc32(ev.subarray(0, size - 4));
    if (c !== stored) {
      throw new TributaryError(
        ErrorCodes.MYSQL_CHECKSUM,
        `${this.file || 'binlog'}: ${eventTypeName(ev[4]!)} event at offset ${start} fails its CRC32 check ` +
          `(stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${c.toString(16).padStart(8, '0')})`,
        { fix: 'the binlog is corrupt (disk or network); re-read it from the server or restore the file' },
      );
    }
  }

  private dispatch(ev: Buffer, type: number, start: number, end: number, logPos: number, flags: number): Promise<void> | void {
    const r = new Reader(ev, HEADER_LEN, end);
    switch (type) {
      case E.TABLE_MAP:
        this.onTableMap(r);
        return;
      case E.WRITE_ROWS_V1: case E.WRITE_ROWS_V2: case E.WRITE_ROWS_COMPRESSED_V1: case E.WRITE_ROWS_COMPRESSED:
      case E.UPDATE_ROWS_V1: case E.UPDATE_ROWS_V2: case E.UPDATE_ROWS_COMPRESSED_V1: case E.UPDATE_ROWS_COMPRESSED:
      case E.DELETE_ROWS_V1: case E.DELETE_ROWS_V2: case E.DELETE_ROWS_COMPRESSED_V1: case E.DELETE_ROWS_COMPRESSED:
      case E.PARTIAL_UPDATE_ROWS:
        this.onRows(ev, r, type, start);
        return;
      case E.XID:
        this.commit(this.endPos(logPos));
        return;
      case E.QUERY:
      case E.QUERY_COMPRESSED:
        this.onQuery(ev, r, type, start, logPos);
        return;
      case E.GTID:
      case E.ANONYMOUS_GTID:
      case E.GTID_TAGGED: {
        const g = type === E.GTID_TAGGED ? parseGtidTagged(r) : parseMysqlGtid(r, type === E.ANONYMOUS_GTID);
        this.pendingStart = start;
        if (g.gtid) {
          this.mysqlGtids ??= new MysqlGtidSet();
          this.pendingGtid = { flavor: 'mysql', gtid: g.gtid, uuid: g.uuid, tag: g.tag, gno: g.gno };
        } else this.pendingGtid = null;
        return;
      }
      case E.MARIADB_GTID: {
        const g = parseMariadbGtid(r, ev.readUInt32LE(5));
        this.mariaGtids ??= new MariadbGtidState();
        this.pendingGtid = { flavor: 'mariadb', gtid: g.gtid, domain: g.domain, serverId: g.serverId, seq: g.seq };
        this.pendingStart = start;
        if ((g.flags & MariadbGtidFlags.STANDALONE) !== 0) this.standalone = true;
        else this.openTxn(start);
        return;
      }
      case E.PREVIOUS_GTIDS: {
        const prev = parsePreviousGtids(r);
        if (!this.mysqlGtids) this.mysqlGtids = prev;
        else if (!prev.isEmpty) this.mysqlGtids = MysqlGtidSet.parse(`${prev.toString()},${this.mysqlGtids.toString()}`);
        return;
      }
      case E.GTID_LIST: {
        this.mariaGtids ??= new MariadbGtidState();
        const current = MariadbGtidState.parse(this.mariaGtids.toString());
        for (const g of parseGtidList(r)) {
          const cur = current.toString().split(',').find((s) => s.startsWith(`${g.domain}-`));
          const curSeq = cur ? Number(cur.split('-')[2]) : -1;
          if (g.seq >= curSeq) this.mariaGtids.set(g.domain, g.serverId, g.seq);
        }
        return;
      }
      case E.ROTATE: {
        const rot = parseRotate(r, this.postHeader[E.ROTATE]!);
        const artificial = logPos === 0 || (flags & LOG_EVENT_ARTIFICIAL_F) !== 0;
        // A real ROTATE ends its file; an artificial one (log_pos 0, sent at dump start) just
        // names the file being streamed. Either way the next event is at rot.position in
        // rot.nextFile; feed() does not apply this event's log_pos (it belongs to the old file).
        if (!artificial && this.fde) this.tables.clear();
        this.file = rot.nextFile;
        this.nextPos = rot.position;
        return;
      }
      case E.TRANSACTION_PAYLOAD:
        return this.onPayload(ev, r, start, this.endPos(logPos));
      case E.XA_PREPARE:
        // XA PREPARE ends the binlog event group of an XA transaction.
        this.commit(this.endPos(logPos));
        return;
      case E.HEARTBEAT:
      case E.HEARTBEAT_V2:
        this.opts.onHeartbeat?.(this.position);
        return;
      default:
        // STOP, INTVAR, RAND, USER_VAR, ROWS_QUERY, ANNOTATE_ROWS, BINLOG_CHECKPOINT,
        // START_ENCRYPTION, INCIDENT, unknown future types: nothing to decode.
        return;
    }
  }

  /** End position of the current event: the outer payload end inside a payload. */
  private endPos(logPos: number): number {
    return this.outerEnd >= 0 ? this.outerEnd : logPos !== 0 ? logPos : this.nextPos;
  }

  private openTxn(start: number): Txn {
    const gtid = this.pendingGtid?.gtid ?? null;
    const t: Txn = {
      start: new MysqlPosition(this.file, this.pendingStart ?? start, this.gtidState),
      gtid,
      idx: 0,
    };
    this.pendingStart = null;
    this.txn = t;
    return t;
  }

  private applyPendingGtid(): void {
    const g = this.pendingGtid;
    if (!g) return;
    if (g.flavor === 'mysql') this.mysqlGtids!.add(g.uuid, g.tag, g.gno);
    else this.mariaGtids!.set(g.domain, g.serverId, g.seq);
    this.pendingGtid = null;
  }

  private commit(endPos: number, start = endPos): void {
    const t = this.txn ?? this.openTxn(start);
    this.applyPendingGtid();
    this.txn = null;
    this.standalone = false;
    this.pendingStart = null;
    this.stats.commits++;
    this.emit({ kind: 'commit', txn: t.start, resume: new MysqlPosition(this.file, endPos, this.gtidState) });
  }

  private onQuery(ev: Buffer, r: Reader, type: number, start: number, logPos: number): void {
    const q = parseQuery(r, this.postHeader[type] || 13, type === E.QUERY_COMPRESSED);
    const sql = q.sql;
    const head = sql.length > 16 ? sql.slice(0, 16).trimStart().toUpperCase() : sql.trim().toUpperCase();
    if (head.startsWith('BEGIN') || head.startsWith('XA START') || head === 'START TRANSACTION') {
      if (!this.txn) this.openTxn(start);
      return;
    }
    const endPos = this.endPos(logPos);
    if (head.startsWith('COMMIT') || head.startsWith('ROLLBACK') || head.startsWith('XA COMMIT') || head.startsWith('XA ROLLBACK')) {
      // ROLLBACK here means non-transactional changes that did happen (MyISAM in a rolled
      // back transaction): its rows were logged and must be delivered.
      this.commit(endPos, start);
      return;
    }
    // Any other statement: DDL (implicitly committing) or statement-based DML.
    const inTxn = this.txn !== null && !this.standalone;
    const t = this.txn ?? this.openTxn(start);
    const ts = ev.readUInt32LE(0) * 1000;
    if (DDL_RE.test(sql)) {
      this.tables.clear();
      this.opts.onDdl?.({
        db: q.db, sql, ts_ms: ts, pos: new MysqlPosition(this.file, start, this.gtidState),
        resume: new MysqlPosition(this.file, endPos, this.gtidState), gtid: t.gtid,
      });
      const m = TRUNCATE_RE.exec(sql);
      if (m) {
        const parts = m[1]!.split(/\s*\.\s*/).map(unquote);
        const db = parts.length === 2 ? parts[0]! : q.db;
        const table = parts.length === 2 ? parts[1]! : parts[0]!;
        if (!this.opts.includeTable || this.opts.includeTable(db, table)) {
          this.emitChange(t, 't', null, null, null, db, table, ts, start, ev.readUInt32LE(5), 0);
        }
      }
    }
    if (!inTxn) this.commit(endPos, start);
  }

  private onTableMap(r: Reader): void {
    const ph = this.postHeader[E.TABLE_MAP] || 8;
    const { tableId, bodyStart } = peekTableMap(r, ph);
    const cached = this.tables.get(tableId);
    const bodyLen = r.end - bodyStart;
    if (cached && cached.sig.length === bodyLen && r.buf.compare(cached.sig, 0, bodyLen, bodyStart, r.end) === 0) return;
    // MariaDB's SIGNEDNESS metadata covers YEAR too (column-types.ts isNumericType).
    const map = parseTableMapBody(r, tableId, this.fde?.serverVersion.includes('MariaDB') ?? false);
    const include = !this.opts.includeTable || this.opts.includeTable(map.db, map.table);
    const decoder = include ? this.compile(map) : null;
    this.tables.set(tableId, {
      sig: map.signature, map, decoder, serialize: this.wantsJson(map, decoder), qualified: `${map.db}.${map.table}`,
      sourceHead: sourceHeadFor(this.name, map.db, map.table),
    });
  }

  /** Builds the row decoder for a TABLE_MAP, resolving column names. */
  private compile(map: TableMap): RowDecoder {
    const hint = this.opts.schemaFor?.(map.db, map.table, map);
    let names: string[];
    if (map.columnNames && map.columnNames.length === map.columnCount) names = map.columnNames;
    else if (hint) {
      if (hint.columns.length !== map.columnCount) {
        throw new TributaryError(
          ErrorCodes.MYSQL_SCHEMA_UNKNOWN,
          `${map.db}.${map.table}: the schema history has ${hint.columns.length} columns but the binlog TABLE_MAP has ${map.columnCount}`,
          { fix: 'SET GLOBAL binlog_row_metadata = FULL so the binlog names its columns, then restart the pipeline' },
        );
      }
      names = hint.columns;
    } else if (this.opts.fallbackColumnNames) {
      names = Array.from({ length: map.columnCount }, (_, i) => `_col${i}`);
    } else {
      throw new TributaryError(
        ErrorCodes.MYSQL_SCHEMA_UNKNOWN,
        `${map.db}.${map.table}: the binlog does not name its columns (binlog_row_metadata is MINIMAL or NO_LOG) and no schema history knows the table`,
        { fix: "SET GLOBAL binlog_row_metadata = 'FULL' (MySQL 8.0.1+, MariaDB 10.5+), then restart the pipeline" },
      );
    }
    return new RowDecoder(map, names, hint);
  }

  private onRows(ev: Buffer, r: Reader, type: number, start: number): void {
    const ph = this.postHeader[type] || (type >= E.WRITE_ROWS_V2 && type <= E.PARTIAL_UPDATE_ROWS ? 10 : 8);
    const tableId = ph === 6 ? r.u32() : r.uintLE(6);
    r.u16(); // flags (STMT_END_F etc.): statement boundaries do not matter for row changes
    const v2 = (type >= E.WRITE_ROWS_V2 && type <= E.DELETE_ROWS_V2) || type === E.PARTIAL_UPDATE_ROWS || type >= E.WRITE_ROWS_COMPRESSED;
    if (v2) {
      const extra = r.u16();
      r.skip(extra - 2); // extra-data length counts its own two bytes
    }
    const entry = this.tables.get(tableId);
    if (!entry) {
      throw new TributaryError(
        ErrorCodes.MYSQL_DECODE,
        `${this.file} at ${start}: ${eventTypeName(type)} for table id ${tableId} without a preceding TABLE_MAP`,
        { fix: 'resume from a transaction boundary (the stored position), not from the middle of a transaction' },
      );
    }
    const dec = entry.decoder;
    if (!dec) return; // filtered out
    const partialType = type === E.PARTIAL_UPDATE_ROWS;
    const serialize = entry.serialize && !partialType;
    const pos = this.outerStart >= 0 ? this.outerStart : start;
    const l = this.layout;
    l.read(ev, r, type, dec, this.file, start);
    const t = this.txn ?? this.openTxn(start);
    const ts = ev.readUInt32LE(0) * 1000;
    const serverId = ev.readUInt32LE(5);
    const map = entry.map;
    let p: number;
    if (serialize) p = this.rowsAsJson(entry, dec, l, t, ts, pos, serverId);
    else p = this.rowsAsObjects(dec, map, l.buf, l.p, l.end, l.n, l.cols1, l.cols2, l.op, partialType, t, ts, pos, serverId, start);
    if (p !== l.end) throw rowsOverrun(this.file, start, type, p - l.end);
  }

  /**
   * The streaming hot path: each row's envelope is written as JSON bytes straight from the
   * row images (rows-json.ts) into an arena writer, and the event holds those bytes where
   * they were written: no copy, and no string unless a sink asks for one (json-bytes.ts says why).
   */
  private rowsAsJson(entry: TableEntry, dec: RowDecoder, l: RowsLayout, t: Txn, ts: number, pos: number, serverId: number): number {
    if (this.fileBytesOf !== this.file) {
      this.fileBytes = fileBytesFor(this.file);
      this.fileBytesOf = this.file;
    }
    t.gtidBytes ??= gtidBytesFor(t.gtid);
    const wr = this.writer;
    // One clock read per rows event: its rows are built within microseconds of each other.
    wr.begin(entry.sourceHead, ts, this.fileBytes, pos, t.gtidBytes, serverId, this.clock());
    const w = wr.out;
    const { buf, end, cols1, cols2, op } = l;
    let p = l.p;
    for (let row = 0; p < end; row++) {
      w.reset();
      p = wr.row(dec, buf, p, end, cols1, cols2, op, row);
      this.stats.rows++;
      const event = SerializedChangeEvent.fromWriter(w, entry.qualified, ts);
      w.seal();
      this.emit({ kind: 'event', event, txn: t.start, idx: t.idx++ });
    }
    return p;
  }

  /** Row events as ChangeEvent objects (and the only path for PARTIAL_UPDATE_ROWS). */
  private rowsAsObjects(
    dec: RowDecoder, map: TableMap, buf: Buffer, p: number, end: number, n: number, cols1: Int32Array, cols2: Int32Array,
    op: Op, partialType: boolean, t: Txn, ts: number, pos: number, serverId: number, start: number,
  ): number {
    let jsonCols: number[] | null = null;
    for (let row = 0; p < end; row++) {
      let before: Row | null = null;
      let after: Row | null = null;
      if (op === 'c') {
        after = {};
        p = dec.decode(buf, p, end, cols1, after);
      } else if (op === 'd') {
        before = {};
        p = dec.decode(buf, p, end, cols1, before);
      } else {
        before = {};
        p = dec.decode(buf, p, end, cols1, before);
        let partial: Uint8Array | null = null;
        if (partialType) {
          // value_options (lenenc); bit 0 = PARTIAL_JSON: a bitmap over the table's JSON columns.
          const rr = new Reader(buf, p, end);
          const valueOptions = rr.lenenc();
          if ((valueOptions & 1) !== 0) {
            jsonCols ??= Array.from({ length: n }, (_, i) => i).filter((i) => dec.isJsonColumn(i));
            const bytes = rr.bytes((jsonCols.length + 7) >> 3);
            partial = new Uint8Array(n);
            for (let k = 0; k < jsonCols.length; k++) if ((bytes[k >> 3]! & (1 << (k & 7))) !== 0) partial[jsonCols[k]!] = 1;
          }
          p = rr.pos;
        }
        after = {};
        if (partial) {
          const missing: string[] = [];
          p = dec.decode(buf, p, end, cols2, after, partial, before, missing);
          if (missing.length > 0 && this.opts.partialJson !== 'diff') {
            throw new TributaryError(
              ErrorCodes.MYSQL_PARTIAL_JSON,
              `${this.file} at ${start}: ${map.db}.${map.table}: partial JSON update of ${missing.join(', ')} cannot be applied: the before image does not hold the old document (binlog_row_image=MINIMAL)`,
              { fix: "SET GLOBAL binlog_row_value_options = '' (log whole JSON documents) or SET GLOBAL binlog_row_image = 'FULL'" },
            );
          }
        } else p = dec.decode(buf, p, end, cols2, after);
      }
      this.emitChange(t, op, before, after, dec.keyOf(op === 'd' ? before : after) ?? (op === 'u' ? dec.keyOf(before) : null),
        map.db, map.table, ts, pos, serverId, row);
    }
    return p;
  }

  private emitChange(
    t: Txn, op: Op, before: Row | null, after: Row | null, key: Row | null, db: string, table: string, ts: number,
    pos: number, serverId: number, row: number,
  ): void {
    const event: ChangeEvent = {
      op,
      before,
      after,
      key,
      source: {
        connector: 'mysql', name: this.name, db, table, ts_ms: ts, snapshot: 'false',
        file: this.file, pos, gtid: t.gtid, server_id: serverId, row,
      },
      ts_ms: this.clock(),
    };
    this.stats.rows++;
    this.emit({ kind: 'event', event, txn: t.start, idx: t.idx++ });
  }

  /**
   * TRANSACTION_PAYLOAD: a header (TLV), then a compressed run of complete events with
   * log_pos 0 and no checksums. They are decoded as if fed, with positions taken from the
   * outer event. Every inner event must parse exactly to the end of the inflated buffer.
   */
  private onPayload(ev: Buffer, r: Reader, start: number, endPos: number): Promise<void> | void {
    const h = parsePayloadHeader(r);
    const where = `${this.file} at ${start}: TRANSACTION_PAYLOAD`;
    if (h.payloadSize > r.remaining) {
      throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: payload of ${h.payloadSize} bytes overruns the event (${r.remaining} left)`);
    }
    const data = ev.subarray(r.pos, r.pos + h.payloadSize);
    if (h.compression === PayloadCompression.NONE) {
      this.decodeInner(data, start, endPos, where);
      return;
    }
    if (h.compression !== PayloadCompression.ZSTD) {
      throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: unknown compression type ${h.compression}`);
    }
    return inflateZstd(Buffer.from(data), h.uncompressedSize, where).then((inner) => this.decodeInner(inner, start, endPos, where));
  }

  private decodeInner(inner: Buffer, start: number, endPos: number, where: string): void {
    const savedChecksum = this.checksum;
    this.outerStart = start;
    this.outerEnd = endPos;
    // Inner events carry no CRC32 trailer (the outer event's checksum covers them).
    this.checksum = false;
    try {
      let off = 0;
      while (off < inner.length) {
        if (inner.length - off < HEADER_LEN) {
          throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: inner event at ${off} is truncated (needs ${HEADER_LEN} bytes, payload has ${inner.length - off})`);
        }
        const size = inner.readUInt32LE(off + 9);
        if (size < HEADER_LEN || off + size > inner.length) {
          throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: inner event at ${off} is truncated (needs ${size} bytes, payload has ${inner.length - off})`);
        }
        const sub = inner.subarray(off, off + size);
        const type = sub[4]!;
        if (type === E.TRANSACTION_PAYLOAD || type === E.FORMAT_DESCRIPTION) {
          throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: unexpected ${eventTypeName(type)} inside a payload`);
        }
        this.stats.events++;
        void this.dispatch(sub, type, start, size, 0, sub.readUInt16LE(17));
        off += size;
      }
    } finally {
      this.checksum = savedChecksum;
      this.outerStart = -1;
      this.outerEnd = -1;
    }
  }
}

