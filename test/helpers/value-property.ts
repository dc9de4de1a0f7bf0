/**
 * Tools of the value property tests (pg-values-property, mysql-values-property): a seeded
 * random source, a JSON reader that keeps every number as the text it was written with,
 * and the rows-to-compare bookkeeping. The tests compare Tributary's envelopes with what the
 * database itself prints for the same values, so nothing here may round a number.
 */

/** How many random rows a property test writes (`TRIBUTARY_PROPERTY_ROWS` raises it). */
export function propertyRows(fallback: number): number {
  const n = Number(process.env.TRIBUTARY_PROPERTY_ROWS);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** The seed of a run: `TRIBUTARY_PROPERTY_SEED`, else a fixed one (printed on failure). */
export function propertySeed(fallback: number): number {
  const n = Number(process.env.TRIBUTARY_PROPERTY_SEED);
  return Number.isInteger(n) ? n : fallback;
}

/** A seeded generator (mulberry32): the same seed gives the same rows on every machine. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  /** A random uint32. */
  u32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
  /** `n` random decimal digits, the first not zero unless n is 1. */
  digits(n: number): string {
    let s = String(this.int(n === 1 ? 0 : 1, 9));
    for (let i = 1; i < n; i++) s += String(this.int(0, 9));
    return s;
  }
}

/** A JSON number kept as the text it was written with. */
export class Num {
  constructor(readonly text: string) {}
}

/** A JSON value with its numbers as {@link Num}. */
export type Lossless = null | boolean | string | Num | Lossless[] | { [k: string]: Lossless };

/**
 * Parses JSON text without rounding any number (each becomes a {@link Num} holding its
 * text). Object members keep their order; a repeated key keeps the last value, as
 * JSON.parse does. Throws on anything JSON.parse would reject.
 */
export function parseLossless(text: string): Lossless {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${i} in ${text.slice(Math.max(0, i - 20), i + 20)}`);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const NUM = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): Lossless => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: { [k: string]: Lossless } = {};
      ws();
      if (text[i] === '}') return i++, o;
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const k = str();
        ws();
        if (text[i++] !== ':') fail('expected :');
        Object.defineProperty(o, k, { value: value(), enumerable: true, writable: true, configurable: true });
        ws();
        const d = text[i++];
        if (d === '}') return o;
        if (d !== ',') fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const a: Lossless[] = [];
      ws();
      if (text[i] === ']') return i++, a;
      for (;;) {
        a.push(value());
        ws();
        const d = text[i++];
        if (d === ']') return a;
        if (d !== ',') fail('expected , or ]');
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) return (i += 4), true;
    if (text.startsWith('false', i)) return (i += 5), false;
    if (text.startsWith('null', i)) return (i += 4), null;
    NUM.lastIndex = i;
    const m = NUM.exec(text);
    if (!m) return fail('unexpected text');
    i = NUM.lastIndex;
    return new Num(m[0]);
  };
  const str = (): string => {
    const start = i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c < 0x20) fail('control character in a string');
      if (c === 92) i += 2;
      else if (c === 34) break;
      else i++;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const v = value();
  ws();
  if (i !== text.length) fail('text after the value');
  return v;
}

/**
 * A canonical text of a lossless value: compact, members in their order, numbers as
 * written. Two JSON texts with the same members, order and number spellings give the same
 * canonical text whatever their whitespace.
 */
export function canonical(v: Lossless): string {
  if (v instanceof Num) return v.text;
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v).map((k) => `${JSON.stringify(k)}:${canonical(v[k]!)}`).join(',')}}`;
}

/** A short printable form of a value for failure messages. */
export function show(v: unknown): string {
  const s = v instanceof Num ? `${v.text} (number)` : typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'undefined' : canonicalOrString(v);
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

function canonicalOrString(v: unknown): string {
  try {
    return canonical(v as Lossless);
  } catch {
    return String(v);
  }
}

/** Collects value mismatches and reports them, at most `max`, with the seed to replay. */
export class Mismatches {
  readonly list: string[] = [];
  checked = 0;
  constructor(private readonly seed: number) {}
  add(where: string, type: string, dbText: string | null, want: unknown, got: unknown): void {
    this.list.push(`${where} ${type}: database prints ${dbText === null ? 'NULL' : JSON.stringify(dbText).slice(0, 200)}; expected ${show(want)}; envelope has ${show(got)}`);
  }
  report(max = 25): string {
    return `${this.list.length} of ${this.checked} values differ (seed ${this.seed}; replay with TRIBUTARY_PROPERTY_SEED=${this.seed}):\n${this.list.slice(0, max).join('\n')}`;
  }
}
