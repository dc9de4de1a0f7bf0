/**
 * A JSON text written as bytes into a reusable scratch buffer, turned into one string at the
 * end.
 *
 * Why: an envelope built by string concatenation is a tree of dozens of small strings (one
 * per value, name and separator). Each is an allocation, and the tree must be flattened
 * again before it is written anywhere. Copying the wire bytes of a value straight into a
 * scratch buffer, and making one flat string per envelope, does a fraction of the work: the
 * text values of pgoutput already are their JSON text (numbers, jsonb) or need only quotes
 * (dates, numerics, uuids) or escaping (text).
 */
export class JsonBytes {
  buf: Buffer;
  /** End of the bytes written so far. */
  n = 0;
  /**
   * Where the text being written starts. Always 0 for a scratch writer; an arena writer
   * keeps finished texts in `buf` and starts the next one after them (see {@link seal}).
   */
  mark = 0;
  /**
   * Where the `key` value of the envelope being written starts and ends, relative to `mark`
   * (-1: not noted). Relative, because an arena writer moves an unfinished text to a new slab.
   * The log's key index takes it from here instead of searching the envelope for it.
   */
  keyFrom = -1;
  keyTo = -1;

  /**
   * `arena`: keep each finished text's bytes where they were written, for the text's owner
   * to hold on to (a serialized envelope, byte-backed: see SerializedChangeEvent.fromBytes),
   * instead of making a string of them. `size` is then the size of each slab.
   *
   * Why: an envelope held as a string lives in the young generation until every sink has
   * written it, so at 200k+ events/s each scavenge copies, and then promotes, the whole
   * stream's worth of strings (a fifth of the process). Bytes in an ArrayBuffer are never
   * moved by the GC, writing them in place costs no copy, and a sink that writes bytes (jsonl)
   * never needs a string at all. A slab is collected once no event refers to it.
   */
  constructor(
    size = 64 * 1024,
    private readonly arena = false,
  ) {
    this.buf = arena ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
  }

  /** Start the text again (drop what was written since the last seal). */
  reset(): void {
    this.n = this.mark;
    this.keyFrom = -1;
    this.keyTo = -1;
  }

  /**
   * Arena mode: the text `buf[mark, n)` is finished and will be kept; the next text starts
   * after it. Read `buf` and `mark` before calling.
   */
  seal(): void {
    this.mark = this.n;
    // A key range belongs to the text just finished; the next one notes its own.
    this.keyFrom = -1;
    this.keyTo = -1;
  }

  /** Room for `k` more bytes. */
  ensure(k: number): void {
    if (this.n + k <= this.buf.length) return;
    if (this.arena) {
      // A fresh slab: move only the unfinished text; finished texts stay where their owners
      // hold them. Offsets into the text are relative to `mark`, so they stay valid.
      const len = this.n - this.mark;
      const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length, len + k + 1024));
      this.buf.copy(next, 0, this.mark, this.n);
      this.buf = next;
      this.mark = 0;
      this.n = len;
      return;
    }
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + k + 1024));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.n++] = b;
  }

  /** Bytes copied as they are (already JSON text). */
  raw(src: Buffer, s: number, e: number): void {
    this.ensure(e - s);
    this.n = copyBytes(src, s, e, this.buf, this.n);
  }

  /** Bytes between quotes, with nothing to escape (digits, dates, uuids). */
  quoted(src: Buffer, s: number, e: number): void {
    this.ensure(e - s + 2);
    const b = this.buf;
    b[this.n++] = 34;
    this.n = copyBytes(src, s, e, b, this.n);
    b[this.n++] = 34;
  }

  /** A JSON string from UTF-8 bytes: quotes, backslashes and control characters escaped. */
  string(src: Buffer, s: number, e: number): void {
    let i = s;
    while (i < e) {
      const c = src[i]!;
      if (c < 0x20 || c === 34 || c === 92) break;
      i++;
    }
    if (i === e) {
      this.quoted(src, s, e);
      return;
    }
    // Something to escape: at most 6 bytes (\u00XX) per input byte.
    this.ensure((e - s) * 6 + 2);
    const b = this.buf;
    b[this.n++] = 34;
    this.n = copyBytes(src, s, i, b, this.n);
    for (; i < e; i++) {
      const c = src[i]!;
      if (c >= 0x20 && c !== 34 && c !== 92) {
        b[this.n++] = c;
        continue;
      }
      b[this.n++] = 92;
      switch (c) {
        case 34: b[this.n++] = 34; break;
        case 92: b[this.n++] = 92; break;
        case 8: b[this.n++] = 98; break; // \b
        case 9: b[this.n++] = 116; break; // \t
        case 10: b[this.n++] = 110; break; // \n
        case 12: b[this.n++] = 102; break; // \f
        case 13: b[this.n++] = 114; break; // \r
        default:
          b[this.n++] = 117; // \u00XX
          b[this.n++] = 48;
          b[this.n++] = 48;
          b[this.n++] = HEX[c >> 4]!;
          b[this.n++] = HEX[c & 15]!;
      }
    }
    b[this.n++] = 34;
  }

  /** ASCII text (JSON punctuation, names serialized once, numbers). */
  ascii(t: string): void {
    this.ensure(t.length);
    this.n += this.buf.write(t, this.n, 'latin1');
  }

  /** Any text that is already JSON (the output of a string encoder). */
  text(t: string): void {
    this.ensure(t.length * 3);
    this.n += this.buf.write(t, this.n, 'utf8');
  }

  /** A non-negative integer below 2^53, in decimal. */
  uint(v: number): void {
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    this.ensure(digits);
    const b = this.buf;
    let i = this.n + digits;
    this.n = i;
    do {
      const q = Math.floor(v / 10);
      b[--i] = 48 + (v - q * 10);
      v = q;
    } while (v > 0);
  }

  /** A uint32 in upper-case hexadecimal, without leading zeros (how Postgres prints LSNs). */
  hex(v: number): void {
    let digits = 1;
    for (let x = v >>> 4; x > 0; x >>>= 4) digits++;
    this.ensure(digits);
    const b = this.buf;
    let i = this.n + digits;
    this.n = i;
    do {
      b[--i] = HEX_UPPER[v & 15]!;
      v >>>= 4;
    } while (v > 0);
  }

  /** A non-negative integer below 2^53, in decimal, zero-padded to at least `width` digits. */
  padded(v: number, width: number): void {
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    if (digits < width) {
      this.ensure(width);
      for (let k = width - digits; k > 0; k--) this.buf[this.n++] = 48;
    }
    this.uint(v);
  }

  /** An integer of magnitude below 2^53, in decimal (`-0` as `0`, as JSON.stringify writes it). */
  int(v: number): void {
    if (v < 0) {
      this.byte(45); // -
      v = -v;
    }
    if (v >= 2147483648) {
      this.uint(v);
      return;
    }
    // Below 2^31 (most column values, row numbers): 32-bit integer division.
    let digits = 1;
    for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
    this.ensure(digits);
    const b = this.buf;
    let i = this.n + digits;
    this.n = i;
    do {
      const q = (v / 10) | 0;
      b[--i] = 48 + v - q * 10;
      v = q;
    } while (v > 0);
  }

  /** Any number as JSON.stringify writes it: integers as digits, NaN and ±Infinity as null. */
  number(v: number): void {
    if (Number.isSafeInteger(v)) this.int(v);
    else if (Number.isFinite(v)) this.ascii(String(v));
    else this.ascii('null');
  }

  /**
   * A valid JSON text (a json value as the database holds it) copied so that an envelope
   * stays on one line and every number keeps its digits: as it is when it holds no line
   * break (the usual case, found with one scan), else compacted by {@link compactJson}.
   */
  json(src: Buffer, s: number, e: number): void {
    if (e - s < 256) {
      // Short texts: copied and checked in one pass (the check costs a compare per byte).
      this.ensure(e - s);
      const b = this.buf;
      let n = this.n;
      let lineBreak = false;
      for (let i = s; i < e; i++) {
        const c = src[i]!;
        b[n++] = c;
        if (c <= 13 && (c === 10 || c === 13)) lineBreak = true;
      }
      if (!lineBreak) this.n = n;
      else this.compactJson(src, s, e);
      return;
    }
    if (hasLineBreak(src, s, e)) this.compactJson(src, s, e);
    else this.raw(src, s, e);
  }

  /**
   * A valid JSON text without its insignificant whitespace (spaces, tabs, CR and LF between
   * tokens): the text is only copied, never parsed, so numbers keep every digit (`1e400`,
   * `-0`, 30-digit integers) and keys their order and duplicates.
   */
  compactJson(src: Buffer, s: number, e: number): void {
    this.ensure(e - s);
    const b = this.buf;
    let n = this.n;
    let inString = false;
    for (let i = s; i < e; i++) {
      const c = src[i]!;
      if (inString) {
        b[n++] = c;
        if (c === 92 /* \ */) b[n++] = src[++i]!;
        else if (c === 34) inString = false;
      } else if (c !== 32 && c !== 10 && c !== 13 && c !== 9) {
        b[n++] = c;
        if (c === 34) inString = true;
      }
    }
    this.n = n;
  }

  /**
   * A float as JSON: as {@link number} writes it, but a negative zero keeps its sign (`-0`,
   * which JSON.parse reads back as -0; JSON.stringify would write `0`).
   */
  float(v: number): void {
    if (v === 0 && 1 / v < 0) this.ascii('-0');
    else this.number(v);
  }

  /** The bytes from `start` as one flat string. */
  toString(start = 0, end = this.n): string {
    return this.buf.toString('utf8', start, end);
  }
}

/**
 * True when `b[s, e)` holds a CR or LF byte. In valid JSON text those are only ever
 * whitespace between tokens (a raw one inside a string is invalid), so a text without one
 * can be copied into a JSON line as it is. Long texts are searched natively.
 */
export function hasLineBreak(b: Buffer, s: number, e: number): boolean {
  if (e - s < 128) {
    for (let i = s; i < e; i++) {
      const c = b[i]!;
      if (c <= 13 && (c === 10 || c === 13)) return true;
    }
    return false;
  }
  // Natively, from `s` on (a view of the range would cost an allocation): a hit past `e` is
  // none in the range. The buffer is one message or row, so the scan stays short.
  const lf = b.indexOf(10, s);
  if (lf >= 0 && lf < e) return true;
  const cr = b.indexOf(13, s);
  return cr >= 0 && cr < e;
}

/** {@link JsonBytes.json} for a JSON text held as a string: the text, on one line. */
export function oneLineJson(text: string): string {
  if (text.indexOf('\n') < 0 && text.indexOf('\r') < 0) return text;
  const b = Buffer.from(text, 'utf8');
  const w = new JsonBytes(b.length);
  w.compactJson(b, 0, b.length);
  return w.toString();
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
const HEX_UPPER = Buffer.from('0123456789ABCDEF', 'latin1');

/**
 * Copies src[s, e) to dst at `at`, returning the end. Short runs (most values: numbers,
 * names, punctuation) in a loop; a native copy's call costs more than a few bytes do.
 */
function copyBytes(src: Buffer, s: number, e: number, dst: Buffer, at: number): number {
  if (e - s < 48) {
    for (let i = s; i < e; i++) dst[at++] = src[i]!;
    return at;
  }
  return at + src.copy(dst, at, s, e);
}
