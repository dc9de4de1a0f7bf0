/**
 * The on-disk framing of the embedded log: record batches, each with a checksum.
 *
 * A segment file is a plain sequence of batches. A batch is a fixed header and a body of
 * records. Its CRC-32 covers everything after the checksum field, so a torn write or a
 * flipped bit anywhere in the batch is caught when it is read; nothing past the last batch
 * whose length and checksum hold is trusted.
 *
 * ```
 * header (40 bytes, little-endian)
 *   0  u32  magic 'TRB1'
 *   4  u32  batch length, header included
 *   8  u32  CRC-32 of bytes [12, length)
 *  12  u8   format version (1)
 *  13  u8   flags: 1 = body is zstd-compressed, 2 = the batch ends with a commit record
 *  14  u16  reserved (0)
 *  16  f64  offset of the first record that takes an offset (an integer below 2^53)
 *  24  u32  records that take an offset (events and commits)
 *  28  u32  body length before compression
 *  32  f64  the largest commit time (ms) of the batch's records, for the time index
 * body: records, each starting with a kind byte
 *   TXN    1  u16 len, position    the transaction the following records belong to (no offset)
 *   TABLE  3  u16 id, u16 len, name a table name that EVENT records refer to by id (no offset)
 *   EVENT  2  u8 op, u16 table id, u32 index in the transaction, f64 commit time,
 *             u32 key start, u32 key length, u32 envelope length, envelope JSON
 *             (the key JSON is the envelope's own `key` value: start and length are
 *             relative to the envelope, so it is not stored twice)
 *   COMMIT 4  f64 commit time, u16 len, resume position
 * ```
 *
 * Every batch starts with a TXN record, so each batch decodes on its own (a reader can start
 * at any batch the offset index points to). A batch ends either with a COMMIT or in the
 * middle of a transaction too large for one batch; it never holds the end of one
 * transaction and the start of the next, so recovery can cut an unfinished transaction off
 * at a batch boundary.
 */
import { crc32 } from 'node:zlib';

export const MAGIC = 0x31425254; // 'TRB1' read as a little-endian u32
export const HEADER_BYTES = 40;
export const FORMAT_VERSION = 1;
export const FLAG_ZSTD = 1;
/** Where the flags byte sits in a batch header. */
export const FLAGS_AT = 13;
export const FLAG_COMMIT = 2;

export const REC_TXN = 1;
export const REC_EVENT = 2;
export const REC_TABLE = 3;
export const REC_COMMIT = 4;

/** Fixed part of an EVENT record, before its key and envelope bytes. */
export const EVENT_FIXED = 1 + 1 + 2 + 4 + 8 + 4 + 4 + 4;

/** The header fields of one batch. */
export interface BatchHeader {
  /** Bytes of the whole batch, header included. */
  length: number;
  flags: number;
  baseOffset: number;
  /** Records that take an offset: the batch covers [baseOffset, baseOffset + count). */
  count: number;
  bodyLength: number;
  maxTsMs: number;
}

/** Why a batch could not be read: what recovery and the corruption error report. */
export type BatchProblem = 'short' | 'magic' | 'length' | 'crc' | 'version';

/**
 * Read and check the header at `pos`. Returns the header, or the reason the bytes there are
 * not a whole, valid batch. `buf` must hold the whole batch for the CRC to be checked;
 * `available` says how many bytes from `pos` exist in the file (to tell a batch cut short
 * by a crash from one whose length field is damaged).
 */
export function readBatchHeader(buf: Buffer, pos: number, available: number): BatchHeader | BatchProblem {
  if (available < HEADER_BYTES || buf.length - pos < HEADER_BYTES) return 'short';
  if (buf.readUInt32LE(pos) !== MAGIC) return 'magic';
  const length = buf.readUInt32LE(pos + 4);
  if (length < HEADER_BYTES) return 'length';
  if (length > available) return 'short';
  if (buf.length - pos < length) return 'short';
  if (buf[pos + 12] !== FORMAT_VERSION) return 'version';
  if (crc32(buf.subarray(pos + 12, pos + length)) !== buf.readUInt32LE(pos + 8)) return 'crc';
  return {
    length,
    flags: buf[pos + FLAGS_AT]!,
    baseOffset: buf.readDoubleLE(pos + 16),
    count: buf.readUInt32LE(pos + 24),
    bodyLength: buf.readUInt32LE(pos + 28),
    maxTsMs: buf.readDoubleLE(pos + 32),
  };
}

/** The batch length field at `pos`, without any check (to skip ahead while scanning). */
export function peekLength(buf: Buffer, pos: number): number {
  return buf.length - pos >= 8 && buf.readUInt32LE(pos) === MAGIC ? buf.readUInt32LE(pos + 4) : 0;
}

/**
 * Fill in a batch header in place, over the first {@link HEADER_BYTES} of `batch`, and
 * compute its checksum. The body must already be in `batch[HEADER_BYTES, length)`.
 */
export function sealBatch(batch: Buffer, length: number, h: Omit<BatchHeader, 'length'>): void {
  batch.writeUInt32LE(MAGIC, 0);
  batch.writeUInt32LE(length, 4);
  batch[12] = FORMAT_VERSION;
  batch[FLAGS_AT] = h.flags;
  batch.writeUInt16LE(0, 14);
  batch.writeDoubleLE(h.baseOffset, 16);
  batch.writeUInt32LE(h.count, 24);
  batch.writeUInt32LE(h.bodyLength, 28);
  batch.writeDoubleLE(h.maxTsMs, 32);
  batch.writeUInt32LE(crc32(batch.subarray(12, length)), 8);
}

/** One record as decoded: what readers, indexes, compaction and recovery need. */
export interface DecodedEvent {
  kind: 'event';
  offset: number;
  txn: string;
  index: number;
  op: number;
  table: string;
  tsMs: number;
  /** The key JSON bytes: `buf[keyStart, keyEnd)`. */
  keyStart: number;
  keyEnd: number;
  /** The envelope JSON bytes: `buf[envStart, envEnd)`. */
  envStart: number;
  envEnd: number;
  /** The body the offsets above point into (a slice of the file read, or the inflated body). */
  buf: Buffer;
}

export interface DecodedCommit {
  kind: 'commit';
  offset: number;
  txn: string;
  tsMs: number;
  resume: string;
}

export type DecodedRecord = DecodedEvent | DecodedCommit;

/** Thrown by {@link decodeBody} for a body that passed its CRC but does not parse: a bug, not damage. */
export class MalformedBatchError extends Error {}

/**
 * Decode the records of a batch body (already inflated). Calls `each` per offset-taking
 * record, in order. The objects passed are fresh per record (readers keep them).
 */
export function decodeBody(body: Buffer, start: number, end: number, baseOffset: number, each: (r: DecodedRecord) => void): void {
  const tables: string[] = [];
  let txn = '';
  let offset = baseOffset;
  let p = start;
  while (p < end) {
    const kind = body[p]!;
    if (kind === REC_EVENT) {
      const op = body[p + 1]!;
      const table = tables[body.readUInt16LE(p + 2)];
      if (table === undefined) throw new MalformedBatchError(`event at ${p} refers to an unknown table id`);
      const index = body.readUInt32LE(p + 4);
      const tsMs = body.readDoubleLE(p + 8);
      const keyRel = body.readUInt32LE(p + 16);
      const keyLen = body.readUInt32LE(p + 20);
      const envLen = body.readUInt32LE(p + 24);
      const envStart = p + EVENT_FIXED;
      p = envStart + envLen;
      if (keyRel + keyLen > envLen) throw new MalformedBatchError(`event key [${keyRel}, +${keyLen}) lies outside its envelope of ${envLen} bytes`);
      each({ kind: 'event', offset: offset++, txn, index, op, table, tsMs, keyStart: envStart + keyRel, keyEnd: envStart + keyRel + keyLen, envStart, envEnd: p, buf: body });
    } else if (kind === REC_TXN) {
      const len = body.readUInt16LE(p + 1);
      txn = body.toString('utf8', p + 3, p + 3 + len);
      p += 3 + len;
    } else if (kind === REC_TABLE) {
      const id = body.readUInt16LE(p + 1);
      const len = body.readUInt16LE(p + 3);
      tables[id] = body.toString('utf8', p + 5, p + 5 + len);
      p += 5 + len;
    } else if (kind === REC_COMMIT) {
      const tsMs = body.readDoubleLE(p + 1);
      const len = body.readUInt16LE(p + 9);
      const resume = body.toString('utf8', p + 11, p + 11 + len);
      p += 11 + len;
      each({ kind: 'commit', offset: offset++, txn, tsMs, resume });
    } else {
      throw new MalformedBatchError(`unknown record kind ${kind} at ${p}`);
    }
  }
  if (p !== end) throw new MalformedBatchError(`records overrun the body (${p} > ${end})`);
}

/** The op byte of an envelope: every envelope starts with `{"op":"X"`. */
export function opOf(envelope: Buffer, start: number): number {
  return envelope[start + 7]!;
}

export const OP_DELETE = 0x64; // 'd'
export const OP_TRUNCATE = 0x74; // 't'
export const OP_READ = 0x72; // 'r'
