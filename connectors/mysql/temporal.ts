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
 */

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

/** DATE: 3 bytes little-endian, `day | month << 5 | year << 9`. */
export function decodeDate(buf: Buffer, off: number): string | null {
  const v = buf.readUIntLE(off, 3);
  return formatDate(v >>> 9, (v >>> 5) & 15, v & 31);
}

function formatDateTime(
  y: number, mo: number, d: number, h: number, mi: number, s: number, micros: number, fsp: number, zulu: boolean,
): string | null {
  if (y === 0 && mo === 0 && d === 0 && h === 0 && mi === 0 && s === 0 && micros === 0) return null;
  return `${p4(y)}-${p2(mo)}-${p2(d)}T${p2(h)}:${p2(mi)}:${p2(s)}${fraction(micros, fsp)}${zulu ? 'Z' : ''}`;
}

/**
 * DATETIME2: 5 bytes big-endian minus 0x8000000000, then the fraction. The integer packs
 * `((year*13 + month) << 5 | day) << 17 | hour << 12 | minute << 6 | second`.
 */
export function decodeDatetime2(buf: Buffer, off: number, fsp: number): string | null {
  const raw = buf.readUIntBE(off, 5) - 0x8000000000;
  const intpart = raw < 0 ? -raw : raw; // negative DATETIME does not exist; be defensive
  const ymd = Math.floor(intpart / 131072); // >> 17
  const hms = intpart % 131072;
  const ym = ymd >>> 5;
  const micros = fsp > 0 ? readFracMicros(buf, off + 5, fsp) : 0;
  return formatDateTime(
    Math.floor(ym / 13), ym % 13, ymd & 31, hms >>> 12, (hms >>> 6) & 63, hms & 63, micros, fsp, false,
  );
}

/** Old DATETIME: u64 little-endian holding the decimal digits YYYYMMDDhhmmss. */
export function decodeDatetime(buf: Buffer, off: number): string | null {
  const v = buf.readUInt32LE(off + 4) * 4294967296 + buf.readUInt32LE(off);
  const date = Math.floor(v / 1000000);
  const time = v % 1000000;
  return formatDateTime(
    Math.floor(date / 10000), Math.floor(date / 100) % 100, date % 100,
    Math.floor(time / 10000), Math.floor(time / 100) % 100, time % 100, 0, 0, false,
  );
}

/** Epoch seconds + micros → ISO-8601 UTC with `Z`; epoch 0 (MySQL's zero TIMESTAMP) → null. */
export function formatTimestamp(seconds: number, micros: number, fsp: number): string | null {
  if (seconds === 0 && micros === 0) return null;
  // Civil date from days since the epoch (H. Hinnant's days_from_civil inverse), not a Date
  // object and six getUTC* calls: this runs for every TIMESTAMP value streamed.
  const days = Math.floor(seconds / 86400);
  const sod = seconds - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return formatDateTime(
    year, month, doy - Math.floor((153 * mp + 2) / 5) + 1, Math.floor(sod / 3600), Math.floor(sod / 60) % 60, sod % 60,
    micros, fsp, true,
  );
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
 * This is the form TIME2 and JSON opaque TIME values decode to.
 */
export function formatPackedTime(packed: number, fsp: number): string {
  const negative = packed < 0;
  const v = negative ? -packed : packed;
  const hms = Math.floor(v / 16777216);
  const micros = v % 16777216;
  return formatTime(negative, (hms / 4096) % 1024 | 0, (hms >>> 6) & 63, hms & 63, micros, fsp);
}

/**
 * TIME2: 3 bytes big-endian minus 0x800000 (the integer part, signed), then the fraction.
 * A negative time with a fraction stores the fraction as its complement, so the integer
 * part is one too small: for fsp 1–4 we borrow back. fsp 5–6 read all 6 bytes as one
 * integer minus 0x800000000000, which already is the packed form.
 */
export function decodeTime2(buf: Buffer, off: number, fsp: number): string {
  let packed: number;
  switch (fracBytes(fsp)) {
    case 0:
      packed = (buf.readUIntBE(off, 3) - 0x800000) * 16777216;
      break;
    case 1: {
      let intpart = buf.readUIntBE(off, 3) - 0x800000;
      let frac = buf[off + 3]!;
      if (intpart < 0 && frac !== 0) {
        intpart++;
        frac -= 0x100;
      }
      packed = intpart * 16777216 + frac * 10000;
      break;
    }
    case 2: {
      let intpart = buf.readUIntBE(off, 3) - 0x800000;
      let frac = buf.readUInt16BE(off + 3);
      if (intpart < 0 && frac !== 0) {
        intpart++;
        frac -= 0x10000;
      }
      packed = intpart * 16777216 + frac * 100;
      break;
    }
    default:
      packed = buf.readUIntBE(off, 6) - 0x800000000000;
  }
  return formatPackedTime(packed, fsp);
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
