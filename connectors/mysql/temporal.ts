/**
 * MySQL temporal types → DESIGN.md strings.
 *
 * - DATE → `"YYYY-MM-DD"`.
 * - DATETIME / DATETIME2 → `"YYYY-MM-DDTHH:MM:SS[.f]"` with no zone (a DATETIME has none).
 * - TIMESTAMP / TIMESTAMP2 → `"YYYY-MM-DDTHH:MM:SS[.f]Z"`: the stored value is UTC epoch.
 * - TIME / TIME2 → `"[-]HH:MM:SS[.f]"`; hours may exceed 24 (up to 838).
 * - The fraction has exactly the column's fsp digits (what MySQL prints).
 *
 * **Zero dates.** MySQL can store `0000-00-00` (and `0000-00-00 00:00:00`, and TIMESTAMP 0)
 * when NO_ZERO_DATE is off. Such an all-zero value is not a date, so it becomes JSON `null`
 * (as Debezium and Maxwell do). A partly zero date such as `2024-00-00` (allowed without
 * NO_ZERO_IN_DATE) is kept as its digits, since it still carries information.
 *
 * The 2-part formats (DATETIME2, TIME2, TIMESTAMP2) are big-endian; the old ones are
 * little-endian. Values above 2^32 are handled with float arithmetic (exact below 2^53),
 * never with 32-bit shifts.
 *
 * Each value is split into its parts once; `decode…` prints them as a string (row objects),
 * `write…` as the same text in JSON quotes straight into a scratch buffer (serialized
 * envelopes), so the two cannot disagree on a value.
 */

import type { JsonBytes } from '../../src/core/json-bytes.js';

function p2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}
function p4(n: number): string {
  return n < 10 ? '000' + n : n < 100 ? '00' + n : n < 1000 ? '0' + n : String(n);
}

/** `.ffffff` trimmed to `fsp` digits, or '' for fsp 0. */
export function fraction(micros: number, fsp: number): string {
  if (fsp <= 0) return '';
  const s = String(micros).padStart(6, '0');
  return '.' + s.slice(0, fsp);
}

/** Number of fraction bytes stored after a TIME2/DATETIME2/TIMESTAMP2 value. */
export function fracBytes(fsp: number): number {
  return (fsp + 1) >> 1;
}

/**
 * Reads the fractional part (big-endian, `ceil(fsp/2)` bytes) as microseconds. For fsp 1–2
 * the byte counts hundredths, for 3–4 the u16 counts 1/10000ths.
 */
export function readFracMicros(buf: Buffer, off: number, fsp: number): number {
  switch (fracBytes(fsp)) {
    case 1:
      return buf[off]! * 10000;
    case 2:
      return buf.readUInt16BE(off) * 100;
    case 3:
      return buf.readUIntBE(off, 3);
    default:
      return 0;
  }
}

export function formatDate(year: number, month: number, day: number): string | null {
  if (year === 0 && month === 0 && day === 0) return null;
  return `${p4(year)}-${p2(month)}-${p2(day)}`;
}

/**
 * The parts of the value a `split…` function read last: year, month, day, hour, minute,
 * second, microseconds. Module state shared by the string and the byte printers, so one
 * decoding serves both: a value is split into it and printed right away.
 */
const parts = new Float64Array(7);

function setParts(y: number, mo: number, d: number, h: number, mi: number, s: number, micros: number): void {
  parts[0] = y;
  parts[1] = mo;
  parts[2] = d;
  parts[3] = h;
  parts[4] = mi;
  parts[5] = s;
  parts[6] = micros;
}

function zeroParts(): boolean {
  return parts[0] === 0 && parts[1] === 0 && parts[2] === 0 && parts[3] === 0 && parts[4] === 0 && parts[5] === 0 && parts[6] === 0;
}

/** DATE: 3 bytes little-endian, `day | month << 5 | year << 9`. */
function splitDate(buf: Buffer, off: number): void {
  const v = buf.readUIntLE(off, 3);
  setParts(v >>> 9, (v >>> 5) & 15, v & 31, 0, 0, 0, 0);
}

export function decodeDate(buf: Buffer, off: number): string | null {
  splitDate(buf, off);
  return formatDate(parts[0]!, parts[1]!, parts[2]!);
}

/** The {@link parts} as a date-time string (`Z` for UTC), null for the all-zero value. */
function formatParts(fsp: number, zulu: boolean): string | null {
  if (zeroParts()) return null;
  return (
    `${p4(parts[0]!)}-${p2(parts[1]!)}-${p2(parts[2]!)}T${p2(parts[3]!)}:${p2(parts[4]!)}:${p2(parts[5]!)}` +
    `${fraction(parts[6]!, fsp)}${zulu ? 'Z' : ''}`
  );
}

/**
 * DATETIME2: 5 bytes big-endian minus 0x8000000000, then the fraction. The integer packs
 * `((year*13 + month) << 5 | day) << 17 | hour << 12 | minute << 6 | second`.
 */
function splitDatetime2(buf: Buffer, off: number, fsp: number): void {
  const raw = buf.readUIntBE(off, 5) - 0x8000000000;
  const intpart = raw < 0 ? -raw : raw; // negative DATETIME does not exist; be defensive
  const ymd = Math.floor(intpart / 131072); // >> 17
  const hms = intpart % 131072;
  const ym = ymd >>> 5;
  const micros = fsp > 0 ? readFracMicros(buf, off + 5, fsp) : 0;
  setParts(Math.floor(ym / 13), ym % 13, ymd & 31, hms >>> 12, (hms >>> 6) & 63, hms & 63, micros);
}

export function decodeDatetime2(buf: Buffer, off: number, fsp: number): string | null {
  splitDatetime2(buf, off, fsp);
  return formatParts(fsp, false);
}

/** Old DATETIME: u64 little-endian holding the decimal digits YYYYMMDDhhmmss. */
function splitDatetime(buf: Buffer, off: number): void {
  const v = buf.readUInt32LE(off + 4) * 4294967296 + buf.readUInt32LE(off);
  const date = Math.floor(v / 1000000);
  const time = v % 1000000;
  setParts(
    Math.floor(date / 10000), Math.floor(date / 100) % 100, date % 100,
    Math.floor(time / 10000), Math.floor(time / 100) % 100, time % 100, 0,
  );
}

export function decodeDatetime(buf: Buffer, off: number): string | null {
  splitDatetime(buf, off);
  return formatParts(0, false);
}

/** The civil date of the day {@link splitTimestamp} converted last (rows of a table share days). */
let lastDays = NaN;
let lastYear = 0;
let lastMonth = 0;
let lastDay = 0;

/** Epoch seconds + micros → the UTC parts. */
function splitTimestamp(seconds: number, micros: number): void {
  const days = Math.floor(seconds / 86400);
  const sod = seconds - days * 86400;
  if (days !== lastDays) {
    // Civil date from days since the epoch (H. Hinnant's days_from_civil inverse), not a Date
    // object and six getUTC* calls: this runs for every TIMESTAMP value streamed.
    const z = days + 719468;
    const era = Math.floor(z / 146097);
    const doe = z - era * 146097;
    const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    const mp = Math.floor((5 * doy + 2) / 153);
    lastMonth = mp < 10 ? mp + 3 : mp - 9;
    lastYear = yoe + era * 400 + (lastMonth <= 2 ? 1 : 0);
    lastDay = doy - Math.floor((153 * mp + 2) / 5) + 1;
    lastDays = days;
  }
  setParts(lastYear, lastMonth, lastDay, Math.floor(sod / 3600), Math.floor(sod / 60) % 60, sod % 60, micros);
}

/** Epoch seconds + micros → ISO-8601 UTC with `Z`; epoch 0 (MySQL's zero TIMESTAMP) → null. */
export function formatTimestamp(seconds: number, micros: number, fsp: number): string | null {
  if (seconds === 0 && micros === 0) return null;
  splitTimestamp(seconds, micros);
  return formatParts(fsp, true);
}

/** TIMESTAMP2: u32 big-endian epoch seconds, then the fraction. */
export function decodeTimestamp2(buf: Buffer, off: number, fsp: number): string | null {
  return formatTimestamp(buf.readUInt32BE(off), fsp > 0 ? readFracMicros(buf, off + 4, fsp) : 0, fsp);
}

/** Formats a time from its parts; hours are not wrapped at 24. */
export function formatTime(negative: boolean, h: number, m: number, s: number, micros: number, fsp: number): string {
  return `${negative ? '-' : ''}${p2(h)}:${p2(m)}:${p2(s)}${fraction(micros, fsp)}`;
}

/**
 * Unpacks MySQL's "packed time" integer: `(hms << 24) + micros` where
 * `hms = hour << 12 | minute << 6 | second`, negated as a whole for negative times.
 * This is the form TIME2 and JSON opaque TIME values decode to. Fills the time
 * {@link parts}; returns true for a negative time.
 */
function splitPackedTime(packed: number): boolean {
  const negative = packed < 0;
  const v = negative ? -packed : packed;
  const hms = Math.floor(v / 16777216);
  setParts(0, 0, 0, (hms / 4096) % 1024 | 0, (hms >>> 6) & 63, hms & 63, v % 16777216);
  return negative;
}

/** A packed time (see {@link splitPackedTime}) as `[-]HH:MM:SS[.f]`. */
export function formatPackedTime(packed: number, fsp: number): string {
  const negative = splitPackedTime(packed);
  return formatTime(negative, parts[3]!, parts[4]!, parts[5]!, parts[6]!, fsp);
}

/**
 * TIME2: 3 bytes big-endian minus 0x800000 (the integer part, signed), then the fraction.
 * A negative time with a fraction stores the fraction as its complement, so the integer
 * part is one too small: for fsp 1–4 we borrow back. fsp 5–6 read all 6 bytes as one
 * integer minus 0x800000000000, which already is the packed form. Returns the packed form.
 */
function time2Packed(buf: Buffer, off: number, fsp: number): number {
  switch (fracBytes(fsp)) {
    case 0:
      return (buf.readUIntBE(off, 3) - 0x800000) * 16777216;
    case 1: {
      let intpart = buf.readUIntBE(off, 3) - 0x800000;
      let frac = buf[off + 3]!;
      if (intpart < 0 && frac !== 0) {
        intpart++;
        frac -= 0x100;
      }
      return intpart * 16777216 + frac * 10000;
    }
    case 2: {
      let intpart = buf.readUIntBE(off, 3) - 0x800000;
      let frac = buf.readUInt16BE(off + 3);
      if (intpart < 0 && frac !== 0) {
        intpart++;
        frac -= 0x10000;
      }
      return intpart * 16777216 + frac * 100;
    }
    default:
      return buf.readUIntBE(off, 6) - 0x800000000000;
  }
}

export function decodeTime2(buf: Buffer, off: number, fsp: number): string {
  return formatPackedTime(time2Packed(buf, off, fsp), fsp);
}

// ---- The same texts written as JSON into a scratch buffer (the serialized path) -----------

const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000];

/** {@link fraction} as bytes. */
function writeFraction(w: JsonBytes, micros: number, fsp: number): void {
  if (fsp <= 0) return;
  if (fsp <= 6 && micros < 1000000) {
    w.byte(46); // .
    w.padded(Math.floor(micros / POW10[6 - fsp]!), fsp);
  } else w.ascii(fraction(micros, fsp)); // out-of-range fractions (corrupt values): as the string path
}

/** `"YYYY-MM-DD` (opening quote, no closing one) from the {@link parts}. */
function writeDateParts(w: JsonBytes): void {
  w.byte(34);
  w.padded(parts[0]!, 4);
  w.byte(45);
  w.padded(parts[1]!, 2);
  w.byte(45);
  w.padded(parts[2]!, 2);
}

/** `HH:MM:SS[.f]` from the {@link parts}. */
function writeTimeParts(w: JsonBytes, fsp: number): void {
  w.padded(parts[3]!, 2);
  w.byte(58);
  w.padded(parts[4]!, 2);
  w.byte(58);
  w.padded(parts[5]!, 2);
  writeFraction(w, parts[6]!, fsp);
}

/** {@link formatParts} as JSON: the date-time in quotes, or null. */
function writeParts(w: JsonBytes, fsp: number, zulu: boolean): void {
  if (zeroParts()) {
    w.ascii('null');
    return;
  }
  const y = parts[0]!;
  const micros = parts[6]!;
  if (y < 10000 && parts[3]! < 100 && fsp <= 6 && micros < 1000000) {
    // The usual value: every field fits its width, so the bytes are set in one go (month,
    // day, minute and second are below 100 by construction).
    w.ensure(29);
    const b = w.buf;
    let n = w.n;
    b[n++] = 34;
    n = digits(b, n, y, 4);
    b[n++] = 45;
    n = digits(b, n, parts[1]!, 2);
    b[n++] = 45;
    n = digits(b, n, parts[2]!, 2);
    b[n++] = 84; // T
    n = digits(b, n, parts[3]!, 2);
    b[n++] = 58;
    n = digits(b, n, parts[4]!, 2);
    b[n++] = 58;
    n = digits(b, n, parts[5]!, 2);
    if (fsp > 0) {
      b[n++] = 46;
      n = digits(b, n, Math.floor(micros / POW10[6 - fsp]!), fsp);
    }
    if (zulu) b[n++] = 90; // Z
    b[n++] = 34;
    w.n = n;
    return;
  }
  writeDateParts(w);
  w.byte(84); // T
  writeTimeParts(w, fsp);
  if (zulu) w.byte(90); // Z
  w.byte(34);
}

/** Sets `v` (an integer below 10^width) as exactly `width` digits at `b[n]`; returns the end. */
function digits(b: Buffer, n: number, v: number, width: number): number {
  for (let i = n + width - 1; i >= n; i--) {
    const q = (v / 10) | 0;
    b[i] = 48 + v - q * 10;
    v = q;
  }
  return n + width;
}

/** {@link decodeDate} as JSON. */
export function writeDate(w: JsonBytes, buf: Buffer, off: number): void {
  splitDate(buf, off);
  if (zeroParts()) w.ascii('null');
  else {
    writeDateParts(w);
    w.byte(34);
  }
}

/** {@link decodeDatetime2} as JSON. */
export function writeDatetime2(w: JsonBytes, buf: Buffer, off: number, fsp: number): void {
  splitDatetime2(buf, off, fsp);
  writeParts(w, fsp, false);
}

/** {@link decodeDatetime} as JSON. */
export function writeDatetime(w: JsonBytes, buf: Buffer, off: number): void {
  splitDatetime(buf, off);
  writeParts(w, 0, false);
}

/** {@link formatTimestamp} as JSON. */
export function writeTimestamp(w: JsonBytes, seconds: number, micros: number, fsp: number): void {
  if (seconds === 0 && micros === 0) {
    w.ascii('null');
    return;
  }
  splitTimestamp(seconds, micros);
  writeParts(w, fsp, true);
}

/** {@link decodeTimestamp2} as JSON. */
export function writeTimestamp2(w: JsonBytes, buf: Buffer, off: number, fsp: number): void {
  writeTimestamp(w, buf.readUInt32BE(off), fsp > 0 ? readFracMicros(buf, off + 4, fsp) : 0, fsp);
}

/** {@link decodeTime2} as JSON. */
export function writeTime2(w: JsonBytes, buf: Buffer, off: number, fsp: number): void {
  const negative = splitPackedTime(time2Packed(buf, off, fsp));
  w.byte(34);
  if (negative) w.byte(45);
  writeTimeParts(w, fsp);
  w.byte(34);
}

/** Old TIME: 3 bytes little-endian signed, decimal digits HHMMSS. */
export function decodeTime(buf: Buffer, off: number): string {
  const v = buf.readIntLE(off, 3);
  const a = v < 0 ? -v : v;
  return formatTime(v < 0, Math.floor(a / 10000), Math.floor(a / 100) % 100, a % 100, 0, 0);
}

/**
 * A packed DATETIME (used by JSON opaque DATE/DATETIME/TIMESTAMP values): `(ymdhms << 24) +
 * micros` with `ymdhms = ymd << 17 | hms`, `ymd = (year*13 + month) << 5 | day`.
 * Returned as MySQL's JSON printer does: DATE as `YYYY-MM-DD`, the others as
 * `YYYY-MM-DD HH:MM:SS.ffffff` (always 6 digits).
 */
export function formatPackedDatetime(packed: bigint, dateOnly: boolean): string {
  const v = packed < 0n ? -packed : packed;
  const micros = Number(v & 0xffffffn);
  const ymdhms = Number(v >> 24n);
  const ymd = Math.floor(ymdhms / 131072);
  const hms = ymdhms % 131072;
  const ym = ymd >>> 5;
  const date = `${p4(Math.floor(ym / 13))}-${p2(ym % 13)}-${p2(ymd & 31)}`;
  if (dateOnly) return date;
  return `${date} ${p2(hms >>> 12)}:${p2((hms >>> 6) & 63)}:${p2(hms & 63)}.${String(micros).padStart(6, '0')}`;
}
