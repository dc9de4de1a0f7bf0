/**
 * JSON text columns (MariaDB's JSON is LONGTEXT) on the serialized path.
 *
 * A document that is valid JSON is embedded in the envelope as it is (compacted when it
 * spans lines): nothing is parsed and printed again, so its numbers keep every digit, also
 * beyond double range (`1e400`, `123456789012345678901234567890`) and `-0`, as DESIGN.md
 * asks of json values. Text that is not JSON stays a string. Checking validity with a scan
 * is several times cheaper than parsing, and allocates nothing.
 *
 * The scan reads the column's UTF-8 bytes straight from the binlog, not a decoded string:
 * every byte that JSON gives a meaning to is ASCII, so bytes of 0x80 and above can only be
 * valid inside strings, where they are copied as they are. Malformed UTF-8 there becomes
 * U+FFFD when the envelope is decoded, exactly as when the column alone is decoded (the
 * closing quote, ASCII, ends any broken sequence in both cases).
 */

/** Container kinds on the scan stack. */
const OBJ = 1;
const ARR = 2;
/** Open containers of the document being scanned; grows for deeply nested documents. */
let stack = new Uint8Array(256);

/** Set by {@link ws} when it skips a CR or LF (see {@link embeddableJsonBytes}). */
let lineBreak = false;

/** The byte at `i`, or -1 at and past the end `e`. */
function at(b: Buffer, i: number, e: number): number {
  return i < e ? b[i]! : -1;
}

function ws(b: Buffer, i: number, e: number): number {
  for (; i < e; i++) {
    const c = b[i]!;
    if (c === 0x0a || c === 0x0d) lineBreak = true;
    else if (c !== 0x20 && c !== 0x09) return i;
  }
  return i;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** The end of the string token whose opening quote is at `i`, or -1 when it is invalid. */
function str(b: Buffer, i: number, e: number): number {
  for (i++; i < e; ) {
    const c = b[i]!;
    if (c === 0x22) return i + 1;
    if (c === 0x5c) {
      const x = at(b, i + 1, e);
      if (x === 0x75) {
        if (i + 5 >= e || !isHex(b[i + 2]!) || !isHex(b[i + 3]!) || !isHex(b[i + 4]!) || !isHex(b[i + 5]!)) return -1;
        i += 6;
      } else if (x === 0x22 || x === 0x5c || x === 0x2f || x === 0x62 || x === 0x66 || x === 0x6e || x === 0x72 || x === 0x74) i += 2;
      else return -1;
    } else if (c < 0x20) return -1; // control character
    else i++;
  }
  return -1; // no closing quote
}

function digits(b: Buffer, i: number, e: number): number {
  while (i < e && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  return i;
}

/** The end of the number token at `i`, or -1 when it is not a JSON number. Any size is valid. */
function num(b: Buffer, i: number, e: number): number {
  if (b[i] === 0x2d) i++;
  const c = at(b, i, e);
  if (c === 0x30) i++;
  else if (c >= 0x31 && c <= 0x39) i = digits(b, i + 1, e);
  else return -1;
  if (at(b, i, e) === 0x2e) {
    const j = digits(b, i + 1, e);
    if (j === i + 1) return -1;
    i = j;
  }
  const x = at(b, i, e);
  if (x === 0x65 || x === 0x45) {
    i++;
    const sign = at(b, i, e);
    if (sign === 0x2b || sign === 0x2d) i++;
    const j = digits(b, i, e);
    if (j === i) return -1;
    i = j;
  }
  return i;
}

/** True when `b[i..]` (before `e`) starts with the ASCII word `w`. */
function word(b: Buffer, i: number, e: number, w: string): boolean {
  if (i + w.length > e) return false;
  for (let k = 0; k < w.length; k++) if (b[i + k] !== w.charCodeAt(k)) return false;
  return true;
}

/** After an object's `{` or `,`: a key string and its colon. The offset after them, or -1. */
function member(b: Buffer, i: number, e: number): number {
  if (at(b, i, e) !== 0x22 || (i = str(b, i, e)) < 0) return -1;
  i = ws(b, i, e);
  if (at(b, i, e) !== 0x3a) return -1;
  return ws(b, i + 1, e);
}

/**
 * Whether the UTF-8 bytes `b[s, e)` are one JSON document (what JSON.parse accepts): -1 when
 * they are not; 0 when they are and may be copied into an envelope as they are; 1 when they
 * are but hold a CR or LF (only ever whitespace between tokens in valid JSON: raw ones inside
 * strings are invalid), so they must be compacted to keep an envelope on one line.
 */
export function embeddableJsonBytes(b: Buffer, s: number, e: number): -1 | 0 | 1 {
  lineBreak = false;
  let depth = 0;
  let i = ws(b, s, e);
  value: for (;;) {
    const c = at(b, i, e);
    if (c === 0x7b || c === 0x5b) {
      // { or [
      i = ws(b, i + 1, e);
      const close = c === 0x7b ? 0x7d : 0x5d;
      if (at(b, i, e) === close) i++;
      else {
        if (depth === stack.length) {
          const grown = new Uint8Array(stack.length * 2);
          grown.set(stack);
          stack = grown;
        }
        stack[depth++] = c === 0x7b ? OBJ : ARR;
        if (c === 0x7b && (i = member(b, i, e)) < 0) return -1;
        continue value;
      }
    } else if (c === 0x22) {
      if ((i = str(b, i, e)) < 0) return -1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      if ((i = num(b, i, e)) < 0) return -1;
    } else if (c === 0x74 && word(b, i, e, 'true')) i += 4;
    else if (c === 0x66 && word(b, i, e, 'false')) i += 5;
    else if (c === 0x6e && word(b, i, e, 'null')) i += 4;
    else return -1;
    // After a value: close containers until the next value or the end.
    for (;;) {
      i = ws(b, i, e);
      if (depth === 0) return i === e ? (lineBreak ? 1 : 0) : -1;
      const d = at(b, i, e);
      const top = stack[depth - 1];
      if (d === 0x2c) {
        i = ws(b, i + 1, e);
        if (top === OBJ && (i = member(b, i, e)) < 0) return -1;
        continue value;
      }
      if ((d === 0x7d && top === OBJ) || (d === 0x5d && top === ARR)) {
        depth--;
        i++;
        continue;
      }
      return -1;
    }
  }
}

/** True when JSON.parse accepts `s`: it may then stand in an envelope as it is (compacted). */
export function isEmbeddableJson(s: string): boolean {
  const b = Buffer.from(s, 'utf8');
  return embeddableJsonBytes(b, 0, b.length) >= 0;
}
