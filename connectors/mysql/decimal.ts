/**
 * MySQL binary NEWDECIMAL → exact decimal string.
 *
 * The value is split into an integer part of `precision - scale` digits and a fraction of
 * `scale` digits. Each part is stored as big-endian groups of 9 decimal digits in 4 bytes,
 * plus one leading (integer) or trailing (fraction) partial group of 1–4 bytes. The very
 * first bit is a flipped sign bit (1 = non-negative); a negative value has every byte
 * inverted. We undo both while reading, without copying the bytes. The digit groups are
 * read once and printed either as a string ({@link decodeDecimal}) or as JSON bytes into a
 * scratch buffer ({@link writeDecimal}).
 */

import type { JsonBytes } from '../../src/core/json-bytes.js';

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
 * The digit groups of the value {@link readDecimal} read last, most significant first:
 * `intGroups` integer groups (a leading partial one, then groups of 9 digits), then the
 * fraction's (groups of 9, then a trailing partial one of `frac0x` digits). Module state
 * shared by the two printers, so a value is read into it and printed right away.
 */
const groups: number[] = [];
let intGroups = 0;
let fracGroups = 0;
let frac0x = 0;

/**
 * Reads the NEWDECIMAL at `buf[off..]` into {@link groups}; returns true when it prints with
 * a minus sign (negative and not zero).
 */
function readDecimal(buf: Buffer, off: number, precision: number, scale: number): boolean {
  const intg = precision - scale;
  const intg0 = (intg / 9) | 0;
  const intg0x = intg % 9;
  const frac0 = (scale / 9) | 0;
  frac0x = scale % 9;
  const negative = (buf[off]! & 0x80) === 0;
  // XOR mask applied to every byte: inverts a negative value back to its magnitude.
  const mask = negative ? 0xff : 0;
  let p = off;
  let g = 0;
  let nonZero = false;
  if (intg0x > 0) {
    const n = DIG2BYTES[intg0x]!;
    nonZero = (groups[g++] = group(buf, p, n, mask, off)) !== 0;
    p += n;
  }
  for (let i = 0; i < intg0; i++, p += 4) if ((groups[g++] = group(buf, p, 4, mask, off)) !== 0) nonZero = true;
  intGroups = g;
  for (let i = 0; i < frac0; i++, p += 4) if ((groups[g++] = group(buf, p, 4, mask, off)) !== 0) nonZero = true;
  if (frac0x > 0 && (groups[g++] = group(buf, p, DIG2BYTES[frac0x]!, mask, off)) !== 0) nonZero = true;
  fracGroups = g - intGroups;
  return negative && nonZero;
}

/** Digits a fraction group prints with: 9, or {@link frac0x} for the trailing partial one. */
function fracWidth(j: number): number {
  return j === fracGroups - 1 && frac0x > 0 ? frac0x : 9;
}

/**
 * Decodes the NEWDECIMAL at `buf[off..]` into a string exactly as MySQL prints it: the
 * scale's digits always present (`"12.30"`), a leading `"0"` for |x| < 1, `"-"` for negative
 * non-zero values.
 */
export function decodeDecimal(buf: Buffer, off: number, precision: number, scale: number): string {
  let s = readDecimal(buf, off, precision, scale) ? '-' : '';
  // Leading zero groups print nothing; the first non-zero one without padding.
  let started = false;
  for (let j = 0; j < intGroups; j++) {
    const v = groups[j]!;
    if (started) s += String(v).padStart(9, '0');
    else if (v !== 0) {
      s += String(v);
      started = true;
    }
  }
  if (!started) s += '0';
  if (scale > 0) {
    s += '.';
    for (let j = 0; j < fracGroups; j++) s += String(groups[intGroups + j]!).padStart(fracWidth(j), '0');
  }
  return s;
}

/**
 * Writes the NEWDECIMAL at `buf[off..]` into `w` as a JSON string, the text of
 * {@link decodeDecimal} in quotes, without making that string.
 */
export function writeDecimal(w: JsonBytes, buf: Buffer, off: number, precision: number, scale: number): void {
  w.byte(34);
  if (readDecimal(buf, off, precision, scale)) w.byte(45);
  let started = false;
  for (let j = 0; j < intGroups; j++) {
    const v = groups[j]!;
    if (started) w.padded(v, 9);
    else if (v !== 0) {
      w.int(v);
      started = true;
    }
  }
  if (!started) w.byte(48);
  if (scale > 0) {
    w.byte(46);
    for (let j = 0; j < fracGroups; j++) w.padded(groups[intGroups + j]!, fracWidth(j));
  }
  w.byte(34);
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
