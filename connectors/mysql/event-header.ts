/**
 * The 19-byte v4 binlog event header and the event type codes.
 *
 * Layout (little-endian): timestamp u32, type u8, server_id u32, event_size u32 (header +
 * body + CRC trailer), log_pos u32 (offset just after this event in its file; 0 for
 * artificial events and for events inside a TRANSACTION_PAYLOAD), flags u16.
 */
export const HEADER_LEN = 19;

/** Event type codes (MySQL `Log_event_type`, MariaDB additions from 160). */
export const EventType = {
  UNKNOWN: 0,
  START_V3: 1,
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  INTVAR: 5,
  SLAVE: 7,
  APPEND_BLOCK: 9,
  DELETE_FILE: 11,
  RAND: 13,
  USER_VAR: 14,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  BEGIN_LOAD_QUERY: 17,
  EXECUTE_LOAD_QUERY: 18,
  TABLE_MAP: 19,
  WRITE_ROWS_V0: 20,
  UPDATE_ROWS_V0: 21,
  DELETE_ROWS_V0: 22,
  WRITE_ROWS_V1: 23,
  UPDATE_ROWS_V1: 24,
  DELETE_ROWS_V1: 25,
  INCIDENT: 26,
  HEARTBEAT: 27,
  IGNORABLE: 28,
  ROWS_QUERY: 29,
  WRITE_ROWS_V2: 30,
  UPDATE_ROWS_V2: 31,
  DELETE_ROWS_V2: 32,
  GTID: 33,
  ANONYMOUS_GTID: 34,
  PREVIOUS_GTIDS: 35,
  TRANSACTION_CONTEXT: 36,
  VIEW_CHANGE: 37,
  XA_PREPARE: 38,
  PARTIAL_UPDATE_ROWS: 39,
  TRANSACTION_PAYLOAD: 40,
  HEARTBEAT_V2: 41,
  GTID_TAGGED: 42,
  // MariaDB
  ANNOTATE_ROWS: 160,
  BINLOG_CHECKPOINT: 161,
  MARIADB_GTID: 162,
  GTID_LIST: 163,
  START_ENCRYPTION: 164,
  QUERY_COMPRESSED: 165,
  WRITE_ROWS_COMPRESSED_V1: 166,
  UPDATE_ROWS_COMPRESSED_V1: 167,
  DELETE_ROWS_COMPRESSED_V1: 168,
  WRITE_ROWS_COMPRESSED: 169,
  UPDATE_ROWS_COMPRESSED: 170,
  DELETE_ROWS_COMPRESSED: 171,
} as const;

/** Header flag: the FDE of a binlog that was not closed cleanly (excluded from its CRC). */
export const LOG_EVENT_BINLOG_IN_USE_F = 0x1;
/** Header flag: an event the server made up (artificial ROTATE/FDE at dump start). */
export const LOG_EVENT_ARTIFICIAL_F = 0x20;

export interface EventHeader {
  timestamp: number;
  type: number;
  serverId: number;
  size: number;
  logPos: number;
  flags: number;
}

/** Reads the header at `off` (the caller guarantees 19 readable bytes). */
export function readHeader(buf: Buffer, off = 0): EventHeader {
  return {
    timestamp: buf.readUInt32LE(off),
    type: buf[off + 4]!,
    serverId: buf.readUInt32LE(off + 5),
    size: buf.readUInt32LE(off + 9),
    logPos: buf.readUInt32LE(off + 13),
    flags: buf.readUInt16LE(off + 17),
  };
}

const NAMES = new Map<number, string>(Object.entries(EventType).map(([k, v]) => [v, k]));

/** `WRITE_ROWS_V2` for 30, `type 250` for an unknown code: for error messages. */
export function eventTypeName(type: number): string {
  return NAMES.get(type) ?? `type ${type}`;
}
