/**
 * Decompression for MySQL TRANSACTION_PAYLOAD (zstd) and MariaDB compressed events (zlib).
 */
import { inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from '@mongodb-js/zstd';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';

/**
 * Inflates a zstd frame and checks its length. MySQL writes a streaming frame with neither
 * content size nor checksum, so a truncated frame can inflate short without any error: the
 * only guard is the uncompressed size logged in the payload header.
 */
export async function inflateZstd(frame: Buffer, expectedSize: number, where: string): Promise<Buffer> {
  let out: Buffer;
  try {
    out = await zstdDecompress(frame);
  } catch (err) {
    throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: zstd payload does not decompress: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (out.length !== expectedSize) {
    throw new TributaryError(
      ErrorCodes.MYSQL_DECODE,
      `${where}: zstd payload inflated to ${out.length} bytes, header says ${expectedSize} (truncated or corrupt frame)`,
    );
  }
  return out;
}

/**
 * Inflates a MariaDB compressed block (`log_bin_compress`): one header byte `0x80 | n`
 * where n (1–4) is the width of the big-endian original length that follows, then a zlib
 * stream. Returns the inflated bytes and how many input bytes the block used (all of it).
 */
export function inflateMariadb(buf: Buffer, start: number, end: number, where: string): Buffer {
  if (end - start < 1) throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: empty compressed block`);
  const h = buf[start]!;
  const lenlen = h & 0x07;
  if ((h & 0x80) === 0 || lenlen < 1 || lenlen > 4 || start + 1 + lenlen > end) {
    throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: bad compressed block header 0x${h.toString(16)}`);
  }
  const origLen = buf.readUIntBE(start + 1, lenlen);
  let out: Buffer;
  try {
    out = inflateSync(buf.subarray(start + 1 + lenlen, end));
  } catch (err) {
    throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: zlib block does not inflate: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (out.length !== origLen) {
    throw new TributaryError(ErrorCodes.MYSQL_DECODE, `${where}: zlib block inflated to ${out.length} bytes, header says ${origLen}`);
  }
  return out;
}
