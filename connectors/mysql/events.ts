/**
 * Parsers for the non-row binlog events. Each takes a {@link Reader} positioned at the start
 * of the event's post-header and bounded at the end of its body (before any CRC trailer).
 */
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { inflateMariadb } from './compression.js';
import { EventType, HEADER_LEN } from './event-header.js';
import { formatUuid, MysqlGtidSet } from './gtid.js';
import { Reader } from './reader.js';

/** Checksum algorithm byte at the end of a FORMAT_DESCRIPTION. */
export const ChecksumAlg = { OFF: 0, CRC32: 1, UNDEFINED: 255 } as const;

export interface FormatDescription {
  binlogVersion: number;
  serverVersion: string;
  createTimestamp: number;
  headerLength: number;
  /** Post-header length per event type, indexed by type code (index 0 unused). */
  postHeaderLengths: Uint8Array;
  /** 0 off, 1 CRC32 (255/absent: the server predates checksums → off). */
  checksumAlg: number;
  isMariadb: boolean;
}

/** `[major, minor, patch]` from a server version string like `8.0.32-log`. */
export function splitVersion(v: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}

/**
 * FORMAT_DESCRIPTION body: binlog version u16, server version char[50], create timestamp
 * u32, header length u8, post-header lengths (one byte per event type), and — from MySQL
 * 5.6.1 / any MariaDB — a checksum algorithm byte plus 4 CRC bytes, which are present even
 * when checksums are off. So the lengths array is `size − 19 − 57 − 5` bytes long then.
 */
export function parseFormatDescription(buf: Buffer, size: number): FormatDescription {
  const r = new Reader(buf, HEADER_LEN, size);
  const binlogVersion = r.u16();
  const rawVer = r.bytes(50);
  const nul = rawVer.indexOf(0);
  const serverVersion = rawVer.toString('latin1', 0, nul < 0 ? 50 : nul);
  const createTimestamp = r.u32();
  const headerLength = r.u8();
  const [maj, min, pat] = splitVersion(serverVersion);
  const isMariadb = /mariadb/i.test(serverVersion);
  const hasAlg = isMariadb || maj > 5 || (maj === 5 && (min > 6 || (min === 6 && pat >= 1)));
  const arrLen = hasAlg ? size - HEADER_LEN - 57 - 5 : size - HEADER_LEN - 57;
  if (arrLen < 0) throw new TributaryError(ErrorCodes.MYSQL_DECODE, `FORMAT_DESCRIPTION of ${size} bytes is too short`);
  const postHeaderLengths = new Uint8Array(256);
  const arr = r.bytes(arrLen);
  for (let i = 0; i < arrLen; i++) postHeaderLengths[i + 1] = arr[i]!;
  let checksumAlg: number = ChecksumAlg.OFF;
  if (hasAlg) {
    checksumAlg = r.u8();
    if (checksumAlg === ChecksumAlg.UNDEFINED) checksumAlg = ChecksumAlg.OFF;
  }
  return { binlogVersion, serverVersion, createTimestamp, headerLength, postHeaderLengths, checksumAlg, isMariadb };
}

/** The lengths a v4 FDE would declare, for decoding before any FDE arrives. */
export function defaultPostHeaderLengths(): Uint8Array {
  const p = new Uint8Array(256);
  p[EventType.QUERY] = 13;
  p[EventType.ROTATE] = 8;
  p[EventType.TABLE_MAP] = 8;
  p[EventType.WRITE_ROWS_V1] = p[EventType.UPDATE_ROWS_V1] = p[EventType.DELETE_ROWS_V1] = 8;
  p[EventType.WRITE_ROWS_V2] = p[EventType.UPDATE_ROWS_V2] = p[EventType.DELETE_ROWS_V2] = 10;
  p[EventType.PARTIAL_UPDATE_ROWS] = 10;
  p[EventType.MARIADB_GTID] = 19;
  for (let t = EventType.WRITE_ROWS_COMPRESSED_V1; t <= EventType.DELETE_ROWS_COMPRESSED_V1; t++) p[t] = 8;
  for (let t = EventType.WRITE_ROWS_COMPRESSED; t <= EventType.DELETE_ROWS_COMPRESSED; t++) p[t] = 10;
  p[EventType.QUERY_COMPRESSED] = 13;
  return p;
}

export interface RotateEvent {
  position: number;
  nextFile: string;
}

/** ROTATE: position u64, then the next file name up to the end of the body. */
export function parseRotate(r: Reader, postHeaderLen: number): RotateEvent {
  const position = postHeaderLen >= 8 ? r.u64n() : 4;
  return { position, nextFile: r.restStr() };
}

export interface QueryEvent {
  threadId: number;
  execTime: number;
  errorCode: number;
  /** Default database of the statement (`USE db`), '' when none. */
  db: string;
  sql: string;
}

/**
 * QUERY: thread id u32, exec time u32, db length u8, error code u16, status vars length u16
 * (binlog v4), status vars, db name + NUL, SQL text. MariaDB's QUERY_COMPRESSED has the
 * same layout with only the SQL text compressed.
 */
export function parseQuery(r: Reader, postHeaderLen: number, compressed: boolean): QueryEvent {
  const start = r.pos;
  const threadId = r.u32();
  const execTime = r.u32();
  const dbLen = r.u8();
  const errorCode = r.u16();
  const statusLen = postHeaderLen >= 13 ? r.u16() : 0;
  r.pos = start + postHeaderLen;
  r.skip(statusLen);
  const db = r.str(dbLen);
  r.skip(1);
  const sql = compressed
    ? inflateMariadb(r.buf, r.pos, r.end, 'QUERY_COMPRESSED').toString('utf8')
    : r.restStr();
  return { threadId, execTime, errorCode, db, sql };
}

export interface MysqlGtidEvent {
  /** 'uuid:gno' or 'uuid:tag:gno'; null for ANONYMOUS_GTID. */
  gtid: string | null;
  uuid: string;
  tag: string;
  gno: number;
  flags: number;
}

/** GTID / ANONYMOUS_GTID: flags u8, SID (16 bytes), GNO i64, then commit-order fields we skip. */
export function parseMysqlGtid(r: Reader, anonymous: boolean): MysqlGtidEvent {
  const flags = r.u8();
  const uuid = formatUuid(r.buf, r.pos);
  r.skip(16);
  const gno = r.u64n();
  return { gtid: anonymous ? null : `${uuid}:${gno}`, uuid, tag: '', gno, flags };
}

/**
 * GTID_TAGGED (MySQL 8.3+/9): MySQL serialization library format. A format version byte,
 * the message size and the last non-ignorable field id (varlen), then (field id, value)
 * pairs in id order: 0 flags, 1 SID as 16 varlen bytes, 2 GNO (zig-zag varlen), 3 tag
 * (varlen length + text), then commit-order fields that we do not need.
 */
export function parseGtidTagged(r: Reader): MysqlGtidEvent {
  r.u8(); // serialization format version
  r.varlenUint(); // message size (self-inclusive)
  r.varlenUint(); // last non-ignorable field id
  let flags = 0;
  let uuid = '';
  let gno = 0;
  let tag = '';
  while (r.remaining > 0) {
    const id = r.varlenUint();
    if (id === 0) flags = r.varlenUint();
    else if (id === 1) {
      const sid = Buffer.alloc(16);
      for (let i = 0; i < 16; i++) sid[i] = r.varlenUint();
      uuid = formatUuid(sid, 0);
    } else if (id === 2) gno = r.varlenInt();
    else if (id === 3) tag = r.str(r.varlenUint()).toLowerCase();
    else break; // later fields are commit-order metadata
  }
  if (!uuid) throw new TributaryError(ErrorCodes.MYSQL_DECODE, 'GTID_TAGGED event has no source UUID');
  return { gtid: tag ? `${uuid}:${tag}:${gno}` : `${uuid}:${gno}`, uuid, tag, gno, flags };
}

/**
 * PREVIOUS_GTIDS: a u64 whose top byte is the format (0 untagged, 1 tagged; in the tagged
 * format the SID count sits in bits 8–55), then per SID: UUID, [tag], interval count u64,
 * and [start, end) pairs of i64.
 */
export function parsePreviousGtids(r: Reader): MysqlGtidSet {
  const lo = r.u32();
  const hi = r.u32();
  const tagged = hi >>> 24 === 1;
  const nSids = tagged ? (hi & 0xffffff) * 2 ** 24 + (lo >>> 8) : (hi & 0xffffff) * 2 ** 32 + lo;
  const set = new MysqlGtidSet();
  for (let i = 0; i < nSids; i++) {
    const uuid = formatUuid(r.buf, r.pos);
    r.skip(16);
    const tag = tagged ? r.str(r.varlenUint()).toLowerCase() : '';
    const n = r.u64n();
    for (let k = 0; k < n; k++) {
      const start = r.u64n();
      const end = r.u64n();
      set.addInterval(uuid, tag, start, end - 1);
    }
  }
  return set;
}

export interface MariadbGtidEvent {
  domain: number;
  serverId: number;
  seq: number;
  flags: number;
  gtid: string;
}

/** MariaDB GTID flags. */
export const MariadbGtidFlags = { STANDALONE: 1, GROUP_COMMIT_ID: 2, TRANSACTIONAL: 4 } as const;

/** MariaDB GTID (162): seq u64, domain u32, flags u8, then optional fields we ignore. */
export function parseMariadbGtid(r: Reader, serverId: number): MariadbGtidEvent {
  const seq = r.u64n();
  const domain = r.u32();
  const flags = r.u8();
  return { domain, serverId, seq, flags, gtid: `${domain}-${serverId}-${seq}` };
}

/** MariaDB GTID_LIST (163): count u32 (low 28 bits), then (domain u32, server u32, seq u64). */
export function parseGtidList(r: Reader): { domain: number; serverId: number; seq: number }[] {
  const n = r.u32() & 0x0fffffff;
  const out: { domain: number; serverId: number; seq: number }[] = [];
  for (let i = 0; i < n; i++) out.push({ domain: r.u32(), serverId: r.u32(), seq: r.u64n() });
  return out;
}

export interface PayloadHeader {
  compression: number;
  payloadSize: number;
  uncompressedSize: number;
}

/** TRANSACTION_PAYLOAD compression types. */
export const PayloadCompression = { ZSTD: 0, NONE: 255 } as const;

/**
 * TRANSACTION_PAYLOAD header: TLV fields where the type, the length and the value are all
 * length-encoded integers; type 0 ends the header (no length follows). 1 = payload size,
 * 2 = compression type, 3 = uncompressed size. Unknown fields are skipped by length.
 */
export function parsePayloadHeader(r: Reader): PayloadHeader {
  const h: PayloadHeader = { compression: PayloadCompression.NONE, payloadSize: -1, uncompressedSize: -1 };
  for (;;) {
    const type = r.lenenc();
    if (type === 0) break;
    const len = r.lenenc();
    const end = r.pos + len;
    if (type === 1) h.payloadSize = r.lenenc();
    else if (type === 2) h.compression = r.lenenc();
    else if (type === 3) h.uncompressedSize = r.lenenc();
    r.pos = end;
  }
  if (h.payloadSize < 0) h.payloadSize = r.remaining;
  if (h.uncompressedSize < 0) h.uncompressedSize = h.compression === PayloadCompression.NONE ? h.payloadSize : -1;
  return h;
}
