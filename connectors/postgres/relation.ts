import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { JsonBytes } from '../../src/core/json-bytes.js';
import { jsonByteEncoderFor, jsonEncoderFor, type JsonByteEncoder, type JsonEncoder, type PgTypeInfo } from './values.js';

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
  /** Per column, the byte encoder (the same JSON text as `encoders`, into a scratch buffer). */
  readonly byteEncoders: JsonByteEncoder[];
  /** Per column, `"name":` and `,"name":` as bytes. */
  private readonly nameBytes: Buffer[];
  private readonly nameBytesComma: Buffer[];
  /**
   * Where each column's value text sits in its scratch buffer after `writeTuple` (start at
   * 2i, end at 2i+1): one set for an old tuple, one for a new one, reused for every row.
   */
  readonly oldSpans: Int32Array;
  readonly newSpans: Int32Array;
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
    this.byteEncoders = columns.map((c) => jsonByteEncoderFor(c.typeOid, types));
    this.nameBytes = this.nameKeys.map((k) => Buffer.from(k, 'utf8'));
    this.nameBytesComma = this.nameKeys.map((k) => Buffer.from(',' + k, 'utf8'));
    this.oldSpans = new Int32Array(columns.length * 2);
    this.newSpans = new Int32Array(columns.length * 2);
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
        throw unknownKind(kind, this.qualified);
      }
    }
    return { texts, unchanged, end: off };
  }

  /**
   * Writes a TupleData as a JSON object (`{"a":1,"b":"x"}`) into `w`, straight from the wire
   * bytes, and notes in `spans` where each value sits (relative to `w.mark`, which an arena
   * writer may move when it changes slabs), for the key. Returns the
   * offset after the tuple, or -1 when a column is an unchanged TOAST value ('u'): those rows
   * take the `encodeTuple` path, which can fill it from the old row or list it.
   */
  writeTuple(buf: Buffer, off: number, w: JsonBytes, spans: Int32Array): number {
    const n = buf.readInt16BE(off);
    off += 2;
    const enc = this.byteEncoders;
    w.byte(123); // {
    for (let i = 0; i < n; i++) {
      const name = i === 0 ? this.nameBytes[i]! : this.nameBytesComma[i]!;
      w.raw(name, 0, name.length);
      const kind = buf[off++];
      spans[2 * i] = w.n - w.mark;
      if (kind === 116 /* t */) {
        const len = buf.readInt32BE(off);
        off += 4;
        enc[i]!(w, buf, off, off + len);
        off += len;
      } else if (kind === 110 /* n */) {
        w.raw(NULL, 0, 4);
      } else if (kind === 98 /* b */) {
        const len = buf.readInt32BE(off);
        off += 4;
        w.ascii(`"${buf.toString('base64', off, off + len)}"`);
        off += len;
      } else if (kind === 117 /* u */) {
        return -1;
      } else {
        throw unknownKind(kind, this.qualified);
      }
      spans[2 * i + 1] = w.n - w.mark;
    }
    w.byte(125); // }
    return off;
  }

  /**
   * The key (`{"id":1}`, or `null` when there is none), or with `identity` the replica
   * identity columns, copied from a tuple written to `from` with `spans`, into `w`.
   */
  writeKey(from: JsonBytes, spans: Int32Array, w: JsonBytes, identity = false): void {
    const idx = identity ? this.identityIdx : this.keyIdx;
    if (!idx.length && !identity) {
      w.raw(NULL, 0, 4);
      return;
    }
    w.byte(123);
    for (let j = 0; j < idx.length; j++) {
      const i = idx[j]!;
      const name = j === 0 ? this.nameBytes[i]! : this.nameBytesComma[i]!;
      w.raw(name, 0, name.length);
      // `from` may be `w` itself: buf and mark are read before `raw` can change slabs.
      w.raw(from.buf, from.mark + spans[2 * i]!, from.mark + spans[2 * i + 1]!);
    }
    w.byte(125);
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

const NULL = Buffer.from('null');

/** A TupleData column kind pgoutput v1 does not define (n, u, t, b). */
function unknownKind(kind: number | undefined, table: string): TributaryError {
  return new TributaryError(ErrorCodes.PG_PROTOCOL, `pgoutput: unknown tuple column kind 0x${(kind ?? 0).toString(16)} in ${table}`, {
    fix: 'this is a bug or an unsupported server; report it with the server version',
  });
}
