import pg from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import { CopyDataFramer, type CopyDataHandler } from './copy-framer.js';
import { ReadPacer } from '../../src/core/read-pacer.js';

/**
 * How old a transaction's commit must be, when it arrives, for reading to be paced (a
 * backlog drain; see `pace`). Well above any clock skew between the server and us.
 */
const BACKLOG_MS = 500;

/** Microseconds between the Unix epoch and 2000-01-01 (Postgres' epoch), in ms. */
const PG_EPOCH_MS = 946_684_800_000;

/** Session settings that fix the text form of values (see values.ts). */
export const SESSION_OPTIONS = '-c DateStyle=ISO -c IntervalStyle=iso_8601 -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex';

/**
 * A pgoutput "plugin" for pg-logical-replication that does not parse (the built-in parser
 * runs every value through pg-types, which is slow and turns numeric into floats).
 *
 * It also takes the CopyData messages over from the library: right before START_REPLICATION
 * it puts a {@link CopyDataFramer} in front of the `pg` parser on the socket. Per message
 * the parser slices a Buffer and emits a message object, and the library formats the LSN
 * twice, re-emits through EventEmitter2 and starts an async acknowledge (one promise per row
 * change) that does nothing with acknowledgement off; at 200k+ changes/s that was a fifth
 * of the process.
 */
function rawPgoutput(publication: string, onCopyData: CopyDataHandler, afterRead: (bytes: number) => void) {
  return {
    options: {},
    get name() {
      return 'pgoutput';
    },
    parse(buffer: Buffer): Buffer {
      return buffer;
    },
    start(client: pg.Client, slotName: string, lastLsn: string) {
      const connection = (client as unknown as { connection: NodeJS.EventEmitter & { stream: NodeJS.EventEmitter } }).connection;
      connection.removeAllListeners('copyData');
      CopyDataFramer.install(connection.stream, onCopyData, afterRead);
      return client.query(`START_REPLICATION SLOT "${slotName}" LOGICAL ${lastLsn} (proto_version '1', publication_names '"${publication}"', messages 'true')`);
    },
  };
}

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
  /** One XLogData payload. Runs synchronously inside the socket read. */
  data(lsn: WalStart, payload: Buffer): void;
  /** A primary keepalive: the server's WAL end, and whether it wants a reply now. */
  keepalive(walEnd: bigint, replyRequested: boolean): void;
}

/**
 * One replication connection (one attempt). It never acknowledges by itself: the library's
 * timer is off (`timeoutSeconds: 0`, `auto: false`) and standby status updates are built
 * here, with the exact flush LSN (the library adds 1 to whatever it is given).
 */
export class ReplicationConnection {
  private readonly service: LogicalReplicationService;
  private stopped = false;

  constructor(
    private readonly connectionString: string,
    connectTimeoutMs: number,
    private readonly handlers: ReplicationHandlers,
  ) {
    this.service = new LogicalReplicationService(
      { connectionString, options: SESSION_OPTIONS, application_name: 'tributary', connectionTimeoutMillis: connectTimeoutMs } as pg.ClientConfig,
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );

    // Errors also reject the subscribe() promise; the listener only keeps EventEmitter quiet.
    this.service.on('error', () => undefined);
  }

  /**
   * One CopyData message of the replication stream: XLogData ('w': WAL start, WAL end,
   * send time, then the pgoutput message) or a primary keepalive ('k': WAL end, send time,
   * reply requested).
   */
  private readonly walStart = new WalStart();
  private readonly onCopyData = (b: Buffer, start: number, end: number): void => {
    if (b[start] === 0x77) {
      const at = this.walStart;
      at.hi = b.readUInt32BE(start + 1);
      at.lo = b.readUInt32BE(start + 5);
      // A Begin: how long ago its transaction committed says whether this is a backlog or
      // live traffic (a logical walsender's XLogData carries no WAL end to compare with).
      if (b[start + 25] === 0x42 && end - start >= 46) this.behind = Date.now() - (PG_EPOCH_MS + Number(b.readBigInt64BE(start + 34) / 1000n)) > BACKLOG_MS;
      this.handlers.data(at, b.subarray(start + 25, end));
    } else if (b[start] === 0x6b) {
      this.handlers.keepalive(b.readBigUInt64BE(start + 1), b[start + 17] === 1);
    }
  };

  /** Stream from `startLsn` until stopped (resolves) or the connection fails (rejects). */
  async stream(slot: string, publication: string, startLsn: string): Promise<void> {
    await this.service.subscribe(rawPgoutput(publication, this.onCopyData, this.pace) as never, slot, startLsn);
    if (!this.stopped) throw Object.assign(new Error('replication stream ended by the server'), { code: 'ECONNRESET' });
  }

  private get socket(): { pause(): void; resume(): void } | undefined {
    return (this.service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection?.stream;
  }

  /** Reading of the socket: paced after small reads, held by backpressure. */
  private pacer: ReadPacer | undefined;
  /** Whether the last transaction begun had committed more than {@link BACKLOG_MS} before. */
  private behind = false;
  /**
   * Pace reading only while draining a backlog. Caught up, a paced read would hold each
   * commit back: at 5k changes/s it took the commit-to-sink p99 from 5 to 43 ms, since the
   * walsender, with nothing left to send, waits for its next WAL flush.
   */
  private readonly pace = (bytes: number): void => {
    const socket = this.socket;
    if (!socket || this.stopped || !this.behind) return;
    (this.pacer ??= new ReadPacer(socket)).afterRead(bytes);
  };

  /** Stop reading the socket (backpressure): the server blocks on its send buffer. */
  pause(): void {
    const socket = this.socket;
    if (socket) (this.pacer ??= new ReadPacer(socket)).hold();
  }

  resume(): void {
    this.pacer?.release();
  }

  /** Send a standby status update saying everything below `flush` is durable. */
  sendStatus(flush: bigint, replyRequested = false): void {
    const conn = (this.service as unknown as { _connection?: { sendCopyFromChunk(b: Buffer): void } })._connection;
    if (!conn || this.stopped) return;
    const b = Buffer.alloc(34);
    b[0] = 0x72; // 'r'
    const hi = Number(flush >> 32n);
    const lo = Number(flush & 0xffffffffn);
    for (const off of [1, 9, 17]) {
      b.writeUInt32BE(hi, off);
      b.writeUInt32BE(lo, off + 4);
    }
    b.writeBigInt64BE(BigInt(Date.now() - PG_EPOCH_MS) * 1000n, 25);
    b[33] = replyRequested ? 1 : 0;
    conn.sendCopyFromChunk(b);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pacer?.stop();
    await this.service.destroy().catch(() => undefined);
  }
}
