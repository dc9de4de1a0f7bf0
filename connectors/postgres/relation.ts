import { jsonEncoderFor, type JsonEncoder, type PgTypeInfo } from './values.js';

/** One column as a pgoutput Relation message describes it. */
export interface RelationColumn {
  name: string;
  typeOid: number;
  typeMod: number;
  /** Part of the replica identity (with REPLICA IDENTITY FULL: every column). */
  isIdentity: boolean;
}

/** A TupleData as JSON texts, one per column (undefined: an unchanged TOAST value left out). */
export interface EncodedTuple {
  texts: (string | undefined)[];
  unchanged: string[] | null;
  end: number;
}

/**
 * Everything needed to serialize the rows of one table, compiled when its Relation message
 * arrives: column names, one JSON encoder per column, and the key columns. Every row of
 * the table reuses it.
 */
export class RelationDecoder {
  readonly names: string[];
  /** Indexes of the columns that form the event `key` (the primary key when known). */
  readonly keyIdx: number[];
  readonly qualified: string;
  /** Per column, the JSON text of a value (for envelopes serialized from the wire). */
  readonly encoders: JsonEncoder[];
  /** Per column, `"name":`, serialized once. */
  readonly nameKeys: string[];
  /** Indexes of the columns a 'K' (identity key) tuple carries. */
  private readonly identityIdx: number[];

  constructor(
    readonly oid: number,
    readonly schema: string,
    readonly table: string,
    /** d default, n nothing, f full, i index */
    readonly replicaIdentity: string,
    readonly columns: RelationColumn[],
    types: ReadonlyMap<number, PgTypeInfo>,
    primaryKey: readonly string[] | undefined,
  ) {
    this.names = columns.map((c) => c.name);
    this.encoders = columns.map((c) => jsonEncoderFor(c.typeOid, types));
    this.nameKeys = columns.map((c) => `${JSON.stringify(c.name)}:`);
    this.qualified = `${schema}.${table}`;
    const pk = primaryKey?.length ? primaryKey.map((n) => this.names.indexOf(n)).filter((i) => i >= 0) : [];
    // With REPLICA IDENTITY FULL pgoutput flags every column as identity, so the primary
    // key (looked up from pg_index) is what names the row; the flags are the fallback.
    this.keyIdx = pk.length ? pk : columns.flatMap((c, i) => (c.isIdentity ? [i] : []));
    this.identityIdx = columns.flatMap((c, i) => (c.isIdentity || this.keyIdx.includes(i) ? [i] : []));
  }

  /**
   * Like `decodeTuple`, but each value becomes its JSON text straight from the buffer.
   * `old` (the texts of the old row) fills unchanged TOAST values.
   */
  encodeTuple(buf: Buffer, off: number, old: (string | undefined)[] | null): EncodedTuple {
    const n = buf.readInt16BE(off);
    off += 2;
    const texts: (string | undefined)[] = new Array(n);
    let unchanged: string[] | null = null;
    const enc = this.encoders;
    for (let i = 0; i < n; i++) {
      const kind = buf[off++];
      if (kind === 116 /* t */) {
        const len = buf.readInt32BE(off);
        off += 4;
        texts[i] = enc[i]!(buf, off, off + len);
        off += len;
      } else if (kind === 110 /* n */) {
        texts[i] = 'null';
      } else if (kind === 117 /* u */) {
        const v = old ? old[i] : undefined;
        if (v !== undefined) texts[i] = v;
        else (unchanged ??= []).push(this.names[i]!);
      } else if (kind === 98 /* b */) {
        const len = buf.readInt32BE(off);
        off += 4;
        texts[i] = `"${buf.toString('base64', off, off + len)}"`;
        off += len;
      } else {
        throw new Error(`pgoutput: unknown tuple column kind 0x${(kind ?? 0).toString(16)} in ${this.qualified}`);
      }
    }
    return { texts, unchanged, end: off };
  }

  /** `{"a":1,"b":"x"}` from column texts, leaving out undefined ones. */
  rowJson(texts: (string | undefined)[]): string {
    let out = '{';
    let first = true;
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i];
      if (t === undefined) continue;
      out += first ? this.nameKeys[i]! + t : ',' + this.nameKeys[i]! + t;
      first = false;
    }
    return out + '}';
  }

  /** The key as JSON, or `null`. */
  keyJson(texts: (string | undefined)[]): string {
    if (!this.keyIdx.length) return 'null';
    let out = '{';
    for (let j = 0; j < this.keyIdx.length; j++) {
      const i = this.keyIdx[j]!;
      out += (j ? ',' : '') + this.nameKeys[i]! + (texts[i] ?? 'null');
    }
    return out + '}';
  }

  /** The identity columns of a 'K' tuple, as JSON. */
  identityJson(texts: (string | undefined)[]): string {
    let out = '{';
    for (let j = 0; j < this.identityIdx.length; j++) {
      const i = this.identityIdx[j]!;
      out += (j ? ',' : '') + this.nameKeys[i]! + (texts[i] ?? 'null');
    }
    return out + '}';
  }



}
