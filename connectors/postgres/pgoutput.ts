import { SerializedChangeEvent, type ChangeEvent } from '../../src/core/event.js';
import type { SourceItem } from '../../src/core/source.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { PgPosition } from './position.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import { AFTER, AFTER_NULL, HEAD_DELETE, HEAD_INSERT, HEAD_UPDATE, keyWritten, put, putKey } from '../../src/core/envelope-bytes.js';
import { RelationDecoder, type RelationColumn } from './relation.js';
import type { WalStart } from './replication.js';
import type { PgTypeInfo } from './values.js';
import { WATERMARK_PREFIX, parsePgSnapshot } from './snapshot.js';

/** Microseconds from the Unix epoch to 2000-01-01, Postgres' epoch. */
const PG_EPOCH_MS = 946_684_800_000;

function readLsn(buf: Buffer, off: number): bigint {
  return (BigInt(buf.readUInt32BE(off)) << 32n) | BigInt(buf.readUInt32BE(off + 4));
}

/** Postgres timestamps are int64 microseconds since 2000-01-01; to epoch ms. */
function readTimestampMs(buf: Buffer, off: number): number {
  const hi = buf.readInt32BE(off);
  const lo = buf.readUInt32BE(off + 4);
  return Math.floor((hi * 4294967296 + lo) / 1000) + PG_EPOCH_MS;
}

function readCString(buf: Buffer, off: number): [string, number] {
  const end = buf.indexOf(0, off);
  return [buf.toString('utf8', off, end), end + 1];
}

export interface PgoutputDecoderOptions {
  pipeline: string;
  db: string;
  types: ReadonlyMap<number, PgTypeInfo>;
  /** Primary-key column names by relation OID. */
  primaryKeys: ReadonlyMap<number, string[]>;
  /** Called for a Relation of a table whose key is unknown, and for a Type message. */
  onUnknown?(kind: 'relation' | 'type', oid: number): void;
  now?: () => number;
}

/**
 * Turns pgoutput protocol-v1 messages into change events and commit markers.
 *
 * Protocol v1 is used on purpose: the server sends a transaction only once it has
 * committed (spilling a large one to disk on its side), and this decoder forwards its
 * rows as they arrive, without holding the transaction. Memory stays bounded by the
 * stream's byte budget however large the transaction is, and there is never an aborted
 * transaction to undo.
 */
export class PgoutputDecoder {
  readonly relations = new Map<number, RelationDecoder>();
  /** The transaction being received: its commit LSN, commit time, xid, and events so far. */
  txn: {
    final: PgPosition;
    finalLsn: bigint;
    tsMs: number;
    xid: number;
    idx: number;
    /** The envelope's tail around `lsn`, as bytes, made at the first row. */
    tail?: [Buffer, Buffer];
  } | null = null;
  private readonly now: () => number;
  /** The constant start of each table's `source` block, serialized once. */
  private readonly sourcePrefix = new WeakMap<RelationDecoder, string>();
  private readonly sourceBytes = new WeakMap<RelationDecoder, Buffer>();
  /** Scratch buffers of the byte path: the old tuple, the new tuple, the envelope. */
  private readonly wOld = new JsonBytes();
  private readonly wNew = new JsonBytes();
  /** Envelopes stay in its slabs, as the events' bytes. */
  private readonly wEnv = new JsonBytes(256 * 1024, true);

  constructor(private readonly o: PgoutputDecoderOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * Before resubscribing: the open transaction is sent again from its Begin. (The source
   * runtime drops its events that were handed over already, by index.)
   */
  prepareReconnect(): void {
    this.txn = null;
  }

  /**
   * Decode one XLogData payload; `lsn` is its WAL start, for `source.lsn` (a string, or a
   * reused {@link WalStart} that must not be kept: the byte path writes its digits).
   */
  handle(buf: Buffer, lsn: string | WalStart, emit: (item: SourceItem) => void): void {
    switch (buf[0]) {
      case 66 /* B */: {
        const finalLsn = readLsn(buf, 1);
        this.txn = { final: new PgPosition(finalLsn), finalLsn, tsMs: readTimestampMs(buf, 9), xid: buf.readUInt32BE(17), idx: 0 };
        return;
      }
      case 67 /* C */: {
        const t = this.txn;
        if (!t) throw protocolError('Commit without Begin');
        const end = new PgPosition(readLsn(buf, 10));
        this.txn = null;
        emit({ kind: 'commit', txn: t.final, resume: end });
        return;
      }
      case 82 /* R */:
        this.relation(buf);
        return;
      case 73 /* I */: {
        const rel = this.rel(buf.readUInt32BE(1));
        if (this.writeRow(emit, rel, 'c', buf, lsn)) return;
        // buf[5] is 'N'
        const t = rel.encodeTuple(buf, 6, null);
        this.emitRow(emit, rel, 'c', 'null', rel.rowJson(t.texts), rel.keyJson(t.texts), t.unchanged, lsn);
        return;
      }
      case 85 /* U */: {
        const rel = this.rel(buf.readUInt32BE(1));
        if (this.writeRow(emit, rel, 'u', buf, lsn)) return;
        let off = 5;
        let before: string | null = null;
        let oldTexts: (string | undefined)[] | null = null;
        const tag = buf[off];
        if (tag === 75 /* K */ || tag === 79 /* O */) {
          const old = rel.encodeTuple(buf, off + 1, null);
          before = tag === 75 ? rel.identityJson(old.texts) : rel.rowJson(old.texts);
          if (tag === 79 && !old.unchanged) oldTexts = old.texts;
          off = old.end;
        }
        // buf[off] is 'N'
        const t = rel.encodeTuple(buf, off + 1, oldTexts);
        const key = rel.keyJson(t.texts);
        // Without an old row (REPLICA IDENTITY DEFAULT, key unchanged), `before` holds the key.
        this.emitRow(emit, rel, 'u', before ?? key, rel.rowJson(t.texts), key, t.unchanged, lsn);
        return;
      }
      case 68 /* D */: {
        const rel = this.rel(buf.readUInt32BE(1));
        if (this.writeRow(emit, rel, 'd', buf, lsn)) return;
        const tag = buf[5];
        const old = rel.encodeTuple(buf, 6, null);
        const before = tag === 75 ? rel.identityJson(old.texts) : rel.rowJson(old.texts);
        this.emitRow(emit, rel, 'd', before, 'null', rel.keyJson(old.texts), null, lsn);
        return;
      }
      case 84 /* T */: {
        const n = buf.readUInt32BE(1);
        let off = 6; // count (4) + options (1)
        for (let i = 0; i < n; i++, off += 4) {
          const rel = this.rel(buf.readUInt32BE(off));
          this.emitRow(emit, rel, 't', 'null', 'null', 'null', null, lsn);
        }
        return;
      }
      case 89 /* Y */:
        this.o.onUnknown?.('type', buf.readUInt32BE(1));
        return;
      case 77 /* M */:
        this.message(buf, lsn, emit);
        return;
      case 79 /* O */: // origin
        return;
      default:
        throw protocolError(`unexpected pgoutput message '${String.fromCharCode(buf[0] ?? 63)}' (protocol v1 was requested)`);
    }
  }

  /**
   * Logical messages: snapshot watermarks (transactional, prefix `tributary_wm`) become
   * watermark items; heartbeats and anything else are ignored.
   */
  private message(buf: Buffer, lsn: string | WalStart, emit: (item: SourceItem) => void): void {
    const transactional = (buf[1]! & 1) === 1;
    let off = 10; // tag, flags, lsn
    let prefix: string;
    [prefix, off] = readCString(buf, off);
    if (!transactional || prefix !== WATERMARK_PREFIX || !this.txn) return;
    const len = buf.readUInt32BE(off);
    const body = JSON.parse(buf.toString('utf8', off + 4, off + 4 + len)) as { id: string; mark: 'low' | 'high'; snapshot?: string };
    const t = this.txn;
    const idx = t.idx++;
    const visibility = body.snapshot ? parsePgSnapshot(body.snapshot) : undefined;
    emit({ kind: 'watermark', id: body.id, mark: body.mark, txn: t.final, idx, at: { lsn: String(lsn) }, visibility });
  }

  private rel(oid: number): RelationDecoder {
    const r = this.relations.get(oid);
    if (!r) throw protocolError(`row for relation ${oid} arrived before its Relation message`);
    return r;
  }

  private relation(buf: Buffer): void {
    const oid = buf.readUInt32BE(1);
    let off = 5;
    let schema: string;
    let table: string;
    [schema, off] = readCString(buf, off);
    [table, off] = readCString(buf, off);
    const ident = String.fromCharCode(buf[off++]!);
    const n = buf.readInt16BE(off);
    off += 2;
    const cols: RelationColumn[] = [];
    for (let i = 0; i < n; i++) {
      const flags = buf[off++]!;
      let name: string;
      [name, off] = readCString(buf, off);
      const typeOid = buf.readUInt32BE(off);
      const typeMod = buf.readInt32BE(off + 4);
      off += 8;
      cols.push({ name, typeOid, typeMod, isIdentity: (flags & 1) === 1 });
    }
    const pk = this.o.primaryKeys.get(oid);
    if (!pk) this.o.onUnknown?.('relation', oid);
    this.relations.set(oid, new RelationDecoder(oid, schema || 'public', table, ident, cols, this.o.types, pk));
  }

  /**
   * The byte path for Insert, Update and Delete: the envelope is written as JSON straight
   * from the message into one scratch buffer and made into one flat string (json-bytes.ts
   * says why). The old and new tuples are written in place, in envelope order (`before`,
   * `after`); the key is copied from where its values landed. Same JSON as `emitRow` gives
   * from `encodeTuple` texts. Returns false, having consumed nothing, for a row with an
   * unchanged TOAST value: the string path fills or lists those.
   */
  private writeRow(emit: (item: SourceItem) => void, rel: RelationDecoder, op: 'c' | 'u' | 'd', buf: Buffer, lsn: string | WalStart): boolean {
    const t = this.txn;
    if (!t) throw protocolError('row change outside a transaction');
    const idx = t.idx;
    const w = this.wEnv;
    w.reset();
    put(w, op === 'c' ? HEAD_INSERT : op === 'u' ? HEAD_UPDATE : HEAD_DELETE);
    // Where the key's values are, and after which offset the new tuple starts ('N').
    let keyFrom = w;
    let keySpans = rel.newSpans;
    let off = 5;
    let newWritten = false;
    if (op !== 'c') {
      const tag = buf[5];
      if (tag === 79 /* O: the whole old row */) {
        off = rel.writeTuple(buf, 6, w, rel.oldSpans);
        if (off < 0) return false;
        if (op === 'd') keySpans = rel.oldSpans;
      } else if (tag === 75 /* K: the old key */) {
        const wo = this.wOld;
        wo.reset();
        off = rel.writeTuple(buf, 6, wo, rel.oldSpans);
        if (off < 0) return false;
        rel.writeKey(wo, rel.oldSpans, w, true);
        if (op === 'd') {
          keyFrom = wo;
          keySpans = rel.oldSpans;
        }
      } else if (op === 'u') {
        // No old row (REPLICA IDENTITY DEFAULT, key unchanged): `before` is the key, whose
        // values come later in the message. The new tuple goes to a scratch buffer first.
        const wn = this.wNew;
        wn.reset();
        if (rel.writeTuple(buf, 6, wn, rel.newSpans) < 0) return false;
        rel.writeKey(wn, rel.newSpans, w);
        put(w, AFTER);
        w.raw(wn.buf, 0, wn.n);
        keyFrom = wn;
        newWritten = true;
      } else return false;
    }
    if (op === 'd') put(w, AFTER_NULL);
    else if (!newWritten) {
      put(w, AFTER);
      // buf[off] is 'N'
      if (rel.writeTuple(buf, off + 1, w, rel.newSpans) < 0) return false;
    }
    putKey(w);
    rel.writeKey(keyFrom, keySpans, w);
    keyWritten(w);
    const source = this.sourceBytesOf(rel);
    w.raw(source, 0, source.length);
    const tail = (t.tail ??= [
      Buffer.from(`${t.tsMs},"snapshot":"false","lsn":"`),
      Buffer.from(`","txId":${t.xid}},"ts_ms":`),
    ]);
    w.raw(tail[0], 0, tail[0].length);
    if (typeof lsn === 'string') w.ascii(lsn);
    else {
      w.hex(lsn.hi);
      w.byte(47); // /
      w.hex(lsn.lo);
    }
    w.raw(tail[1], 0, tail[1].length);
    w.uint(this.now());
    w.byte(125);
    t.idx++;
    // Kept as bytes where they were written (an arena writer): no copy, and no string unless
    // a sink asks for one.
    const event = SerializedChangeEvent.fromWriter(w, rel.qualified, t.tsMs);
    w.seal();
    emit({ kind: 'event', event, txn: t.final, idx, xid: t.xid });
    return true;
  }

  /** `,"source":` and the constant start of the source block, as bytes. */
  private sourceBytesOf(rel: RelationDecoder): Buffer {
    let b = this.sourceBytes.get(rel);
    if (!b) {
      b = Buffer.from(`,"source":${this.prefixOf(rel)}`, 'utf8');
      this.sourceBytes.set(rel, b);
    }
    return b;
  }

  private prefixOf(rel: RelationDecoder): string {
    let prefix = this.sourcePrefix.get(rel);
    if (!prefix) {
      prefix = `{"connector":"postgresql","name":${JSON.stringify(this.o.pipeline)},"db":${JSON.stringify(this.o.db)},"schema":${JSON.stringify(rel.schema)},"table":${JSON.stringify(rel.table)},"ts_ms":`;
      this.sourcePrefix.set(rel, prefix);
    }
    return prefix;
  }

  /**
   * Emit one change, its envelope serialized here from JSON texts: the key order and values
   * are those of the ChangeEvent shape (op, before, after, key, source, ts_ms).
   */
  private emitRow(emit: (item: SourceItem) => void, rel: RelationDecoder, op: ChangeEvent['op'], before: string, after: string, key: string, unchanged: string[] | null, lsn: string | WalStart): void {
    const t = this.txn;
    if (!t) throw protocolError('row change outside a transaction');
    const idx = t.idx++;
    const prefix = this.prefixOf(rel);
    const json =
      `{"op":"${op}","before":${before},"after":${after},"key":${key},"source":${prefix}${t.tsMs},"snapshot":"false","lsn":"${lsn}","txId":${t.xid}` +
      `${unchanged ? `,"unchanged":${JSON.stringify(unchanged)}` : ''}},"ts_ms":${this.now()}}`;
    emit({ kind: 'event', event: new SerializedChangeEvent(json, rel.qualified, t.tsMs), txn: t.final, idx, xid: t.xid });
  }
}

function protocolError(msg: string): TributaryError {
  return new TributaryError(ErrorCodes.PG_PROTOCOL, `pgoutput: ${msg}`, {
    fix: 'this is a bug or an unsupported server; report it with the server version',
  });
}
