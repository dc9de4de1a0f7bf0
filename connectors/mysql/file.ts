/**
 * Offline binlog files: framing, decoding, and the JSONL export behind
 * `tributary binlog decode FILE...`.
 *
 * A binlog file is the 4-byte magic `\xfebin` followed by v4 events; each event's size is
 * in its header (offset 9). We read the file in large chunks and hand every complete event
 * to a {@link BinlogDecoder}, so memory stays at one chunk plus the largest event.
 * A file that ends inside an event is reported with one clear coded error.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { BinlogDecoder, type BinlogDecoderOptions, type MysqlSourceItem } from './decoder.js';
import { HEADER_LEN } from './event-header.js';

export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);

const CHUNK = 1 << 20;

/** Decoder options for file decoding (the file name and start offset come from the file). */
export type DecodeFileOptions = Omit<BinlogDecoderOptions, 'emit' | 'file' | 'pos'>;

/**
 * Decodes one binlog file and yields its items in order. Throws `MYSQL_TRUNCATED` when the
 * file ends inside an event, `MYSQL_DECODE` for a bad magic or an impossible event size,
 * and `MYSQL_CHECKSUM` for a CRC32 mismatch.
 */
export async function* decodeBinlogFile(path: string, opts: DecodeFileOptions = {}): AsyncGenerator<MysqlSourceItem> {
  const name = basename(path);
  const pending: MysqlSourceItem[] = [];
  const decoder = new BinlogDecoder({ ...opts, file: name, emit: (i) => pending.push(i) });
  yield* frameFile(path, name, decoder, pending);
}

async function* frameFile(path: string, name: string, decoder: BinlogDecoder, pending: MysqlSourceItem[]): AsyncGenerator<MysqlSourceItem> {
  const fh = await open(path, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    let buf = Buffer.alloc(0);
    let bufStart = 0; // file offset of buf[0]
    let fileOff = 0; // file offset of the next read
    const fill = async (need: number): Promise<void> => {
      // Make sure `need` bytes are available from the current buffer start.
      while (buf.length < need && fileOff < fileSize) {
        const want = Math.max(CHUNK, need - buf.length);
        const chunk = Buffer.allocUnsafe(Math.min(want, fileSize - fileOff));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, fileOff);
        if (bytesRead === 0) break;
        fileOff += bytesRead;
        buf = buf.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
      }
    };
    const truncated = (off: number, needs: number): TributaryError =>
      new TributaryError(
        ErrorCodes.MYSQL_TRUNCATED,
        `${name}: event at offset ${off} is truncated (needs ${needs} bytes, file has ${fileSize - off})`,
        { fix: 'the file is incomplete (still being written, or cut off); decode it again once complete, or re-fetch it' },
      );

    await fill(4);
    if (buf.length < 4 || !buf.subarray(0, 4).equals(BINLOG_MAGIC)) {
      throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${name}: not a binlog file (missing the \\xfebin magic)`);
    }
    let off = 4; // absolute file offset of the next event
    decoder.startFile(name, 4);
    while (off < fileSize) {
      let rel = off - bufStart;
      if (buf.length - rel < HEADER_LEN) {
        buf = buf.subarray(rel);
        bufStart = off;
        rel = 0;
        await fill(HEADER_LEN);
        if (buf.length < HEADER_LEN) throw truncated(off, HEADER_LEN);
      }
      const size = buf.readUInt32LE(rel + 9);
      if (size < HEADER_LEN) {
        throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${name}: event at offset ${off} has an impossible size ${size} (corrupt file)`);
      }
      if (buf.length - rel < size) {
        buf = buf.subarray(rel);
        bufStart = off;
        rel = 0;
        await fill(size);
        if (buf.length < size) throw truncated(off, size);
      }
      const ev = buf.subarray(rel, rel + size);
      const r = decoder.feed(ev, off);
      if (r) await r;
      off += size;
      if (pending.length > 0) {
        for (let i = 0; i < pending.length; i++) yield pending[i]!;
        pending.length = 0;
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * Decodes several files in order with one decoder, so GTID state and positions carry over
 * from file to file (as they do on the server).
 */
export async function* decodeBinlogFiles(paths: readonly string[], opts: DecodeFileOptions = {}): AsyncGenerator<MysqlSourceItem> {
  const pending: MysqlSourceItem[] = [];
  const decoder = new BinlogDecoder({ ...opts, emit: (i) => pending.push(i) });
  for (const p of paths) yield* frameFile(p, basename(p), decoder, pending);
}

export interface DecodeToJsonlOptions extends DecodeFileOptions {
  /** Write `{"kind":"commit",...}` lines too (default false: change events only). */
  includeCommits?: boolean;
  /** Flush threshold in characters (default 1 MiB). */
  flushAt?: number;
}

export interface DecodeStats {
  files: number;
  events: number;
  transactions: number;
}

/**
 * Offline decode of binlog files to JSONL: one change-event envelope per line, written in
 * large buffered chunks that respect the stream's backpressure. Used by
 * `tributary binlog decode FILE...` (which passes `fallbackColumnNames: true`).
 */
export async function decodeBinlogFilesToJsonl(
  paths: readonly string[], out: Writable, opts: DecodeToJsonlOptions = {},
): Promise<DecodeStats> {
  const { includeCommits = false, flushAt = 1 << 20, ...rest } = opts;
  const stats: DecodeStats = { files: paths.length, events: 0, transactions: 0 };
  let chunk = '';
  const flush = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const ok = out.write(chunk);
    chunk = '';
    if (!ok) await new Promise<void>((resolve, reject) => {
      const onDrain = (): void => { out.off('error', onError); resolve(); };
      const onError = (err: Error): void => { out.off('drain', onDrain); reject(err); };
      out.once('drain', onDrain);
      out.once('error', onError);
    });
  };
  for await (const item of decodeBinlogFiles(paths, rest)) {
    if (item.kind === 'event') {
      stats.events++;
      chunk += JSON.stringify(item.event) + '\n';
    } else {
      stats.transactions++;
      if (includeCommits) {
        chunk += JSON.stringify({ kind: 'commit', txn: item.txn.serialize(), resume: item.resume.serialize() }) + '\n';
      }
    }
    if (chunk.length >= flushAt) await flush();
  }
  await flush();
  return stats;
}
