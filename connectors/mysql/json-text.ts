/**
 * JSON text columns (MariaDB's JSON is LONGTEXT) on the serialized path.
 *
 * The object path parses such a column with JSON.parse and the envelope later stringifies
 * the result again. When the envelope is written as text, a document that JSON.parse accepts
 * can be embedded as it is: parsing the envelope then yields exactly the value JSON.parse of
 * the column gives. Checking that with a scan is several times cheaper than parsing and
 * re-stringifying, and allocates nothing.
 */

/** Container kinds on the scan stack. */
const OBJ = 1;
const ARR = 2;
/** Deeper documents are left to JSON.parse (the caller falls back); real ones are shallow. */
const MAX_DEPTH = 256;
const stack = new Uint8Array(MAX_DEPTH);

function ws(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** The end of the string token whose opening quote is at `i`, or -1 when it is invalid. */
function str(s: string, i: number): number {
  i++;
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c === 0x5c) {
      const e = s.charCodeAt(i + 1);
      if (e === 0x75) {
        if (!isHex(s.charCodeAt(i + 2)) || !isHex(s.charCodeAt(i + 3)) || !isHex(s.charCodeAt(i + 4)) || !isHex(s.charCodeAt(i + 5))) return -1;
        i += 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) i += 2;
      else return -1;
    } else if (c < 0x20 || c !== c) return -1; // control character, or the end (NaN)
    else i++;
  }
}

function digits(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (!(c >= 0x30 && c <= 0x39)) return i; // also past the end (NaN)
    i++;
  }
}

/**
 * The end of the number token at `i`, or -1 when it is invalid or JSON.parse would make it
 * ±Infinity (which JSON.stringify writes as null: embedding it would change the value).
 */
function num(s: string, i: number): number {
  const start = i;
  if (s.charCodeAt(i) === 0x2d) i++;
  const c = s.charCodeAt(i);
  if (c === 0x30) i++;
  else if (c >= 0x31 && c <= 0x39) i = digits(s, i + 1);
  else return -1;
  if (s.charCodeAt(i) === 0x2e) {
    const j = digits(s, i + 1);
    if (j === i + 1) return -1;
    i = j;
  }
  let exp = false;
  const e = s.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    i++;
    const sign = s.charCodeAt(i);
    if (sign === 0x2b || sign === 0x2d) i++;
    const j = digits(s, i);
    if (j === i) return -1;
    i = j;
    exp = true;
  }
  if ((exp || i - start > 300) && !Number.isFinite(Number(s.slice(start, i)))) return -1;
  return i;
}

/**
 * True when JSON.parse accepts `s` and every number in it is finite, so that `s` may stand
 * in an envelope for the value JSON.parse(s). Also false for documents nested deeper than
 * {@link MAX_DEPTH} (the caller then parses them).
 */
export function isEmbeddableJson(s: string): boolean {
  let depth = 0;
  let i = ws(s, 0);
  value: for (;;) {
    const c = s.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      // { or [
      i = ws(s, i + 1);
      const close = c === 0x7b ? 0x7d : 0x5d;
      if (s.charCodeAt(i) === close) i++;
      else {
        if (depth === MAX_DEPTH) return false;
        stack[depth++] = c === 0x7b ? OBJ : ARR;
        if (c === 0x7b) {
          if (s.charCodeAt(i) !== 0x22 || (i = str(s, i)) < 0) return false;
          i = ws(s, i);
          if (s.charCodeAt(i) !== 0x3a) return false;
          i = ws(s, i + 1);
        }
        continue value;
      }
    } else if (c === 0x22) {
      if ((i = str(s, i)) < 0) return false;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      if ((i = num(s, i)) < 0) return false;
    } else if (c === 0x74 && s.startsWith('true', i)) i += 4;
    else if (c === 0x66 && s.startsWith('false', i)) i += 5;
    else if (c === 0x6e && s.startsWith('null', i)) i += 4;
    else return false;
    // After a value: close containers until the next value or the end.
    for (;;) {
      i = ws(s, i);
      if (depth === 0) return i === s.length;
      const d = s.charCodeAt(i);
      const top = stack[depth - 1];
      if (d === 0x2c) {
        i = ws(s, i + 1);
        if (top === OBJ) {
          if (s.charCodeAt(i) !== 0x22 || (i = str(s, i)) < 0) return false;
          i = ws(s, i);
          if (s.charCodeAt(i) !== 0x3a) return false;
          i = ws(s, i + 1);
        }
        continue value;
      }
      if ((d === 0x7d && top === OBJ) || (d === 0x5d && top === ARR)) {
        depth--;
        i++;
        continue;
      }
      return false;
    }
  }
}

const LINE_BREAK = /[\r\n]/;

/**
 * The JSON text to embed for a JSON text column, or null when the column must be parsed
 * (invalid JSON stays a string, as on the object path). Line breaks can only be whitespace
 * between tokens in valid JSON (raw ones inside strings are invalid): they become spaces so
 * an envelope stays on one line.
 */
export function embeddableJson(s: string): string | null {
  if (!isEmbeddableJson(s)) return null;
  return LINE_BREAK.test(s) ? s.replace(/[\r\n]/g, ' ') : s;
}
