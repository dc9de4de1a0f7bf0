import pg from 'pg';
import { CopyDataFramer } from './copy-framer.js';
import { ReadPacer } from '../../src/core/read-pacer.js';

/**
 * How old a transaction's commit must be, when it arrives, for reading to be paced (a
 * backlog drain; see `pace`). Well above any clock skew between the server and us.
 */
const BACKLOG_MS = 500;

/** Milliseconds between the Unix epoch and 2000-01-01, the epoch of the protocol's clocks. */
const PG_EPOCH_MS = 946_684_800_000;

/** Session settings that fix the text form of values (see values.ts). */
export const SESSION_OPTIONS = '-c DateStyle=ISO -c IntervalStyle=iso_8601 -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex';

/** CopyData message types of the streaming replication protocol. */
const XLOG_DATA = 0x77; // 'w'
const PRIMARY_KEEPALIVE = 0x6b; // 'k'
const STANDBY_STATUS = 0x72; // 'r'

/**
 * The WAL start of the XLogData being decoded. One instance per connection, overwritten for
 * every message: the byte path writes its digits straight into the envelope, and only the
 * rare paths that keep it (watermarks, the string path) format it, by `toString()`.
 */
export class WalStart {
  hi = 0;
  lo = 0;
  /** `hi/lo` in upper-case hex, as Postgres prints an LSN. */
  toString(): string {
    return `${this.hi.toString(16).toUpperCase()}/${this.lo.toString(16).toUpperCase()}`;
  }
}

export interface ReplicationHandlers {
  /** One XLogData payload (a pgoutput message). Runs synchronously inside the socket read; a throw fails the connection. */
  data(lsn: WalStart, payload: Buffer): void;
  /** A primary keepalive: the server's WAL end. Runs before a requested reply is sent. */
  keepalive(walEnd: bigint): void;
  /**
   * The flush LSN to report in every standby status update: everything below it is durable in
   * every consumer. The connection never reports anything else, so the acknowledgement is the
   * caller's by construction.
   */
  flushed(): bigint;
}

export interface ReplicationOptions {
  url: string;
  connectTimeoutMs: number;
  slot: string;
  publication: string;
  /** Where to start, `hi/lo`. The server moves a start below the slot's confirmed flush LSN up to it. */
  startLsn: string;
  /** How often a standby status update is sent besides the replies the server asks for. */
  statusIntervalMs: number;
}

/** `"name"` with embedded quotes doubled. */
const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
/** `'text'` with embedded quotes doubled. */
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** The parts of `pg`'s client this module drives: its protocol connection and socket. */
interface PgWire {
  stream: NodeJS.EventEmitter & { pause(): void; resume(): void; writable?: boolean };
  sendCopyFromChunk(chunk: Buffer): void;
}

/**
 * One logical replication connection (one attempt), speaking the streaming replication
 * protocol itself over `pg`'s connection in `replication=database` mode:
 *
 * - `START_REPLICATION SLOT s LOGICAL lsn (proto_version '1', publication_names '"p"')`
 *   switches the connection to copy-both mode;
 * - every CopyData the server sends is framed off the socket ({@link CopyDataFramer}) and is
 *   an XLogData (`w`: WAL start, WAL end, send time, one pgoutput message) or a primary
 *   keepalive (`k`: WAL end, send time, reply-requested flag);
 * - we send standby status updates (`r`: write, flush and apply LSN, our clock, reply
 *   requested) every `statusIntervalMs`, and at once when a keepalive asks for one, always with
 *   {@link ReplicationHandlers.flushed}. Nothing else acknowledges: no library timer, no
 *   "last received" LSN (PROTOCOL-NOTES.md: never acknowledge past what is durable).
 *
 * Until the connection has received anything, each periodic status update asks for a reply:
 * the walsender answers with a keepalive at once, which proves the stream works (an idle
 * server would otherwise say nothing for up to wal_sender_timeout / 2).
 */
export class ReplicationConnection {
  /** Settles when the connection ends: resolves after {@link close}, rejects with why it failed. */
  readonly done: Promise<void>;
  private settle!: (err: unknown) => void;
  private settled = false;
  private stopped = false;
  private received = false;
  private readonly wire: PgWire;
  private readonly timer: NodeJS.Timeout;
  /** Reading of the socket: paced after small reads, held by backpressure. */
  private readonly pacer: ReadPacer;
  /** Whether the last transaction begun had committed more than {@link BACKLOG_MS} before. */
  private behind = false;
  private readonly walStart = new WalStart();

  /** Connects and starts streaming. Rejects when the connection cannot be made. */
  static async open(o: ReplicationOptions, h: ReplicationHandlers): Promise<ReplicationConnection> {
    const client = new pg.Client({
      connectionString: o.url,
      options: SESSION_OPTIONS,
      application_name: 'tributary',
      connectionTimeoutMillis: o.connectTimeoutMs,
      replication: 'database',
    } as pg.ClientConfig);
    // Errors also reject the START_REPLICATION query (and so `done`); this only keeps the
    // EventEmitter from throwing them.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return new ReplicationConnection(client, o, h);
  }

  private constructor(
    private readonly client: pg.Client,
    o: ReplicationOptions,
    private readonly h: ReplicationHandlers,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => {
        if (this.settled) return;
        this.settled = true;
        clearInterval(this.timer);
        if (err) reject(err);
        else resolve();
      };
    });
    this.done.catch(() => undefined);
    this.wire = (client as unknown as { connection: PgWire }).connection;
    this.pacer = new ReadPacer(this.wire.stream);
    // In front of pg's parser, before the CopyBothResponse can arrive: CopyData is ours, every
    // other message (errors, notices, the end of the stream) still reaches the client.
    CopyDataFramer.install(this.wire.stream, this.onCopyData, this.pace);
    this.timer = setInterval(() => this.sendStatus(!this.received), o.statusIntervalMs);
    const start = `START_REPLICATION SLOT ${ident(o.slot)} LOGICAL ${o.startLsn} (proto_version '1', publication_names ${literal(ident(o.publication))}, messages 'true')`;
    client.query(start).then(
      () => this.settle(this.stopped ? null : Object.assign(new Error('replication stream ended by the server'), { code: 'ECONNRESET' })),
      (err: unknown) => this.settle(this.stopped ? null : err),
    );
  }

  private readonly onCopyData = (b: Buffer, start: number, end: number): void => {
    if (this.settled) return;
    try {
      const type = b[start];
      if (type === XLOG_DATA) {
        this.received = true;
        const at = this.walStart;
        at.hi = b.readUInt32BE(start + 1);
        at.lo = b.readUInt32BE(start + 5);
        // A Begin: how long ago its transaction committed says whether this is a backlog or
        // live traffic (a logical walsender's XLogData carries no WAL end to compare with).
        if (b[start + 25] === 0x42 && end - start >= 46) this.behind = Date.now() - (PG_EPOCH_MS + Number(b.readBigInt64BE(start + 34) / 1000n)) > BACKLOG_MS;
        this.h.data(at, b.subarray(start + 25, end));
      } else if (type === PRIMARY_KEEPALIVE) {
        this.received = true;
        this.h.keepalive(b.readBigUInt64BE(start + 1));
        // Unanswered, a reply request ends the connection after wal_sender_timeout.
        if (b[start + 17] === 1) this.sendStatus(false);
      }
    } catch (err) {
      // A message we cannot decode: the connection is done, and `done` says why.
      this.settle(err);
      void this.close();
    }
  };

  /**
   * Pace reading only while draining a backlog. Caught up, a paced read would hold each
   * commit back: at 5k changes/s it took the commit-to-sink p99 from 5 to 43 ms, since the
   * walsender, with nothing left to send, waits for its next WAL flush.
   */
  private readonly pace = (bytes: number): void => {
    if (this.stopped || !this.behind) return;
    this.pacer.afterRead(bytes);
  };

  /** Stop reading the socket (backpressure): the server blocks on its send buffer. */
  pause(): void {
    this.pacer.hold();
  }

  resume(): void {
    this.pacer.release();
  }

  /**
   * Sends a standby status update: written, flushed and applied are all the flush LSN (a
   * logical consumer has no other meaning for them), with our clock in microseconds since
   * 2000-01-01.
   */
  sendStatus(replyRequested = false): void {
    if (this.stopped || this.settled || this.wire.stream.writable === false) return;
    const flush = this.h.flushed();
    const b = Buffer.alloc(34);
    b[0] = STANDBY_STATUS;
    const hi = Number(flush >> 32n);
    const lo = Number(flush & 0xffffffffn);
    for (const off of [1, 9, 17]) {
      b.writeUInt32BE(hi, off);
      b.writeUInt32BE(lo, off + 4);
    }
    b.writeBigInt64BE(BigInt(Date.now() - PG_EPOCH_MS) * 1000n, 25);
    b[33] = replyRequested ? 1 : 0;
    this.wire.sendCopyFromChunk(b);
  }

  /** Says where we are one last time (so a clean stop leaves the slot current) and disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.stopped) return;
    try {
      this.sendStatus(false);
    } catch {
      /* the socket is gone: nothing to say */
    }
    this.stopped = true;
    clearInterval(this.timer);
    this.pacer.stop();
    this.settle(null);
    await this.client.end().catch(() => undefined);
  }
}
