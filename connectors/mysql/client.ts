/**
 * The binlog replication client: mysql2 for the TCP connection, the handshake and auth (and
 * the few `SET`/`SELECT` statements before the dump); everything after that is ours.
 *
 * mysql2's own binlog stream decodes almost nothing, reads the CRC into names and SQL, and
 * has no backpressure (PROTOCOL-NOTES.md). So once the session is set up we take the socket
 * over: mysql2's `data` listener is removed, and a {@link PacketFramer} cuts the byte stream
 * into protocol packets (reassembling payloads split over several 16 MB packets). We write
 * COM_REGISTER_SLAVE and COM_BINLOG_DUMP (or COM_BINLOG_DUMP_GTID) ourselves, and each
 * packet after that is an OK byte followed by one complete binlog event, handed to the caller
 * (who feeds it to the BinlogDecoder).
 *
 * One {@link BinlogConnection} is one attempt: a retry always makes a new one, so a broken
 * connection is never reused.
 */
import mysql from 'mysql2';
import { ErrorCodes, TributaryError, errorMessage } from '../../src/core/errors.js';
import { ReadPacer } from '../../src/core/read-pacer.js';
import { MysqlGtidSet } from './gtid.js';

/** Largest payload of one protocol packet; a payload of exactly this size continues in the next. */
export const MAX_PACKET = 0xffffff;

const COM_BINLOG_DUMP = 0x12;
const COM_REGISTER_SLAVE = 0x15;
const COM_BINLOG_DUMP_GTID = 0x1e;

/**
 * Cuts a MySQL protocol byte stream into logical packet payloads.
 *
 * Each packet is a 3-byte little-endian length, a sequence byte and the payload. A payload of
 * 0xffffff bytes means "continued in the next packet" (which may be empty), so one logical
 * payload (one binlog event) can span several packets; they are joined before delivery.
 * Socket chunks are cut anywhere, including inside a packet header.
 *
 * Payloads are delivered as views into the socket chunks when a packet lies inside one chunk
 * (the common case: no copy), and as one concatenated Buffer otherwise.
 */
export class PacketFramer {
  private readonly head = Buffer.alloc(4);
  private headLen = 0;
  /** Length of the packet being read, -1 between packets. */
  private bodyLen = -1;
  private bodyParts: Buffer[] = [];
  private bodyHave = 0;
  /** Parts of a logical payload that spans several max-size packets. */
  private msgParts: Buffer[] = [];
  private msgLen = 0;
  /** Sequence number of the last packet (for diagnostics). */
  seq = -1;

  constructor(private readonly onPayload: (payload: Buffer) => void) {}

  /** True when no partial packet is buffered. */
  get idle(): boolean {
    return this.bodyLen < 0 && this.headLen === 0 && this.msgParts.length === 0;
  }

  feed(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      if (this.bodyLen < 0) {
        let len: number;
        if (this.headLen === 0 && n - off >= 4) {
          len = chunk[off]! | (chunk[off + 1]! << 8) | (chunk[off + 2]! << 16);
          this.seq = chunk[off + 3]!;
          off += 4;
        } else {
          while (this.headLen < 4 && off < n) this.head[this.headLen++] = chunk[off++]!;
          if (this.headLen < 4) return;
          len = this.head[0]! | (this.head[1]! << 8) | (this.head[2]! << 16);
          this.seq = this.head[3]!;
          this.headLen = 0;
        }
        if (n - off >= len) {
          const body = chunk.subarray(off, off + len);
          off += len;
          this.packet(body, len);
          continue;
        }
        this.bodyLen = len;
        this.bodyParts.push(chunk.subarray(off));
        this.bodyHave = n - off;
        return;
      }
      const want = this.bodyLen - this.bodyHave;
      if (n - off >= want) {
        this.bodyParts.push(chunk.subarray(off, off + want));
        off += want;
        const len = this.bodyLen;
        const body = Buffer.concat(this.bodyParts, len);
        this.bodyParts = [];
        this.bodyHave = 0;
        this.bodyLen = -1;
        this.packet(body, len);
      } else {
        this.bodyParts.push(chunk.subarray(off));
        this.bodyHave += n - off;
        return;
      }
    }
  }

  private packet(body: Buffer, len: number): void {
    if (len === MAX_PACKET) {
      this.msgParts.push(body);
      this.msgLen += len;
      return;
    }
    if (this.msgParts.length > 0) {
      this.msgParts.push(body);
      const payload = Buffer.concat(this.msgParts, this.msgLen + len);
      this.msgParts = [];
      this.msgLen = 0;
      this.onPayload(payload);
      return;
    }
    this.onPayload(body);
  }
}

/** Frames `payload` as protocol packets starting at sequence `seq` (splitting at 16 MB). */
export function framePackets(payload: Buffer, seq = 0): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const len = Math.min(MAX_PACKET, payload.length - off);
    const h = Buffer.alloc(4);
    h.writeUIntLE(len, 0, 3);
    h[3] = seq++ & 0xff;
    parts.push(h, payload.subarray(off, off + len));
    off += len;
    if (len < MAX_PACKET) break;
  }
  return Buffer.concat(parts);
}

/** A server ERR packet: `0xff`, error code u16, `#` + 5-byte SQLSTATE, message. */
export interface ServerError {
  errno: number;
  sqlState: string;
  message: string;
}

export function parseErrPacket(p: Buffer): ServerError {
  const errno = p.length >= 3 ? p.readUInt16LE(1) : 0;
  let off = 3;
  let sqlState = '';
  if (p[off] === 0x23 /* # */) {
    sqlState = p.toString('latin1', off + 1, off + 6);
    off += 6;
  }
  return { errno, sqlState, message: p.toString('utf8', off) };
}

/** COM_REGISTER_SLAVE: announces this replica (SHOW SLAVE HOSTS lists it). */
export function encodeRegisterSlave(serverId: number, host = 'tributary'): Buffer {
  const h = Buffer.from(host, 'utf8');
  const b = Buffer.alloc(1 + 4 + 1 + h.length + 1 + 1 + 2 + 4 + 4);
  let o = b.writeUInt8(COM_REGISTER_SLAVE, 0);
  o = b.writeUInt32LE(serverId >>> 0, o);
  o = b.writeUInt8(h.length, o);
  o += h.copy(b, o);
  o = b.writeUInt8(0, o); // user
  o = b.writeUInt8(0, o); // password
  o = b.writeUInt16LE(0, o); // port
  o = b.writeUInt32LE(0, o); // replication rank
  b.writeUInt32LE(0, o); // master id
  return b;
}

/** COM_BINLOG_DUMP: file + 32-bit position. */
export function encodeBinlogDump(serverId: number, file: string, pos: number, flags = 0): Buffer {
  const f = Buffer.from(file, 'utf8');
  const b = Buffer.alloc(1 + 4 + 2 + 4 + f.length);
  let o = b.writeUInt8(COM_BINLOG_DUMP, 0);
  o = b.writeUInt32LE(pos >>> 0, o);
  o = b.writeUInt16LE(flags, o);
  o = b.writeUInt32LE(serverId >>> 0, o);
  f.copy(b, o);
  return b;
}

/**
 * COM_BINLOG_DUMP_GTID (MySQL 5.6+): the executed GTID set, encoded as n_sids u64, then per
 * UUID: 16 bytes, n_intervals u64, and [start, end) u64 pairs. Tagged GTIDs (8.3+) are not
 * representable in this encoding and are rejected.
 */
export function encodeBinlogDumpGtid(serverId: number, gtidSet: string, file = '', pos = 4): Buffer {
  const set = MysqlGtidSet.parse(gtidSet);
  const parts: Buffer[] = [];
  const text = set.toString();
  const sids = text ? text.split(',') : [];
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(sids.length));
  parts.push(n);
  for (const sid of sids) {
    const fields = sid.split(':');
    const uuid = Buffer.from(fields[0]!.replace(/-/g, ''), 'hex');
    const ivs: [number, number][] = [];
    for (const f of fields.slice(1)) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(f);
      if (!m) {
        throw new TributaryError(ErrorCodes.MYSQL_GTID_TAGGED, `tagged GTIDs (${sid}) cannot be sent in COM_BINLOG_DUMP_GTID`, {
          fix: 'start from a file/pos position instead (source.start: {file, pos})',
        });
      }
      ivs.push([Number(m[1]), Number(m[2] ?? m[1]) + 1]);
    }
    const b = Buffer.alloc(16 + 8 + ivs.length * 16);
    uuid.copy(b, 0);
    b.writeBigUInt64LE(BigInt(ivs.length), 16);
    ivs.forEach(([s, e], k) => {
      b.writeBigUInt64LE(BigInt(s), 24 + k * 16);
      b.writeBigUInt64LE(BigInt(e), 32 + k * 16);
    });
    parts.push(b);
  }
  const data = Buffer.concat(parts);
  const f = Buffer.from(file, 'utf8');
  const b = Buffer.alloc(1 + 2 + 4 + 4 + f.length + 8 + 4 + data.length);
  let o = b.writeUInt8(COM_BINLOG_DUMP_GTID, 0);
  o = b.writeUInt16LE(0x04 /* BINLOG_THROUGH_GTID */, o);
  o = b.writeUInt32LE(serverId >>> 0, o);
  o = b.writeUInt32LE(f.length, o);
  o += f.copy(b, o);
  b.writeBigUInt64LE(BigInt(pos), o);
  o += 8;
  o = b.writeUInt32LE(data.length, o);
  data.copy(b, o);
  return b;
}

/** Where a dump starts: a file position, or a GTID state (MariaDB) / set (MySQL). */
export type DumpStart = { file: string; pos: number } | { gtid: string };

export interface BinlogConnectionOptions {
  url: string;
  serverId: number;
  /** Server heartbeat period; a read silence of 3 periods counts as a dead connection. 0: off. */
  heartbeatMs: number;
  connectTimeoutMs?: number;
}

/** What the server told us while setting up the session. */
export interface ServerInfo {
  version: string;
  mariadb: boolean;
  /** True when the session negotiated CRC32 checksums (events carry a 4-byte trailer). */
  checksum: boolean;
  serverId: number;
}

/** Handlers of one dump. `onEvent` may return a Promise: no later event is delivered before it settles. */
export interface DumpHandlers {
  /** One complete event (header + body + CRC), without the OK byte. */
  onEvent(ev: Buffer): void | Promise<void>;
}

/** An error from the server or the connection, with the server errno when there is one. */
export class BinlogStreamError extends Error {
  constructor(
    message: string,
    readonly errno: number | null,
    readonly code: string | undefined,
    opts: { cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BinlogStreamError';
  }
}

type Mysql2Connection = mysql.Connection & {
  stream: NodeJS.ReadWriteStream & import('node:net').Socket;
  _closing?: boolean;
};

function query<T = Record<string, unknown>>(c: mysql.Connection, sql: string): Promise<T[]> {
  return new Promise((resolve, reject) => {
    c.query(sql, (err, rows) => (err ? reject(err) : resolve(rows as T[])));
  });
}

/** Opens a plain (non-replication) connection with mysql2, for preflight and schema queries. */
export function connectMysql(url: string, connectTimeoutMs = 10_000): Promise<mysql.Connection> {
  return new Promise((resolve, reject) => {
    const c = mysql.createConnection({ uri: url, connectTimeout: connectTimeoutMs, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, multipleStatements: false });
    c.once('error', reject);
    c.connect((err) => {
      if (err) {
        c.destroy();
        reject(err);
        return;
      }
      c.removeListener('error', reject);
      c.on('error', () => undefined); // reported by the next query
      resolve(c);
    });
  });
}

export { query as mysqlQuery };

/** Quotes a string literal for the few SET statements we build (GTID states are digits and dashes). */
function lit(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * One replication connection: connect, set the session up, dump, stream events until the
 * server ends the stream, the connection breaks, the read times out, or {@link close}.
 */
export class BinlogConnection {
  private framer: PacketFramer;
  private phase: 'register' | 'dump' | 'closed' = 'register';
  private finish!: (err: Error | null) => void;
  private readonly ended: Promise<void>;
  private pauses = 0;
  /** Pauses reading for a moment after small reads (read-pacer.ts says why). */
  private readonly pacer = new ReadPacer({ pause: () => this.pause(), resume: () => this.resume() });
  private queue: Buffer[] = [];
  private busy: Promise<void> | null = null;
  private lastRead = Date.now();
  private watchdog?: NodeJS.Timeout;
  private handlers!: DumpHandlers;
  private dumpPacket!: Buffer;
  /** Events received (for tests and metrics). */
  events = 0;

  private constructor(
    private readonly conn: Mysql2Connection,
    readonly info: ServerInfo,
    private readonly opts: BinlogConnectionOptions,
  ) {
    this.framer = new PacketFramer((p) => this.onPayload(p));
    this.ended = new Promise<void>((resolve, reject) => {
      this.finish = (err) => (err ? reject(err) : resolve());
    });
    this.ended.catch(() => undefined);
  }

  /**
   * Connects and prepares the session for a dump from `start`: checksum negotiation, the
   * heartbeat period, MariaDB capabilities and, for a GTID start, the connect state.
   */
  static async open(opts: BinlogConnectionOptions, start: DumpStart): Promise<BinlogConnection> {
    let c: Mysql2Connection;
    try {
      c = (await connectMysql(opts.url, opts.connectTimeoutMs)) as Mysql2Connection;
    } catch (err) {
      throw wrapConnectError(err);
    }
    try {
      const [row] = await query<{ v: string; cs: string | null; sid: string }>(c, 'SELECT @@version AS v, @@global.binlog_checksum AS cs, @@server_id AS sid');
      const version = String(row!.v);
      const mariadb = /mariadb/i.test(version);
      const cs = String(row!.cs ?? 'NONE').toUpperCase();
      // Without this a CRC32 server refuses the dump (error 1236); with it, every event keeps
      // its checksum trailer, which the decoder verifies.
      await query(c, `SET @master_binlog_checksum = @@global.binlog_checksum`);
      if (opts.heartbeatMs > 0) await query(c, `SET @master_heartbeat_period = ${BigInt(opts.heartbeatMs) * 1_000_000n}`);
      if (mariadb) {
        // 4 = MARIA_SLAVE_CAPABILITY_GTID: real GTID and annotate events instead of dummies.
        await query(c, 'SET @mariadb_slave_capability = 4');
        if ('gtid' in start) {
          await query(c, `SET @slave_connect_state = ${lit(start.gtid)}`);
          await query(c, 'SET @slave_gtid_strict_mode = 0');
          await query(c, 'SET @slave_gtid_ignore_duplicates = 0');
        }
      }
      const info: ServerInfo = { version, mariadb, checksum: cs === 'CRC32', serverId: Number(row!.sid) };
      const bc = new BinlogConnection(c, info, opts);
      bc.dumpPacket =
        'gtid' in start
          ? mariadb
            ? encodeBinlogDump(opts.serverId, '', 4)
            : encodeBinlogDumpGtid(opts.serverId, start.gtid)
          : encodeBinlogDump(opts.serverId, start.file, start.pos);
      return bc;
    } catch (err) {
      c.destroy();
      throw err instanceof TributaryError ? err : wrapConnectError(err);
    }
  }

  /**
   * Registers as a replica, sends the dump command and streams events to `handlers` until
   * the stream ends. Resolves when the server ends the stream (non-blocking dump) or
   * {@link close} is called; rejects with a {@link BinlogStreamError} otherwise.
   */
  stream(handlers: DumpHandlers): Promise<void> {
    this.handlers = handlers;
    const sock = this.conn.stream;
    // Take the socket over from mysql2: from here on the bytes are binlog packets.
    sock.removeAllListeners('data');
    sock.on('data', (chunk: Buffer) => {
      this.lastRead = Date.now();
      try {
        this.framer.feed(chunk);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      this.pacer.afterRead(chunk.length);
    });
    const lost = (err?: Error) =>
      this.fail(new BinlogStreamError(`connection lost${err ? `: ${err.message}` : ''}`, null, (err as { code?: string } | undefined)?.code ?? 'PROTOCOL_CONNECTION_LOST', { cause: err }));
    sock.on('close', () => lost());
    sock.on('error', (err: Error) => lost(err));
    this.conn.on('error', (err: Error) => lost(err));
    sock.write(framePackets(encodeRegisterSlave(this.opts.serverId), 0));
    if (this.opts.heartbeatMs > 0) {
      const limit = Math.max(1000, this.opts.heartbeatMs * 3);
      this.watchdog = setInterval(() => {
        if (this.pauses === 0 && Date.now() - this.lastRead > limit) {
          this.fail(new BinlogStreamError(`no data and no heartbeat for ${Date.now() - this.lastRead} ms: the connection is presumed dead`, null, 'ETIMEDOUT'));
        }
      }, Math.max(250, Math.min(this.opts.heartbeatMs, 5000)));
      this.watchdog.unref();
    }
    return this.ended;
  }

  private onPayload(p: Buffer): void {
    if (this.phase === 'closed') return;
    const first = p[0];
    if (first === 0xff) {
      const e = parseErrPacket(p);
      this.fail(new BinlogStreamError(`server error ${e.errno} (${e.sqlState}): ${e.message}`, e.errno, undefined));
      return;
    }
    if (this.phase === 'register') {
      // OK to COM_REGISTER_SLAVE: now the dump. Sequence ids restart at 0 per command.
      this.phase = 'dump';
      this.conn.stream.write(framePackets(this.dumpPacket, 0));
      return;
    }
    if (first === 0xfe && p.length < 9) {
      // EOF: only for a non-blocking dump.
      this.close();
      return;
    }
    if (first !== 0x00) {
      this.fail(new BinlogStreamError(`unexpected packet 0x${(first ?? 0).toString(16)} in the binlog stream`, null, 'PROTOCOL'));
      return;
    }
    this.events++;
    const ev = p.subarray(1);
    if (this.busy) {
      this.queue.push(ev);
      return;
    }
    this.deliver(ev);
  }

  private deliver(ev: Buffer): void {
    let r: void | Promise<void>;
    try {
      r = this.handlers.onEvent(ev);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (r) this.await(r);
  }

  /** An async event (zstd payload): hold every later event, in order, until it settles. */
  private await(r: Promise<void>): void {
    this.pause();
    this.busy = r.then(
      () => {
        this.busy = null;
        while (this.queue.length && !this.busy && this.phase !== 'closed') this.deliver(this.queue.shift()!);
        this.resume();
      },
      (err) => {
        this.busy = null;
        this.fail(err as Error);
      },
    );
  }

  /** Stop reading the socket (backpressure). Counted: each pause needs one resume. */
  pause(): void {
    if (this.pauses++ === 0) this.conn.stream.pause();
  }

  resume(): void {
    if (this.pauses === 0) return;
    if (--this.pauses === 0 && this.phase !== 'closed') {
      // Time spent paused is not silence from the server.
      this.lastRead = Date.now();
      this.conn.stream.resume();
    }
  }

  private fail(err: Error): void {
    if (this.phase === 'closed') return;
    this.shutdown();
    this.finish(err);
  }

  private shutdown(): void {
    this.phase = 'closed';
    clearInterval(this.watchdog);
    this.pacer.stop();
    this.queue = [];
    this.conn._closing = true;
    try {
      this.conn.stream.destroy();
    } catch {
      /* already gone */
    }
  }

  /** Ends the stream normally; idempotent. */
  close(): void {
    if (this.phase === 'closed') return;
    this.shutdown();
    this.finish(null);
  }
}

/**
 * A failed connect as a coded error that names the fix. It is marked retryable: whether it
 * really is (unreachable, refused login, unknown database) is decided from its cause by the
 * engine (src/runtime/error-class.ts), in one place for every source.
 */
export function wrapConnectError(err: unknown): Error {
  const e = err as { code?: string; errno?: number; message?: string };
  const auth = e.code === 'ER_ACCESS_DENIED_ERROR' || e.errno === 1045;
  return new TributaryError(ErrorCodes.MYSQL_CONNECT, `cannot connect to MySQL/MariaDB: ${errorMessage(err)}`, {
    fix: auth ? 'check the user and password in source.url' : 'check source.url (host, port, user, password) and that the server accepts connections',
    cause: err,
    retryable: true,
  });
}
