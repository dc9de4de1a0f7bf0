/**
 * MySQL binary NEWDECIMAL → exact decimal string.
 *
 * The value is split into an integer part of `precision - scale` digits and a fraction of
 * `scale` digits. Each part is stored as big-endian groups of 9 decimal digits in 4 bytes,
 * plus one leading (integer) or trailing (fraction) partial group of 1–4 bytes. The very
 * first bit is a flipped sign bit (1 = non-negative); a negative value has every byte
 * inverted. We undo both while reading, without copying the bytes.
 */

/** Bytes needed for 0..9 leftover digits. */
const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** Size in bytes of a NEWDECIMAL(precision, scale) value. */
export function decimalBinarySize(precision: number, scale: number): number {
  const intg = precision - scale;
  return ((intg / 9) | 0) * 4 + DIG2BYTES[intg % 9]! + ((scale / 9) | 0) * 4 + DIG2BYTES[scale % 9]!;
}

/** One big-endian digit group of `n` bytes, un-inverted and with the sign bit restored. */
function group(buf: Buffer, p: number, n: number, mask: number, first: number): number {
  let v = 0;
  for (let i = 0; i < n; i++, p++) {
    let b = buf[p]! ^ mask;
    if (p === first) b ^= 0x80;
    v = v * 256 + b;
  }
  return v;
}

/**
 * Decodes the NEWDECIMAL at `buf[off..]` into a string exactly as MySQL prints it: the
 * scale's digits always present (`"12.30"`), a leading `"0"` for |x| < 1, `"-"` for negative
 * non-zero values.
 */
export function decodeDecimal(buf: Buffer, off: number, precision: number, scale: number): string {
  const intg = precision - scale;
  const intg0 = (intg / 9) | 0;
  const intg0x = intg % 9;
  const frac0 = (scale / 9) | 0;
  const frac0x = scale % 9;
  const negative = (buf[off]! & 0x80) === 0;
  // XOR mask applied to every byte: inverts a negative value back to its magnitude.
  const mask = negative ? 0xff : 0;
  const first = off;
  let p = off;

  let intStr = '';
  if (intg0x > 0) {
    const n = DIG2BYTES[intg0x]!;
    const v = group(buf, p, n, mask, first);
    p += n;
    if (v !== 0) intStr = String(v);
  }
  for (let i = 0; i < intg0; i++) {
    const v = group(buf, p, 4, mask, first);
    p += 4;
    intStr = intStr.length === 0 ? (v === 0 ? '' : String(v)) : intStr + String(v).padStart(9, '0');
  }
  if (intStr.length === 0) intStr = '0';

  let fracStr = '';
  for (let i = 0; i < frac0; i++, p += 4) fracStr += String(group(buf, p, 4, mask, first)).padStart(9, '0');
  if (frac0x > 0) fracStr += String(group(buf, p, DIG2BYTES[frac0x]!, mask, first)).padStart(frac0x, '0');

  const isZero = intStr === '0' && !/[1-9]/.test(fracStr);
  const sign = negative && !isZero ? '-' : '';
  return scale > 0 ? `${sign}${intStr}.${fracStr}` : `${sign}${intStr}`;
}

/** Encodes a decimal string into MySQL binary NEWDECIMAL (used by tests and fixtures). */
export function encodeDecimal(value: string, precision: number, scale: number): Buffer {
  const negative = value.startsWith('-');
  const [ip = '0', fp = ''] = (negative ? value.slice(1) : value).split('.');
  const intg = precision - scale;
  const intDigits = ip.padStart(intg, '0');
  const fracDigits = fp.padEnd(scale, '0');
  const out = Buffer.alloc(decimalBinarySize(precision, scale));
  let p = 0;
  const put = (digits: string, nbytes: number): void => {
    let v = Number(digits || '0');
    for (let i = nbytes - 1; i >= 0; i--) {
      out[p + i] = v % 256;
      v = Math.floor(v / 256);
    }
    p += nbytes;
  };
  const intg0x = intg % 9;
  let k = 0;
  if (intg0x > 0) {
    put(intDigits.slice(0, intg0x), DIG2BYTES[intg0x]!);
    k = intg0x;
  }
  for (; k < intg; k += 9) put(intDigits.slice(k, k + 9), 4);
  const frac0 = (scale / 9) | 0;
  for (let i = 0; i < frac0; i++) put(fracDigits.slice(i * 9, i * 9 + 9), 4);
  if (scale % 9 > 0) put(fracDigits.slice(frac0 * 9), DIG2BYTES[scale % 9]!);
  out[0]! ^= 0x80;
  if (negative) for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ 0xff;
  return out;
}
