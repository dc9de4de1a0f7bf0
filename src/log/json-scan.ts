/**
 * Byte-level walking of envelope JSON, without parsing values into JavaScript.
 *
 * Why: the log keeps envelopes as the sources wrote them, numbers exact (a jsonb value may
 * hold a number that a double cannot). Time travel and compaction must cut an envelope into
 * its parts (the `after` image, the `source` block) and put rows back together without a
 * `JSON.parse`/`JSON.stringify` round trip, which would round such numbers.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The end (exclusive) of the JSON value starting at `p` (after any whitespace). */
export function skipValue(b: Buffer, p: number): number {
  p = skipWs(b, p);
  const c = b[p];
  if (c === QUOTE) return skipString(b, p);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (; p < b.length; p++) {
      const x = b[p]!;
      if (x === QUOTE) {
        p = skipString(b, p) - 1;
      } else if (x === 0x7b || x === 0x5b) depth++;
      else if (x === 0x7d || x === 0x5d) {
        depth--;
        if (depth === 0) return p + 1;
      }
    }
    throw new Error('unterminated JSON value');
  }
  // number, true, false, null
  while (p < b.length) {
    const x = b[p]!;
    if (x === 0x2c || x === 0x7d || x === 0x5d || x === 0x20 || x === 0x0a || x === 0x0d || x === 0x09) break;
    p++;
  }
  return p;
}

function skipString(b: Buffer, p: number): number {
  for (p++; p < b.length; p++) {
    const x = b[p]!;
    if (x === BACKSLASH) p++;
    else if (x === QUOTE) return p + 1;
  }
  throw new Error('unterminated JSON string');
}

function skipWs(b: Buffer, p: number): number {
  while (p < b.length && (b[p] === 0x20 || b[p] === 0x0a || b[p] === 0x0d || b[p] === 0x09)) p++;
  return p;
}

/** The members of the JSON object at `[s, e)`: name (raw, quotes included) and value ranges. */
export function* members(b: Buffer, s: number, e: number): Generator<{ ns: number; ne: number; vs: number; ve: number }> {
  let p = skipWs(b, s);
  if (b[p] !== 0x7b) return;
  p = skipWs(b, p + 1);
  if (b[p] === 0x7d) return;
  while (p < e) {
    const ns = skipWs(b, p);
    const ne = skipString(b, ns);
    const colon = skipWs(b, ne);
    const vs = skipWs(b, colon + 1);
    const ve = skipValue(b, vs);
    yield { ns, ne, vs, ve };
    p = skipWs(b, ve);
    if (b[p] === 0x2c) p++;
    else return;
  }
}

/** The parts of an envelope, as byte ranges into `b`. */
export interface EnvelopeParts {
  op: number;
  before: [number, number];
  after: [number, number];
  key: [number, number];
  source: [number, number];
}

/** Cut an envelope `{"op":..,"before":..,"after":..,"key":..,"source":..,"ts_ms":..}` into its parts. */
export function envelopeParts(b: Buffer, s: number, e: number): EnvelopeParts {
  const parts: Partial<Record<string, [number, number]>> = {};
  let op = 0;
  for (const m of members(b, s, e)) {
    const name = b.toString('latin1', m.ns + 1, m.ne - 1);
    if (name === 'op') op = b[m.vs + 1]!;
    else parts[name] = [m.vs, m.ve];
  }
  const need = (k: string) => parts[k] ?? ([0, 0] as [number, number]);
  return { op, before: need('before'), after: need('after'), key: need('key'), source: need('source') };
}

/** Is the range the JSON literal `null`? */
export function isNull(b: Buffer, r: [number, number]): boolean {
  return r[1] - r[0] === 4 && b[r[0]] === 0x6e && b[r[0] + 1] === 0x75;
}

const BEFORE = Buffer.from(',"before":');
const AFTER = Buffer.from(',"after":');
const KEY = Buffer.from(',"key":');

function at(b: Buffer, p: number, piece: Buffer): boolean {
  if (p + piece.length > b.length) return false;
  for (let i = 0; i < piece.length; i++) if (b[p + i] !== piece[i]) return false;
  return true;
}

const SOURCE = Buffer.from(',"source":{');

/**
 * The byte range of the `key` value of an envelope `[s, e)`, found from the end: envelopes
 * end with `,"key":K,"source":{…},"ts_ms":N}` (event.ts fixes the member order), and the
 * source block is short, so a native backwards search finds it without walking the row
 * images. (`,"source":{` cannot occur inside a string, whose quotes are escaped, and the
 * last occurrence is the envelope's own.) The candidate is checked by skipping the key value;
 * anything unexpected falls back to a walk from the front.
 */
export function keyRangeOf(b: Buffer, s: number, e: number): [number, number] {
  const src = b.lastIndexOf(SOURCE, e - 1);
  if (src > s) {
    const k = b.lastIndexOf(KEY, src - 1);
    if (k > s) {
      const ks = k + KEY.length;
      if (skipValue(b, ks) === src) return [ks, src];
    }
  }
  return keyRangeWalk(b, s, e);
}

/** {@link keyRangeOf} by walking from the front, skipping the row images. */
function keyRangeWalk(b: Buffer, s: number, e: number): [number, number] {
  // `{"op":"c"` is 9 bytes; then `,"before":`.
  let p = s + 9;
  if (b[s + 1] === QUOTE && b[s + 2] === 0x6f && at(b, p, BEFORE)) {
    p = skipValue(b, p + BEFORE.length);
    if (at(b, p, AFTER)) {
      p = skipValue(b, p + AFTER.length);
      if (at(b, p, KEY)) {
        const ks = p + KEY.length;
        return [ks, skipValue(b, ks)];
      }
    }
  }
  return envelopeParts(b, s, e).key;
}
