import pg from 'pg';
import type { PostgresSourceConfig } from './config.js';
import { ErrorCodes, TributaryError, errorMessage } from '../../src/core/errors.js';
import type { HeldBack, Position, PreflightProblem, SourceContext } from '../../src/core/source.js';
import { SourceRuntime, type SourceDriver, type SourceStream, type StreamHandlers } from '../../src/core/source-sdk.js';
import { isRetryableError } from '../../src/runtime/retry.js';
import { TableCapture } from './capture.js';
import { loadTypes, resolveTables, slotInfo, type CapturedTable } from './catalog.js';
import { PgoutputDecoder } from './pgoutput.js';
import { PgPosition } from './position.js';
import { checkPostgres } from './preflight.js';
import { slotHeldBack } from './held-back.js';
import { privilegeError } from './privileges.js';
import { ReplicationConnection, SESSION_OPTIONS } from './replication.js';
import type { PgTypeInfo } from './values.js';
import { PgSnapshotSupport, pgSnapshotEvent } from './snapshot.js';

/** Server errors after which reconnecting cannot help, given a message here that names the fix. */
const FATAL_SQLSTATES = new Set(['42704' /* undefined object: slot or publication */, '42501' /* privilege */, '55000' /* slot invalidated */, '3D000' /* no database */]);

/** How long a connection attempt may take before it counts as failed (a black-holed host). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The Postgres connector: pgoutput over a replication connection that speaks the protocol
 * itself (replication.ts). The source runtime (src/core/source-sdk.ts) runs it: reconnects,
 * backpressure, resume positions and acknowledgement are the runtime's.
 *
 * Positions: a transaction's position is its commit LSN; the resume position is the end
 * of its commit record. Acknowledgement (the standby status "flush" LSN) only ever reports
 * what the runtime has acknowledged: what the pipeline says every sink holds, or, when nothing
 * is in flight, the WAL end of the last keepalive, so an idle slot advances while other
 * databases write WAL.
 */
export class PostgresConnector implements SourceDriver {
  readonly slot: string;
  readonly publication: string;
  private control?: pg.Client;
  private conn?: ReplicationConnection;
  private types = new Map<number, PgTypeInfo>();
  private readonly primaryKeys = new Map<number, string[]>();
  private decoder?: PgoutputDecoder;
  private heartbeat?: NodeJS.Timeout;
  /** The control connection being made, if any (see controlClient). */
  private controlConnecting?: Promise<pg.Client>;
  private closed?: Promise<void>;
  private db = '';
  /** The role the source connects as (for the GRANTs that errors name). */
  private role: string | undefined;
  private readonly capture: TableCapture;
  private tableCheck?: NodeJS.Timeout;
  private checking?: Promise<void>;

  constructor(
    readonly cfg: PostgresSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.slot = cfg.slot ?? `tributary_${ctx.pipeline}`;
    this.publication = cfg.publication ?? `tributary_${ctx.pipeline}`;
    this.capture = new TableCapture({
      pipeline: ctx.pipeline,
      publication: this.publication,
      include: cfg.tables,
      exclude: cfg.exclude,
      replicaIdentityFull: cfg.replica_identity_full,
      create: cfg.create_publication,
      logger: ctx.logger,
      store: ctx.store,
      requestSnapshot: ctx.requestSnapshot,
    });
  }

  parsePosition(s: string): Position {
    return PgPosition.parse(s);
  }

  /**
   * The control connection, connected on first use. Callers that come while it connects
   * share that attempt: two at once (the heartbeat and a catalog refresh) each made a client,
   * and the one not kept stayed connected until the server went away.
   */
  private controlClient(): Promise<pg.Client> {
    if (this.control) return Promise.resolve(this.control);
    return (this.controlConnecting ??= this.connectControl().finally(() => (this.controlConnecting = undefined)));
  }

  private async connectControl(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.cfg.url, options: SESSION_OPTIONS, application_name: 'tributary-control', connectionTimeoutMillis: CONNECT_TIMEOUT_MS } as pg.ClientConfig);
    // A control connection that dies (server restart, pg_terminate_backend, an idle-session
    // timeout) is dropped at once, so the next heartbeat or catalog refresh connects again
    // instead of failing on the dead client until the replication connection happens to drop.
    const drop = () => {
      if (this.control === c) this.control = undefined;
    };
    c.on('end', drop);
    let lost = false;
    c.on('error', (err) => {
      drop();
      // The server's FATAL comes first; the closed socket then adds "Connection terminated
      // unexpectedly", which says nothing more.
      if (lost) return;
      lost = true;
      // A server shutting down ends every session: the replication connection reports that and
      // reconnects, so only another cause is worth a warning (a Ctrl-C of the demo stops its
      // Postgres too, which showed as a warning with a stack on every stop).
      const code = (err as { code?: string }).code;
      const shutdown = this.closed !== undefined || code === '57P01' || code === '57P02' || code === '57P03';
      this.ctx.logger[shutdown ? 'info' : 'warn']({ code }, `control connection lost: ${errorMessage(err)}; it reconnects when next needed`);
    });
    try {
      await c.connect();
    } catch (err) {
      const denied = privilegeError(err, { role: c.user, doing: 'cannot connect to Postgres' });
      if (denied) throw denied;
      throw new TributaryError(ErrorCodes.PG_CONNECT, `cannot connect to Postgres: ${errorMessage(err)}`, {
        fix: 'check source.url (host, port, user, password, database) and that the server accepts connections',
        cause: err,
        retryable: true,
      });
    }
    if (this.closed) {
      // close() ran while this connected: nothing may keep the connection open now.
      await c.end().catch(() => undefined);
      throw new TributaryError(ErrorCodes.PG_CONNECT, 'the Postgres source is closed', { fix: 'none needed: the pipeline is stopping' });
    }
    this.control = c;
    const who = (await c.query<{ db: string; role: string }>('SELECT current_database() AS db, current_user AS role')).rows[0]!;
    this.db = who.db;
    this.role = who.role;
    return c;
  }

  async preflight(): Promise<PreflightProblem[]> {
    const c = await this.controlClient();
    const tables = await resolveTables(c, this.cfg.tables, this.cfg.exclude);
    const problems = await checkPostgres(c, {
      slot: this.slot,
      publication: this.publication,
      createPublication: this.cfg.create_publication,
      tables,
      include: this.cfg.tables,
      replicaIdentityFull: this.cfg.replica_identity_full,
      snapshotNever: this.cfg.snapshot === 'never',
    });
    // Preflight's warnings are logged by the caller; the catalog sync does not repeat them.
    this.capture.noteWarned(tables.filter((t) => !t.hasIdentity));
    return problems;
  }

  private prepared?: Promise<{ positionLost?: boolean }>;

  /**
   * Publication first, then the slot (the other order makes decoding fail).
   *
   * A stored checkpoint with no slot (or a slot that lost its WAL) means changes may have
   * been missed. That is never papered over by starting at the server's current position:
   * with `snapshot: when_needed` the slot is recreated and the caller re-snapshots
   * (`positionLost`); otherwise it is an error naming that option.
   */
  prepare(from: Position | null = null): Promise<{ positionLost?: boolean }> {
    return (this.prepared ??= this.doPrepare(from));
  }

  private async doPrepare(from: Position | null): Promise<{ positionLost?: boolean }> {
    try {
      return await this.prepareOnce(from);
    } catch (err) {
      throw privilegeError(err, { role: this.role, doing: 'cannot prepare the publication and slot' }) ?? err;
    }
  }

  private async prepareOnce(from: Position | null): Promise<{ positionLost?: boolean }> {
    const c = await this.controlClient();
    this.types = await loadTypes(c);
    const slot = await slotInfo(c, this.slot);
    const whenNeeded = this.cfg.snapshot === 'when_needed';
    let positionLost = false;
    if (slot.walStatus === 'lost') {
      if (!whenNeeded) {
        throw new TributaryError(ErrorCodes.PG_SLOT_LOST, `replication slot "${this.slot}" is lost: the WAL it needed is gone`, {
          fix: `set source.snapshot: when_needed to recreate the slot and re-snapshot, or drop it (SELECT pg_drop_replication_slot('${this.slot}')) and start over`,
        });
      }
      await c.query('SELECT pg_drop_replication_slot($1)', [this.slot]);
      slot.exists = false;
      positionLost = true;
      this.ctx.logger.warn({ slot: this.slot }, 'replication slot was lost; recreating it and re-snapshotting (snapshot: when_needed)');
    } else if (!slot.exists && from) {
      if (!whenNeeded) {
        throw new TributaryError(ErrorCodes.PG_SLOT_LOST, `replication slot "${this.slot}" does not exist, but sinks hold positions up to ${from.serialize()}: changes since then may be lost`, {
          fix: 'set source.snapshot: when_needed to recreate the slot and re-snapshot, or delete the state directory to start a new pipeline',
        });
      }
      positionLost = true;
      this.ctx.logger.warn({ slot: this.slot }, 'replication slot is missing; recreating it and re-snapshotting (snapshot: when_needed)');
    }
    // The slot was inspected first, but the publication must exist before the slot is created.
    await this.capture.sync(c);
    this.useTables(this.capture.tables);
    if (!slot.exists) {
      await c.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [this.slot]);
      this.ctx.logger.info({ slot: this.slot }, 'replication slot created');
    }
    this.positionLost = positionLost;
    return { positionLost };
  }

  private positionLost = false;

  /** Keys of the published tables, for the decoder (relations that arrive later are looked up then). */
  private useTables(tables: CapturedTable[]): void {
    for (const t of tables) this.primaryKeys.set(t.oid, t.primaryKey);
  }

  snapshots(): PgSnapshotSupport {
    return new PgSnapshotSupport({
      url: this.cfg.url,
      include: this.cfg.tables,
      exclude: this.cfg.exclude,
      publication: this.publication,
      keyColumns: this.cfg.key_columns,
      types: () => this.types,
    });
  }

  get snapshotEvent() {
    return pgSnapshotEvent(this.ctx.pipeline, this.db);
  }

  /**
   * Streaming begins: the decoder, the heartbeat and the table check. After a lost position
   * the old checkpoint means nothing to the new slot, so streaming starts where the slot is.
   */
  async begin(from: Position | null): Promise<Position | null> {
    await this.prepare(from);
    this.decoder = new PgoutputDecoder({
      pipeline: this.ctx.pipeline,
      db: this.db,
      types: this.types,
      primaryKeys: this.primaryKeys,
      onUnknown: (kind, oid) => void this.refreshCatalog(kind, oid),
    });
    this.startHeartbeat();
    this.startTableCheck();
    return from && !this.positionLost ? from : null;
  }

  /** One replication connection from `resume` (null: where the slot is). */
  async connect(resume: Position | null, h: StreamHandlers): Promise<SourceStream> {
    const decoder = this.decoder!;
    let live = false;
    const flushed = () => (h.acknowledged as PgPosition | null)?.lsn ?? 0n;
    const conn = await ReplicationConnection.open(
      {
        url: this.cfg.url,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        slot: this.slot,
        publication: this.publication,
        startLsn: (resume ?? PgPosition.ZERO).serialize(),
        statusIntervalMs: this.cfg.status_interval_ms,
      },
      {
        data: (lsn, payload) => {
          if (!live) {
            live = true;
            h.alive();
          }
          decoder.handle(payload, lsn, h.push);
        },
        keepalive: (walEnd) => {
          if (!live) {
            live = true;
            h.alive();
          }
          // Between transactions, the WAL up to walEnd holds nothing for us: the runtime moves
          // the slot there when nothing is in flight, so WAL written by other databases does
          // not pile up behind an idle slot.
          if (!decoder.txn) h.passed(new PgPosition(walEnd));
        },
        flushed,
      },
    );
    this.conn = conn;
    return conn;
  }

  /** Replication errors whose fix is known; everything else the engine classifies. */
  explain(err: unknown): Error | null {
    const code = (err as { code?: string }).code;
    if (!code || !FATAL_SQLSTATES.has(code)) return null;
    const denied = privilegeError(err, { role: this.role, doing: 'replication failed' });
    if (denied) return denied;
    return new TributaryError(code === '55000' ? ErrorCodes.PG_SLOT_LOST : ErrorCodes.PG_REPLICATION, `replication failed: ${errorMessage(err)}`, {
      fix: code === '55000' ? `the slot was invalidated; drop it and re-snapshot (source.snapshot: when_needed)` : 'check that the slot, publication and privileges exist (tributary validate --check-source)',
      cause: err,
    });
  }

  /**
   * A connection ended: the open transaction is read again from its start, and the control
   * connection, which may have died with the server too, is made again when next needed.
   */
  async disconnected(): Promise<void> {
    this.conn = undefined;
    this.decoder?.prepareReconnect();
    const c = this.control;
    this.control = undefined;
    await c?.end().catch(() => undefined);
  }

  /** Sends the new flush LSN at once (the connection reads it from the runtime). */
  acknowledge(): void {
    this.conn?.sendStatus();
  }

  /** The WAL the slot retains on the server (slotHeldBack), on the control connection. */
  async heldBack(): Promise<HeldBack> {
    return slotHeldBack(await this.controlClient(), this.slot);
  }

  /** A new table or type appeared mid-stream: reload the catalog for later relations. */
  private async refreshCatalog(kind: 'relation' | 'type', oid: number): Promise<void> {
    try {
      const c = await this.controlClient();
      if (kind === 'type') {
        for (const [k, v] of await loadTypes(c)) this.types.set(k, v);
      } else {
        const all = await resolveTables(c, ['*.*'], undefined);
        const t = all.find((x) => x.oid === oid);
        if (t) this.primaryKeys.set(oid, t.primaryKey);
      }
    } catch (err) {
      this.ctx.logger.warn({ err, kind, oid }, 'catalog refresh failed');
    }
  }

  /**
   * Every `table_check_ms`: tables that now match `source.tables` (created, or given a key,
   * after start) join the publication and are snapshotted; keyless ones are warned about and
   * left out (TableCapture). A failure is logged once, and again only after a success.
   */
  private startTableCheck(): void {
    if (!this.cfg.table_check_ms) return;
    let failing = false;
    this.tableCheck = setInterval(() => {
      if (this.checking || this.closed) return;
      this.checking = this.controlClient()
        .then((c) => this.capture.sync(c, { lockTimeoutMs: Math.max(1000, Math.min(this.cfg.table_check_ms, 10_000)) }))
        .then(
          () => {
            this.useTables(this.capture.tables);
            if (failing) this.ctx.logger.info('table check works again');
            failing = false;
          },
          (err: unknown) => {
            // A lost server is reported by the replication connection; say nothing more about it.
            if (isRetryableError(err)) return;
            const e = privilegeError(err, { role: this.role, doing: 'table check failed' }) ?? err;
            if (!failing) this.ctx.logger.warn({ err: e, code: (e as TributaryError).code }, `table check failed, retrying every ${this.cfg.table_check_ms} ms: ${errorMessage(e)}`);
            failing = true;
          },
        )
        .finally(() => (this.checking = undefined));
    }, this.cfg.table_check_ms);
    this.tableCheck.unref();
  }

  private startHeartbeat(): void {
    if (!this.cfg.heartbeat_ms) return;
    let warned = false;
    this.heartbeat = setInterval(() => {
      // A non-transactional logical message writes WAL in this database, so the slot has
      // something to move past even when the captured tables are idle.
      void this.controlClient()
        .then((c) => c.query("SELECT pg_logical_emit_message(false, 'tributary_heartbeat', '')"))
        .then(
          () => (warned = false),
          (err) => {
            if (!warned) this.ctx.logger.warn({ err }, 'heartbeat failed');
            warned = true;
          },
        );
    }, this.cfg.heartbeat_ms);
    this.heartbeat.unref();
  }

  close(): Promise<void> {
    return (this.closed ??= (async () => {
      clearInterval(this.heartbeat);
      clearInterval(this.tableCheck);
      await this.checking;
      await this.capture.flushed();
      // Says where we are one last time, so a clean stop leaves the slot current.
      await this.conn?.close();
      await this.controlConnecting?.catch(() => undefined);
      await this.control?.end().catch(() => undefined);
      this.control = undefined;
    })());
  }
}

/** The Postgres source: the {@link PostgresConnector} run by the source runtime. */
export class PostgresSource extends SourceRuntime {
  constructor(cfg: PostgresSourceConfig, ctx: SourceContext) {
    super(new PostgresConnector(cfg, ctx), ctx);
  }
}
