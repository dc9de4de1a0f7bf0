/**
 * A MySQL/MariaDB snapshot chunk's `SELECT` as a command of our own on mysql2's connection:
 * mysql2 still frames the packets and owns the session, but the row packets are not parsed
 * into objects; each one's payload goes to a {@link RowWriter} (snapshot-rows.ts), which
 * writes its JSON text straight from the bytes.
 */
import type mysql from 'mysql2';
import type { RowSink } from '../../src/snapshot/types.js';
import type { ResultField, RowWriter } from './snapshot-rows.js';


/** What this command uses of mysql2's connection (lib/base/connection.js). */
interface Mysql2Connection {
  config: { clientFlags: number };
  serverCapabilityFlags?: number;
  _mariadbExtendedMetadata?: boolean;
  clientEncoding?: string;
  _resetSequenceId(): void;
  writePacket(packet: { length(): number; writeHeader(seq: number): void; buffer: Buffer }): void;
  addCommand(cmd: unknown): unknown;
}

/** What this command uses of mysql2's (reused) packet: a view of one complete payload. */
interface Mysql2Packet {
  buffer: Buffer;
  start: number;
  end: number;
  asError(encoding?: string): Error;
}

const COM_QUERY = 0x03;
const CLIENT_QUERY_ATTRIBUTES = 0x08000000;
const SERVER_MORE_RESULTS_EXISTS = 0x0008;

const enum S { Header, Fields, FieldsEof, Rows }

/**
 * One `SELECT` as a mysql2 command: the connection hands every packet of the response to
 * {@link execute} (`true` = done, the next queued command starts), and a fatal connection
 * error to {@link onResult}. Packets are views into mysql2's socket chunks, valid only during
 * the call: each row is written out before it returns.
 */
class ChunkQuery {
  readonly done: Promise<boolean>;
  private settle!: (err: unknown) => void;
  private state = S.Header;
  private started = false;
  private nFields = 0;
  private readonly fields: ResultField[] = [];
  private seen = 0;
  private writer: RowWriter | null = null;
  private refused = false;
  /** Past the first result: anything further is read and dropped. */
  private discard = false;
  private failure: unknown = null;

  constructor(
    private readonly sql: string,
    private readonly writerFor: (fields: ResultField[]) => RowWriter | null,
    private readonly rows: RowSink,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve(!this.refused));
    });
  }

  /** mysql2 calls this with an error when the connection fails while the command is current. */
  onResult(err: unknown): void {
    this.settle(err);
  }

  /** For mysql2's debug output. */
  stateName(): string {
    return `chunk-query#${this.state}`;
  }

  execute(packet: Mysql2Packet | undefined, conn: Mysql2Connection): boolean {
    if (!this.started) {
      this.started = true;
      this.send(conn);
      return false;
    }
    if (!packet) return false;
    const buf = packet.buffer;
    const p = packet.start + 4;
    const first = buf[p]!;
    if (first === 0xff) {
      // ERR, also in the middle of the rows (no row starts with 0xff: it is no length).
      this.settle(Object.assign(packet.asError(conn.clientEncoding), { sql: this.sql }));
      return true;
    }
    switch (this.state) {
      case S.Header:
        if (first === 0x00) {
          // OK: a statement without rows.
          this.settle(this.failure);
          return true;
        }
        this.nFields = lenenc(buf, p);
        this.state = S.Fields;
        return false;
      case S.Fields:
        if (!this.discard) this.fields.push(columnDefinition(buf, p, packet.end, conn._mariadbExtendedMetadata === true));
        if (++this.seen === this.nFields) this.state = S.FieldsEof;
        return false;
      case S.FieldsEof:
        this.state = S.Rows;
        if (!this.discard) {
          try {
            this.writer = this.writerFor(this.fields);
            if (!this.writer) this.refused = true;
          } catch (err) {
            this.failure = err;
          }
        }
        return false;
      default:
        // EOF: 0xfe and shorter than any row starting with an 8-byte length.
        if (first === 0xfe && packet.end - packet.start < 13) {
          if (buf.readUInt16LE(p + 3) & SERVER_MORE_RESULTS_EXISTS) {
            // Not from one SELECT; read past any further result.
            this.discard = true;
            this.seen = 0;
            this.state = S.Header;
            return false;
          }
          this.settle(this.failure);
          return true;
        }
        if (this.writer && !this.discard && !this.failure) {
          try {
            this.writer.add(buf, p, packet.end, this.rows);
          } catch (err) {
            // Keep reading: the connection must get past the rest of the result.
            this.failure = err;
          }
        }
        return false;
    }
  }

  private send(conn: Mysql2Connection): void {
    const attrs = (conn.config.clientFlags & (conn.serverCapabilityFlags ?? 0) & CLIENT_QUERY_ATTRIBUTES) !== 0;
    const head = attrs ? 7 : 5;
    const buffer = Buffer.allocUnsafe(head + Buffer.byteLength(this.sql, 'utf8'));
    buffer.write(this.sql, head, 'utf8');
    buffer[4] = COM_QUERY;
    if (attrs) {
      buffer[5] = 0; // parameter_count
      buffer[6] = 1; // parameter_set_count
    }
    conn._resetSequenceId();
    conn.writePacket({
      buffer,
      length: () => buffer.length,
      writeHeader(seq: number) {
        buffer.writeUIntLE(buffer.length - 4, 0, 3);
        buffer[3] = seq;
      },
    });
  }
}

/** A length-encoded integer (a column count: never NULL). */
function lenenc(buf: Buffer, p: number): number {
  const c = buf[p]!;
  if (c < 0xfb) return c;
  if (c === 0xfc) return buf.readUInt16LE(p + 1);
  if (c === 0xfd) return buf.readUIntLE(p + 1, 3);
  return buf.readUInt32LE(p + 1) + buf.readUInt32LE(p + 5) * 0x100000000;
}

function lenencSize(c: number): number {
  return c < 0xfb ? 1 : c === 0xfc ? 3 : c === 0xfd ? 4 : 9;
}

/**
 * A column definition (Protocol::ColumnDefinition41): catalog, schema, table, org_table,
 * name, org_name (length-encoded strings), MariaDB's extended metadata when negotiated, then
 * the fixed part: charset u16, length u32, type u8, flags u16, decimals u8.
 */
function columnDefinition(buf: Buffer, p: number, end: number, extended: boolean): ResultField {
  let name = '';
  for (let i = 0; i < 6; i++) {
    const n = lenenc(buf, p);
    p += lenencSize(buf[p]!);
    if (i === 4) name = buf.toString('utf8', p, p + n);
    p += n;
  }
  if (extended) {
    const n = lenenc(buf, p);
    p = Math.min(p + lenencSize(buf[p]!) + n, end);
  }
  p += 1; // length of the fixed fields (0x0c)
  return { name, characterSet: buf.readUInt16LE(p), columnType: buf[p + 6]!, flags: buf.readUInt16LE(p + 7) };
}

/**
 * Runs `sql` (one SELECT) on `c` and writes its rows into `out` with the writer `writerFor`
 * gives for its columns. Resolves to false when `writerFor` refuses the result (its rows are
 * read and dropped, none reach `out`); rejects with mysql2's error for a server error.
 */
export function readChunkRows(c: mysql.Connection, sql: string, writerFor: (fields: ResultField[]) => RowWriter | null, out: RowSink): Promise<boolean> {
  const q = new ChunkQuery(sql, writerFor, out);
  (c as unknown as Mysql2Connection).addCommand(q);
  return q.done;
}
