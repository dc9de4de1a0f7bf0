import type { JsonValue, Row } from '../../src/core/event.js';
import { decoderFor, type PgTypeInfo, type ValueDecoder } from './values.js';

/** One column as a pgoutput Relation message describes it. */
export interface RelationColumn {
  name: string;
  typeOid: number;
  typeMod: number;
  /** Part of the replica identity (with REPLICA IDENTITY FULL: every column). */
  isIdentity: boolean;
}

/** The outcome of decoding one TupleData. */
export interface DecodedTuple {
  row: Row;
  /** Columns sent as unchanged TOAST ('u') that could not be filled in. */
  unchanged: string[] | null;
  /** Offset just after the tuple. */
  end: number;
}

/**
 * Everything needed to decode the rows of one table, compiled when its Relation message
 * arrives: column names, one value decoder per column, and the key columns. Every row of
 * the table reuses it.
 */
export class RelationDecoder {
  readonly names: string[];
  readonly decoders: ValueDecoder[];
  /** Indexes of the columns that form the event `key` (the primary key when known). */
  readonly keyIdx: number[];
  readonly qualified: string;

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
    this.decoders = columns.map((c) => decoderFor(c.typeOid, types));
    this.qualified = `${schema}.${table}`;
    const pk = primaryKey?.length ? primaryKey.map((n) => this.names.indexOf(n)).filter((i) => i >= 0) : [];
    // With REPLICA IDENTITY FULL pgoutput flags every column as identity, so the primary
    // key (looked up from pg_index) is what names the row; the flags are the fallback.
    this.keyIdx = pk.length ? pk : columns.flatMap((c, i) => (c.isIdentity ? [i] : []));
  }

  /**
   * Decode a TupleData at `off` (the Int16 column count). `old` fills unchanged TOAST
   * values when the server sent an old row; otherwise they are left out and listed.
   */
  decodeTuple(buf: Buffer, off: number, old: Row | null): DecodedTuple {
    const n = buf.readInt16BE(off);
    off += 2;
    const row: Row = {};
    let unchanged: string[] | null = null;
    const names = this.names;
    const decoders = this.decoders;
    for (let i = 0; i < n; i++) {
      const kind = buf[off++];
      const name = names[i]!;
      if (kind === 116 /* t */) {
        const len = buf.readInt32BE(off);
        off += 4;
        row[name] = decoders[i]!(buf, off, off + len);
        off += len;
      } else if (kind === 110 /* n */) {
        row[name] = null;
      } else if (kind === 117 /* u */) {
        // Unchanged TOAST: never a placeholder. Fill from the old row when there is one.
        if (old && name in old) row[name] = old[name] as JsonValue;
        else (unchanged ??= []).push(name);
      } else if (kind === 98 /* b */) {
        const len = buf.readInt32BE(off);
        off += 4;
        row[name] = buf.toString('base64', off, off + len);
        off += len;
      } else {
        throw new Error(`pgoutput: unknown tuple column kind 0x${(kind ?? 0).toString(16)} in ${this.qualified}`);
      }
    }
    return { row, unchanged, end: off };
  }

  /** The key object of a row, or null when the table has no key columns. */
  keyOf(row: Row): Row | null {
    if (!this.keyIdx.length) return null;
    const k: Row = {};
    for (const i of this.keyIdx) {
      const name = this.names[i]!;
      k[name] = row[name] ?? null;
    }
    return k;
  }

  /** From a 'K' (identity key) tuple, keep only the identity columns (the rest are null). */
  identityOnly(row: Row): Row {
    const out: Row = {};
    this.columns.forEach((c, i) => {
      if (c.isIdentity || this.keyIdx.includes(i)) out[c.name] = row[c.name] ?? null;
    });
    return out;
  }
}
