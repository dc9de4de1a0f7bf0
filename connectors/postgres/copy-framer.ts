/**
 * Frames the replication connection's CopyData messages straight off the socket.
 *
 * Once START_REPLICATION has switched the connection to copy-both mode, nearly every byte
 * the server sends is a CopyData message ('d'). The `pg` protocol parser would wrap each one
 * in a Buffer slice and a message object and emit it through EventEmitter; at 300k+ messages
 * a second that was about a tenth of the process, most of it garbage. This framer sits in
 * front of that parser on the socket's `data` event: it hands each CopyData body to
 * `onCopyData` as offsets into the received chunk, and forwards every other message, byte
 * for byte, to the parser, so the client still sees the CopyBothResponse, errors, notices
 * and the end of the stream exactly as before.
 */
export type CopyDataHandler = (buf: Buffer, start: number, end: number) => void;

const COPY_DATA = 0x64; // 'd'
const COPY_BOTH_RESPONSE = 0x57; // 'W'

const enum Mode {
  /** Before the CopyBothResponse: everything goes to the parser. */
  Before,
  /** Copy-both: CopyData is framed here, anything else ends the mode. */
  Copy,
  /** After copy-both ended: everything goes to the parser again, unframed. */
  After,
}

export class CopyDataFramer {
  private mode = Mode.Before;
  /** The bytes of a message split across socket reads (only that message, never a chunk). */
  private partial: Buffer | null = null;

  constructor(
    private readonly onCopyData: CopyDataHandler,
    /** The socket's original `data` listeners (the `pg` parser). */
    private readonly forward: (chunk: Buffer) => void,
    /** Called after each socket read has been handled, with its size. */
    private readonly afterRead?: (bytes: number) => void,
  ) {}

  /** Install on `socket` in place of its `data` listeners; returns the framer. */
  static install(socket: NodeJS.EventEmitter, onCopyData: CopyDataHandler, afterRead?: (bytes: number) => void): CopyDataFramer {
    const parsers = socket.listeners('data') as ((chunk: Buffer) => void)[];
    socket.removeAllListeners('data');
    const framer = new CopyDataFramer(
      onCopyData,
      (chunk) => {
        for (const p of parsers) p(chunk);
      },
      afterRead,
    );
    socket.on('data', framer.onData);
    return framer;
  }

  readonly onData = (chunk: Buffer): void => {
    this.frame(chunk);
    this.afterRead?.(chunk.length);
  };

  private frame(chunk: Buffer): void {
    if (this.mode === Mode.After) {
      this.forward(chunk);
      return;
    }
    let off = 0;
    if (this.partial) {
      off = this.completePartial(chunk);
      if (off < 0) return; // still incomplete: all of the chunk was taken
    }
    const n = chunk.length;
    while (off + 5 <= n) {
      const end = off + 1 + chunk.readUInt32BE(off + 1);
      if (end > n) break;
      if (!this.message(chunk, off, end)) {
        // Copy-both ended with this message: the parser takes everything from here.
        this.forward(chunk.subarray(off));
        return;
      }
      off = end;
    }
    // Keep only the split message's bytes; the chunk itself can be collected.
    if (off < n) this.partial = Buffer.from(chunk.subarray(off));
  }

  /**
   * Append the start of `chunk` to the split message. Returns the offset in `chunk` after
   * the message once it is complete and handled, or -1 when `chunk` did not complete it.
   */
  private completePartial(chunk: Buffer): number {
    let p = this.partial!;
    let used = 0;
    if (p.length < 5) {
      // The length field itself was split: take just enough to read it.
      used = Math.min(5 - p.length, chunk.length);
      p = Buffer.concat([p, chunk.subarray(0, used)]);
      if (p.length < 5) {
        this.partial = p;
        return -1;
      }
    }
    const total = 1 + p.readUInt32BE(1);
    const take = Math.min(total - p.length, chunk.length - used);
    const whole = Buffer.allocUnsafe(p.length + take);
    p.copy(whole, 0);
    chunk.copy(whole, p.length, used, used + take);
    used += take;
    if (whole.length < total) {
      this.partial = whole;
      return -1;
    }
    this.partial = null;
    if (!this.message(whole, 0, total)) {
      this.forward(whole);
      if (used < chunk.length) this.forward(chunk.subarray(used));
      return -1;
    }
    return used;
  }

  /**
   * One complete message at `buf[start, end)`. Returns false when it ends copy-both mode
   * (the caller forwards it and everything after it).
   */
  private message(buf: Buffer, start: number, end: number): boolean {
    const type = buf[start];
    if (this.mode === Mode.Copy) {
      if (type === COPY_DATA) {
        this.onCopyData(buf, start + 5, end);
        return true;
      }
      this.mode = Mode.After;
      return false;
    }
    if (type === COPY_BOTH_RESPONSE) this.mode = Mode.Copy;
    this.forward(buf.subarray(start, end));
    return true;
  }
}
