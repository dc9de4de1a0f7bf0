/**
 * Reading a snapshot chunk with `COPY (SELECT …) TO STDOUT`, straight into serialized rows.
 *
 * A plain query makes pg parse every DataRow into one JavaScript string per value, which
 * the snapshot then turned back into bytes to decode, into an object, into an envelope, and
 * finally into JSON. COPY hands over each row as one raw buffer (one CopyData message per
 * row): the values are encoded to JSON text right from those bytes with the same per-type
 * encoders the streaming path uses (values.ts), and each row leaves as its JSON text plus its
 * key string (see `ChunkRows`).
 *
 * COPY has no RowDescription, so the column names and types come from `pg_attribute` in the
 * same round trip, under an ACCESS SHARE lock taken first: no DDL can change the table
 * between that catalog read and the COPY (ALTER TABLE needs ACCESS EXCLUSIVE), so names,
 * types and values always belong together.
 */
import type pg from 'pg';
import type { RowSink, SnapshotTable } from '../../src/snapshot/types.js';
import { ident } from './catalog.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import { decoderFor, jsonByteEncoderFor, type JsonByteEncoder, type PgTypeInfo, type ValueDecoder } from './values.js';

/** A table's columns, as the catalog query in front of the COPY lists them. */
interface Column {
  name: string;
  oid: number;
}

/** Turns the raw COPY text of one row into its JSON text and its key string. */
interface RowSerializer {
  /** Catalog signature it was built for (names and type oids). */
  sig: string;
  /** Appends the row in `buf[start, end)` (without its newline) to `out`. */
  add(buf: Buffer, start: number, end: number, out: RowSink): void;
}

const TAB = 9;
const BACKSLASH = 92;
const NEWLINE = 10;

/** `\b \f \n \r \t \v` → their control characters; any other escaped byte stands for itself. */
const ESCAPES: Record<number, number> = { 98: 8, 102: 12, 110: 10, 114: 13, 116: 9, 118: 11 };

/**
 * One COPY text field with its escapes undone. COPY TO writes only the escapes above and
 * `\\`, so a field without a backslash is used as it is and only others come here.
 */
function unescape(buf: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  let n = 0;
  for (let i = start; i < end; i++) {
    let c = buf[i]!;
    if (c === BACKSLASH && i + 1 < end) {
      c = buf[++i]!;
      c = ESCAPES[c] ?? c;
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

/**
 * Splits one COPY text row into fields and calls `field(j, buf, start, end)` for each
 * (`buf` null for SQL NULL, `\N`). A raw tab only ever separates fields: a tab in a value
 * is written as `\t`.
 */
function eachField(buf: Buffer, start: number, end: number, field: (j: number, b: Buffer | null, s: number, e: number) => void): void {
  let j = 0;
  let s = start;
  let escaped = false;
  for (let i = start; i <= end; i++) {
    const c = i < end ? buf[i]! : TAB;
    if (c === BACKSLASH) {
      escaped = true;
      i++;
    } else if (c === TAB) {
      if (!escaped) field(j, buf, s, i);
      else if (i - s === 2 && buf[s + 1] === 78 /* N */) field(j, null, 0, 0);
      else {
        const u = unescape(buf, s, i);
        field(j, u, 0, u.length);
      }
      j++;
      s = i + 1;
      escaped = false;
    }
  }
}

/**
 * The serializer of a keyed table: each value is encoded to JSON text from the COPY bytes;
 * key values are also decoded and stringified, because the key string must be exactly what
 * `keyString` makes of a streamed row (a JSON encoder may copy text, e.g. jsonb's spaces).
 */
function keyedSerializer(cols: Column[], key: string[], types: ReadonlyMap<number, PgTypeInfo>, sig: string): RowSerializer {
  // Each row is written as bytes into one scratch buffer and leaves as one flat string:
  // a row built by concatenation is a tree of small strings that stays alive (and is copied
  // by every young-generation GC) until its chunk is emitted.
  const prefixes = cols.map((c, j) => Buffer.from(`${j ? ',' : '{'}${JSON.stringify(c.name)}:`, 'utf8'));
  const encs: JsonByteEncoder[] = cols.map((c) => jsonByteEncoderFor(c.oid, types));
  const keyPos = new Int32Array(cols.length).fill(-1);
  const keyDecs: ValueDecoder[] = [];
  key.forEach((k, i) => {
    const j = cols.findIndex((c) => c.name === k);
    if (j < 0) throw new Error(`key column ${k} is not a column of the table`);
    keyPos[j] = i;
    keyDecs[i] = decoderFor(cols[j]!.oid, types);
  });
  const keyParts: string[] = new Array(key.length);
  const w = new JsonBytes();
  const field = (j: number, b: Buffer | null, s: number, e: number): void => {
    const p = prefixes[j]!;
    w.raw(p, 0, p.length);
    if (b === null) {
      w.raw(NULL, 0, 4);
      if (keyPos[j]! >= 0) keyParts[keyPos[j]!] = 'null';
      return;
    }
    encs[j]!(w, b, s, e);
    const k = keyPos[j]!;
    if (k >= 0) keyParts[k] = JSON.stringify(keyDecs[k]!(b, s, e));
  };
  return {
    sig,
    add(buf, start, end, out) {
      w.reset();
      eachField(buf, start, end, field);
      if (w.n === 0) w.byte(123);
      w.byte(125);
      // The key string goes behind the row in the same buffer: one hand-over per row.
      const rowEnd = w.n;
      for (const p of keyParts) {
        w.text(p);
        w.byte(0);
      }
      out.bytes(w.buf, 0, rowEnd, w.n);
    },
  };
}

const NULL = Buffer.from('null');

/**
 * The serializer of a key-less (ctid) table: the row is written like a keyed table's (the
 * same byte encoders, so json keeps its numbers exact and its text on one line), and its key
 * string is what {@link keyString} makes of a streamed row: the `JSON.stringify` of the
 * parsed row, which is how the stream's events are compared with it.
 */
function keylessSerializer(cols: Column[], types: ReadonlyMap<number, PgTypeInfo>, sig: string): RowSerializer {
  const keyed = keyedSerializer(cols, [], types, sig);
  let row = '';
  const capture: RowSink = {
    bytes(buf, s, rowEnd) {
      row = buf.toString('utf8', s, rowEnd);
    },
    strings(r) {
      row = r;
    },
  };
  return {
    sig,
    add(buf, start, end, out) {
      keyed.add(buf, start, end, capture);
      out.strings(row, JSON.stringify(JSON.parse(row)));
    },
  };
}

/**
 * The catalog query in front of every COPY: the table's live columns, in `SELECT *` order,
 * each with the transaction's snapshot (the first statement after the lock takes it, and the
 * COPY reads in it: REPEATABLE READ).
 */
function columnsSql(client: pg.Client, table: string): string {
  // One row even for a table without columns: the snapshot is needed all the same.
  return `SELECT a.attname, a.atttypid, s.snapshot FROM (SELECT pg_current_snapshot()::text AS snapshot) s LEFT JOIN pg_attribute a ON a.attrelid = ${client.escapeLiteral(table)}::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`;
}

/** The parts of pg's Connection a submittable drives the extended protocol with. */
interface ExtendedConnection {
  parse(q: { text: string }): void;
  bind(b: Record<string, never>): void;
  execute(e: Record<string, never>): void;
  sync(): void;
  stream: { cork?(): void; uncork?(): void };
}

/**
 * A pg "submittable" that runs `BEGIN READ ONLY`, `LOCK`, `<columns>`, `COPY …` and `COMMIT`
 * in one round trip and feeds every CopyData row to the table's serializer. pg routes
 * DataRow, CopyData, CommandComplete, ErrorResponse and ReadyForQuery of the active query
 * here.
 *
 * The statements go over the extended protocol, each in its own Parse, with one Sync at the
 * end: Parse accepts exactly one statement, so a `;` in a snapshot filter cannot start a
 * second one (as it would in a simple-query text), let alone COMMIT the READ ONLY
 * transaction and write. After an error the server skips to the Sync; the transaction is
 * then aborted, and the caller rolls it back.
 */
class CopyChunk {
  private cols: Column[] = [];
  private failure: unknown = null;
  readonly done: Promise<void>;
  private settle!: (err: unknown) => void;

  constructor(
    private readonly statements: readonly string[],
    private readonly serializerFor: (cols: Column[]) => RowSerializer,
    private readonly rows: RowSink,
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = (err) => (err ? reject(err) : resolve())));
  }

  private serializer?: RowSerializer;

  submit(connection: ExtendedConnection): void {
    connection.stream.cork?.();
    try {
      for (const text of this.statements) {
        connection.parse({ text });
        connection.bind({});
        connection.execute({});
      }
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
  }
  handleRowDescription(): void {}
  /** The snapshot the rows were read in (`pg_current_snapshot()` text). */
  snapshot: string | null = null;

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (msg.fields[0] !== null) this.cols.push({ name: msg.fields[0]!, oid: Number(msg.fields[1]) });
    this.snapshot = msg.fields[2] ?? null;
  }
  handleCopyData(msg: { chunk: Buffer }): void {
    if (this.failure) return;
    try {
      const s = (this.serializer ??= this.serializerFor(this.cols));
      // One row per CopyData message; split on newlines anyway, so nothing depends on it.
      const b = msg.chunk;
      let start = 0;
      for (let i = b.indexOf(NEWLINE); i >= 0; i = b.indexOf(NEWLINE, start)) {
        s.add(b, start, i, this.rows);
        start = i + 1;
      }
    } catch (err) {
      this.failure = err;
    }
  }
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(connection: { sendCopyFail(msg: string): void }): void {
    connection.sendCopyFail('tributary expects COPY TO');
  }
  /** pg drops the active query on an error: ReadyForQuery will not come here. */
  handleError(err: unknown): void {
    this.settle(err);
  }
  handleReadyForQuery(): void {
    this.settle(this.failure);
  }
}

/** Per reader: the serializer of each table, rebuilt when the table's columns change. */
export class CopyReader {
  private readonly serializers = new Map<string, RowSerializer>();
  /** The snapshot of the last chunk read, until {@link takeSnapshot}. */
  private snapshot: string | null = null;

  /** The `pg_current_snapshot()` text of the last chunk read (once; null when none was read since). */
  takeSnapshot(): string | null {
    const s = this.snapshot;
    this.snapshot = null;
    return s;
  }

  constructor(
    private readonly client: pg.Client,
    private readonly types: () => ReadonlyMap<number, PgTypeInfo>,
  ) {}

  /**
   * Rows of `qtable` (quoted `schema.table`) matching `conds`, ordered by the table's key,
   * appended to `out`. `conds` are SQL with literals inlined: COPY takes no parameters.
   */
  async read(table: SnapshotTable, qtable: string, conds: string[], out: RowSink): Promise<void> {
    const c = this.client;
    const order = table.keyKind === 'ctid' ? '' : ` ORDER BY ${table.key.map(ident).join(', ')}`;
    const select = (cols: string) => `SELECT ${cols} FROM ${qtable}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''}${order}`;
    // `SELECT *` lists exactly the catalog query's columns (live ones, by attnum), and the
    // lock keeps them so until COMMIT. REPEATABLE READ: the catalog query and the COPY share
    // one snapshot, taken after the lock (LOCK takes none), and the catalog query reports it,
    // for the high watermark (src/snapshot/visibility.ts). Each statement goes through the
    // extended protocol on its own, so a filter can never start a second statement.
    const statements = ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', `LOCK TABLE ${qtable} IN ACCESS SHARE MODE`, columnsSql(c, qtable), `COPY (${select('*')}) TO STDOUT`, 'COMMIT'];
    const q = new CopyChunk(statements, (cols) => this.serializerFor(table, cols), out);
    this.snapshot = null;
    try {
      await (c.query(q as unknown as pg.QueryConfig) as unknown as CopyChunk).done;
      this.snapshot = q.snapshot;
    } catch (err) {
      // An error inside BEGIN leaves the session in an aborted transaction.
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  private serializerFor(table: SnapshotTable, cols: Column[]): RowSerializer {
    const sig = cols.map((col) => `${col.name}:${col.oid}`).join('\u0000');
    let s = this.serializers.get(table.name);
    if (s?.sig !== sig) {
      s = table.keyKind === 'ctid' ? keylessSerializer(cols, this.types(), sig) : keyedSerializer(cols, table.key, this.types(), sig);
      this.serializers.set(table.name, s);
    }
    return s;
  }
}
