import type { HeldBack, Position, PreflightProblem, SnapshotEventBuilder, SnapshotSupport, Source, SourceContext, SourceItem, SourceOutput } from './source.js';

/**
 * The source SDK: what a connector supplies, and the one runtime loop that runs every
 * connector ({@link SourceRuntime}), the counterpart of `defineSink` (docs/source-sdk.md).
 *
 * A connector (a {@link SourceDriver}) only connects, reads, decodes, knows its positions and
 * supports snapshots. The runtime owns everything the sources used to repeat, each with its
 * own rules: the reconnect loop (every failure goes to `ctx.link`, the one place that
 * classifies errors and paces retries, src/runtime/source-link.ts), backpressure (pausing the
 * connection while the stream is full), where a new connection resumes, dropping the events
 * of a transaction that were already handed over before a reconnect, commits that wait for
 * state they depend on, and acknowledgement (only positions every consumer holds durably, or,
 * with nothing in flight, a position the server says holds nothing for us).
 */

/** What a connection hands to the runtime. Given to {@link SourceDriver.connect}. */
export interface StreamHandlers {
  /** The connection received something: it really streams, so an outage is over. Cheap: call it on every message if that is simplest. */
  alive(): void;
  /**
   * Hands over one item, in order. Items of a transaction that were handed over before a
   * reconnect (same `txn`, lower `idx`) are dropped here, so the connector simply re-reads the
   * open transaction from its start. When the stream is full, the runtime pauses the connection
   * (`SourceStream.pause`) until it drains.
   */
  push(item: SourceItem): void;
  /**
   * The server has sent everything before `resume`, and nothing of it is for us. Call it only
   * between transactions (the decoder holds no open one), e.g. on a keepalive or heartbeat.
   *
   * - Without `txn` (a source with a server-side slot): when nothing is in flight (no open
   *   transaction, every commit handed over has been acknowledged), `resume` is acknowledged
   *   (`SourceDriver.acknowledge`), so an idle slot does not hold the server's log.
   * - With `txn` (a source without one): an empty commit `{txn, resume}` is handed over, so
   *   the sinks' checkpoints follow the log. `txn` must compare below `resume` and above the
   *   last commit's resume.
   */
  passed(resume: Position, txn?: Position): void;
  /** The resume position acknowledged so far (durable in every consumer), or null. */
  readonly acknowledged: Position | null;
}

/** One connection of a source (one attempt), as the runtime drives it. */
export interface SourceStream {
  /**
   * Settles when the connection ends: resolves after `close()`, rejects with why it failed (a
   * resolve the runtime did not ask for counts as the server ending the stream).
   */
  readonly done: Promise<void>;
  /** Stop reading the socket (backpressure); the server then blocks on its send buffer. */
  pause(): void;
  /** Undo one `pause()`. */
  resume(): void;
  /** Disconnect. Idempotent. */
  close(): void | Promise<void>;
}

/**
 * A source connector as the runtime runs it. Only `preflight`, `parsePosition`, `connect` and
 * `close` are required.
 */
export interface SourceDriver {
  /** Checks the server's settings and privileges; each problem names its fix. */
  preflight(): Promise<PreflightProblem[]>;
  /** Parses a position stored by `Position.serialize()`. */
  parsePosition(s: string): Position;
  /** What the database keeps for this pipeline (see `Source.heldBack`); polled off the hot path. */
  heldBack?(): Promise<HeldBack>;
  /** Creates what streaming needs (see `Source.prepare`). */
  prepare?(from: Position | null): Promise<{ positionLost?: boolean } | void>;
  /** Snapshot support (chunked reads and watermarks), when the source has it. */
  snapshots?(): SnapshotSupport;
  /** The envelope of a snapshot row. */
  readonly snapshotEvent?: SnapshotEventBuilder;
  /**
   * Called once when streaming begins, before the first connection, with the pipeline's
   * resume position. Returns where streaming resumes: `from`, or null when `from` means nothing
   * to the server any more (a recreated slot). Default: `from`.
   */
  begin?(from: Position | null): Promise<Position | null>;
  /**
   * Opens one connection that streams from `resume` (the resume position of the last commit
   * handed over, or what `begin` returned; null: the connector's own start). Failures (here or
   * through `done`) go to `explain`, then to the engine's classification.
   */
  connect(resume: Position | null, handlers: StreamHandlers): Promise<SourceStream>;
  /**
   * Turns a failure whose fix this connector knows (a purged position, a lost slot, a missing
   * privilege) into a coded error that stops the pipeline; null lets the engine classify it
   * (src/runtime/error-class.ts: transient, auth, config, unknown).
   */
  explain?(err: unknown, at: Position | null): Error | null;
  /**
   * Called after a connection ended (failed, or closed by the runtime) and before the next
   * one: reset decoder state, drop a control connection that may have died with the server.
   */
  disconnected?(): Promise<void> | void;
  /**
   * When a commit may not be handed over yet because state it depends on is not durable yet
   * (MySQL: the schema history after a DDL), a promise that resolves once it is (and may be
   * retried for as long as it takes). The commit, and everything after it, waits; a new
   * connection resumes after it. Undefined: hand it over now.
   */
  commitGate?(): Promise<void> | undefined;
  /** Every consumer holds everything before `resume` durably: the server may discard it. Called only when it moves forward. */
  acknowledge?(resume: Position): void;
  /** Releases everything. Idempotent. */
  close(): Promise<void>;
}

/** A connection that ended without being asked to: the server closed the stream. */
function serverEnded(): Error {
  return Object.assign(new Error('the server ended the replication stream'), { code: 'ECONNRESET' });
}

const below = (a: Position | null, b: Position | null): boolean => (a === null ? b !== null : b !== null && a.compare(b) < 0);

/**
 * The one loop that runs a source: the {@link Source} the pipeline sees, around a connector's
 * {@link SourceDriver}.
 *
 * - **Reconnects.** Each attempt is a new connection (a broken one is never reused). A
 *   failure goes first to `driver.explain` (a coded error stops the pipeline), then to
 *   `ctx.link.lost`, which waits the backoff for its class of error, or throws when retrying
 *   cannot help. `alive()` tells the link the connection works.
 * - **Resume.** A new connection resumes at the last commit handed over. The events of a
 *   transaction that was open when the connection broke are re-read and dropped by index.
 * - **Backpressure.** When the stream refuses an item, the connection is paused until the
 *   stream drains (`tributary_source_paused`).
 * - **Acknowledgement.** Only what the pipeline acknowledges (durable in every sink), or, with
 *   nothing in flight, a position the server says holds nothing for us (`passed`).
 */
export class SourceRuntime implements Source {
  /** The resume position acknowledged so far. */
  private acked: Position | null = null;
  /** Resume position of the last commit handed over (or held by the commit gate). */
  private lastResume: Position | null = null;
  /**
   * The transaction whose items are being handed over (no commit yet), and how many were.
   * Two fields, not an object: this is set for every event.
   */
  private openTxn: Position | null = null;
  private openCount = 0;
  /** After a reconnect: the items of this transaction below `count` were handed over already. */
  private replay: { txn: Position; count: number } | null = null;
  /** Items waiting behind a commit the driver's gate holds. */
  private held: SourceItem[] = [];
  private gate?: Promise<void>;
  private stream?: SourceStream;
  private out?: SourceOutput;
  private paused = false;
  private closed?: Promise<void>;
  readonly snapshots?: () => SnapshotSupport;
  readonly heldBack?: () => Promise<HeldBack>;
  /** What every connection of the driver hands its items to. */
  private readonly handlers: StreamHandlers;

  constructor(
    /** The connector. */
    readonly driver: SourceDriver,
    private readonly ctx: SourceContext,
  ) {
    if (driver.snapshots) this.snapshots = () => driver.snapshots!();
    if (driver.heldBack) this.heldBack = () => driver.heldBack!();
    const rt = this;
    this.handlers = {
      alive: () => ctx.link.up(),
      push: (item) => rt.push(item),
      passed: (resume, txn) => rt.passed(resume, txn),
      get acknowledged() {
        return rt.acked;
      },
    };
  }

  get snapshotEvent(): SnapshotEventBuilder | undefined {
    return this.driver.snapshotEvent;
  }

  preflight(): Promise<PreflightProblem[]> {
    return this.driver.preflight();
  }

  parsePosition(s: string): Position {
    return this.driver.parsePosition(s);
  }

  async prepare(from: Position | null): Promise<{ positionLost?: boolean } | void> {
    return this.driver.prepare?.(from);
  }

  async run(from: Position | null, out: SourceOutput): Promise<void> {
    const signal = this.ctx.signal;
    this.out = out;
    const initial = this.driver.begin ? await this.driver.begin(from) : from;
    this.acked = initial;
    this.lastResume = initial;
    const onAbort = () => void this.stream?.close();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted && !this.closed) {
        const at = this.lastResume;
        const attempt: { stream?: SourceStream; ended?: boolean } = {};
        try {
          // Commits held for state that failed to become durable: that comes first.
          if (this.held.length) await this.releaseHeld();
          attempt.stream = await this.driver.connect(at, this.handlers);
          this.stream = attempt.stream;
          if (signal.aborted || this.closed) break;
          await attempt.stream.done;
          if (signal.aborted || this.closed) break;
          throw serverEnded();
        } catch (err) {
          if (signal.aborted || this.closed) break;
          await this.endAttempt(attempt);
          const fatal = this.driver.explain?.(err, at);
          if (fatal) throw fatal;
          // The engine decides: wait (backoff by class of error), or give up by throwing.
          await this.ctx.link.lost(err);
        } finally {
          await this.endAttempt(attempt);
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Ends one attempt, once: closes its connection, prepares the re-read of an open
   * transaction, and lets the driver reset (also after a connect that failed).
   */
  private async endAttempt(a: { stream?: SourceStream; ended?: boolean }): Promise<void> {
    if (a.ended) return;
    a.ended = true;
    if (a.stream && this.stream === a.stream) this.stream = undefined;
    this.paused = false;
    try {
      await a.stream?.close();
    } catch {
      /* closing anyway */
    }
    // Re-read the open transaction from its start; drop what was handed over already. A
    // connection that handed nothing over keeps the replay of the one before it.
    if (this.openTxn) this.replay = { txn: this.openTxn, count: this.openCount };
    this.openTxn = null;
    await this.driver.disconnected?.();
  }

  private push(item: SourceItem): void {
    if (item.kind === 'commit') {
      this.replay = null;
      this.openTxn = null;
      this.lastResume = item.resume;
      if (this.held.length || (this.gate = this.driver.commitGate?.())) {
        this.held.push(item);
        if (this.held.length === 1) void this.releaseHeld().catch(() => undefined);
        return;
      }
    } else {
      const r = this.replay;
      if (r) {
        if (item.txn.compare(r.txn) === 0 && item.idx < r.count) return; // handed over before the reconnect
        this.replay = null;
      }
      this.openTxn = item.txn;
      this.openCount = item.idx + 1;
      if (this.held.length) {
        this.held.push(item);
        return;
      }
    }
    this.emit(item);
  }

  /** The release of held items in progress, shared by every caller. */
  private releasing?: Promise<void>;

  /** Waits for the commit gate (asking again when the wait failed), then hands over what it held. */
  private releaseHeld(): Promise<void> {
    if (!this.releasing) {
      const p: Promise<void> = this.drainHeld().finally(() => {
        if (this.releasing === p) this.releasing = undefined;
      });
      this.releasing = p;
    }
    return this.releasing;
  }

  private async drainHeld(): Promise<void> {
    while (this.held.length) {
      const gate = this.gate ?? this.driver.commitGate?.();
      this.gate = undefined;
      if (gate) await gate;
      const held = this.held;
      this.held = [];
      for (const item of held) this.emit(item);
    }
  }

  private emit(item: SourceItem): void {
    const out = this.out!;
    if (!out.push(item) && !this.paused) {
      const stream = this.stream;
      if (!stream) return;
      this.paused = true;
      stream.pause();
      this.ctx.metrics.set('tributary_source_paused', 1, { pipeline: this.ctx.pipeline });
      void out.drained().then(() => {
        if (this.stream === stream) this.paused = false;
        this.ctx.metrics.set('tributary_source_paused', 0, { pipeline: this.ctx.pipeline });
        stream.resume();
      });
    }
  }

  private passed(resume: Position, txn?: Position): void {
    if (this.openTxn || this.held.length) return;
    if (txn) {
      const last = this.lastResume ?? this.acked;
      if (last && resume.compare(last) <= 0) return;
      this.push({ kind: 'commit', txn, resume });
      return;
    }
    // Something handed over is not yet durable in every sink: it must not be skipped.
    if (below(this.acked, this.lastResume)) return;
    if (this.acked && resume.compare(this.acked) <= 0) return;
    this.acked = resume;
    this.lastResume = resume;
    this.driver.acknowledge?.(resume);
  }

  acknowledge(resume: Position): void {
    if (this.acked && resume.compare(this.acked) <= 0) return;
    this.acked = resume;
    this.driver.acknowledge?.(resume);
  }

  close(): Promise<void> {
    return (this.closed ??= (async () => {
      const s = this.stream;
      this.stream = undefined;
      try {
        await s?.close();
      } catch {
        /* closing anyway */
      }
      await this.driver.close();
    })());
  }
}
