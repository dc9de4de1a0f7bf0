/**
 * A Buffer + offset cursor for little-endian binlog structures.
 *
 * Every binlog parser in this folder reads through one `Reader` over the event Buffer, so
 * nothing is copied until a value is materialised. Bounds are checked once per read with a
 * single comparison against `end`; a short read throws a coded `MYSQL_DECODE` error instead
 * of silently returning garbage (Buffer reads past the end would otherwise throw RangeError
 * without context).
 */
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';

const TWO_32 = 4294967296;

export class Reader {
  /** Current read offset into `buf`. */
  pos: number;
  /** Exclusive end of the readable region (for example, before a CRC32 trailer). */
  end: number;

  constructor(
    readonly buf: Buffer,
    pos = 0,
    end = buf.length,
  ) {
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws unless `n` more bytes are readable. */
  need(n: number): void {
    if (this.pos + n > this.end) {
      throw new TributaryError(
        ErrorCodes.MYSQL_DECODE,
        `binlog structure is short: needs ${n} bytes at offset ${this.pos}, has ${this.end - this.pos}`,
      );
    }
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Unsigned little-endian integer of 1..6 bytes (table ids are 6 bytes). */
  uintLE(n: number): number {
    this.need(n);
    const v = this.buf.readUIntLE(this.pos, n);
    this.pos += n;
    return v;
  }

  /** u64 as a JS number; exact up to 2^53, which covers positions, sizes and ids in practice. */
  u64n(): number {
    this.need(8);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    return hi * TWO_32 + lo;
  }

  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** MySQL length-encoded integer (0xfb is NULL in result sets, never in binlog metadata). */
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) return this.u24();
    if (first === 0xfe) return this.u64n();
    throw new TributaryError(ErrorCodes.MYSQL_DECODE, `invalid length-encoded integer prefix 0x${first.toString(16)} at offset ${this.pos - 1}`);
  }

  /** A sub-Buffer view (no copy). */
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  str(n: number, enc: BufferEncoding = 'utf8'): string {
    this.need(n);
    const s = this.buf.toString(enc, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  lenencStr(): string {
    return this.str(this.lenenc());
  }

  /** A NUL-terminated string; the NUL is consumed. */
  cstr(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) {
      throw new TributaryError(ErrorCodes.MYSQL_DECODE, `unterminated string at offset ${this.pos}`);
    }
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** Rest of the readable region as a string. */
  restStr(enc: BufferEncoding = 'utf8'): string {
    return this.str(this.end - this.pos, enc);
  }

  /**
   * A variable-length unsigned integer of the MySQL serialization library (tagged GTIDs):
   * the count of trailing one bits in the first byte says how many more bytes follow, and
   * the little-endian value is shifted right by the total byte count.
   */
  varlenUint(): number {
    const first = this.u8();
    let extra = 0;
    while (extra < 8 && ((first >> extra) & 1) === 1) extra++;
    if (extra === 0) return first >> 1;
    this.need(extra);
    if (extra === 8) {
      const v = this.buf.readBigUInt64LE(this.pos);
      this.pos += 8;
      return Number(v);
    }
    let v = BigInt(first);
    for (let i = 0; i < extra; i++) v |= BigInt(this.buf[this.pos + i]!) << BigInt(8 * (i + 1));
    this.pos += extra;
    return Number(v >> BigInt(extra + 1));
  }

  /** Zig-zag signed variant of {@link varlenUint}. */
  varlenInt(): number {
    const u = this.varlenUint();
    // Halving instead of shifting keeps values above 2^31 exact.
    return u % 2 === 1 ? -(u - 1) / 2 - 1 : u / 2;
  }
}
