import type mysql from 'mysql2';
import type { MysqlSourceConfig } from './config.js';
import { ErrorCodes, TributaryError, errorMessage } from '../../src/core/errors.js';
import { type Row, SerializedChangeEvent } from '../../src/core/event.js';
import type { HeldBack, Position, PreflightProblem, SourceContext } from '../../src/core/source.js';
import { SourceRuntime, type SourceDriver, type SourceStream, type StreamHandlers } from '../../src/core/source-sdk.js';
import type { SnapshotEventBuilder, SnapshotSupport } from '../../src/snapshot/types.js';
import { backoffDelay, sleep } from '../../src/runtime/retry.js';
import { tableMatcher } from '../../src/runtime/table-filter.js';
import { BinlogConnection, connectMysql, mysqlQuery, wrapConnectError, type DumpStart } from './client.js';
import { BinlogDecoder, type MysqlSourceItem } from './decoder.js';
import { MysqlPosition } from './position.js';
import { checkMysql } from './preflight.js';
import { binlogsHeldBack } from './held-back.js';
import { SchemaHistory } from './schema-history.js';
import { MysqlSnapshotSupport, checkSignalTable, mysqlSnapshotEvent, parseSignalTable, type SignalTable } from './snapshot.js';

/** Where streaming starts when no sink holds a checkpoint, fixed once in `prepare()`. */
type StartRecord = { file: string; pos: number; gtid: string | null } | { gtid: string };

const START_KEY = 'mysql-start';
const SCHEMA_KEY = 'mysql-schema';

/**
 * The MySQL/MariaDB binlog connector, run by the source runtime (src/core/source-sdk.ts),
 * which owns reconnects, backpressure, resume positions and acknowledgement.
 *
 * Positions are `{file, pos, gtid}` ({@link MysqlPosition}), produced by the decoder only at
 * transaction boundaries: an event's `txn` is its transaction's start, a commit's `resume`
 * the offset just after the transaction's end event with the GTID state including it.
 *
 * Each connection attempt is a new {@link BinlogConnection} that dumps from the resume
 * position the runtime gives (the last commit pushed, or the pipeline's `from`). When a
 * connection breaks inside a transaction, the runtime drops the events of that transaction
 * already pushed on the re-read (same start position, same event index).
 *
 * Acknowledgement: MySQL has no server-side slot, so `acknowledge` only prunes the schema
 * history. Server heartbeats while no transaction is open become an empty commit at the
 * current binlog position (`StreamHandlers.passed`), so an idle pipeline's checkpoint follows the binlog (across
 * rotations) and an old file can be purged without stranding it.
 */
export class MysqlConnector implements SourceDriver {
  private control?: mysql.Connection;
  private conn?: BinlogConnection;
  private decoder?: BinlogDecoder;
  private history = new SchemaHistory();
  /** The runtime's side of the current connection. */
  private handlers?: StreamHandlers;
  private start?: StartRecord;
  private prepared?: Promise<void>;
  private closed?: Promise<void>;
  private readonly matches: (t: string) => boolean;
  /** The acknowledged resume position: the schema history is pruned up to it. */
  private acked: MysqlPosition | null = null;
  /** Where snapshot watermarks are written (their inserts come back as `watermark` items). */
  private readonly signal: SignalTable;
  private support?: MysqlSnapshotSupport;
  /** Row keys of tables without a primary key (key_columns, else a NOT NULL unique key). */
  private readonly fallbackKeys = new Map<string, string[]>();
  /** server_id of the last watermark seen: the `source.server_id` of snapshot rows. */
  private watermarkServerId = 0;
  readonly snapshotEvent: SnapshotEventBuilder;

  constructor(
    readonly cfg: MysqlSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.matches = tableMatcher(cfg.tables, cfg.exclude);
    this.serverId = cfg.server_id ?? defaultServerId(ctx.pipeline);
    this.signal = parseSignalTable(cfg.signal_table);
    for (const [t, cols] of Object.entries(cfg.key_columns ?? {})) if (cols.length) this.fallbackKeys.set(t, cols);
    this.snapshotEvent = mysqlSnapshotEvent(ctx.pipeline, () => this.watermarkServerId);
  }

  /** Chunked snapshot reads with signal-table watermarks (connectors/mysql/snapshot.ts). */
  snapshots(): SnapshotSupport {
    return (this.support ??= new MysqlSnapshotSupport({
      url: this.cfg.url,
      include: this.cfg.tables,
      exclude: this.cfg.exclude,
      keyColumns: this.cfg.key_columns,
      signal: this.signal,
      onKey: (t, key) => {
        this.fallbackKeys.set(t, key);
        // Its row events must now come as objects, to be given this key (see serializable).
        this.decoder?.reconsiderTables();
      },
    }));
  }

  /** The replica id this pipeline registers with. */
  readonly serverId: number;

  parsePosition(s: string): Position {
    return MysqlPosition.parse(s);
  }

  private async controlConn(): Promise<mysql.Connection> {
    if (this.control) return this.control;
    try {
      this.control = await connectMysql(this.cfg.url);
    } catch (err) {
      // Retryable or not is the engine's call, from the cause (src/runtime/error-class.ts).
      throw wrapConnectError(err);
    }
    return this.control;
  }

  private async endControl(): Promise<void> {
    const c = this.control;
    this.control = undefined;
    if (c) await new Promise<void>((r) => c.end(() => r())).catch(() => undefined);
  }

  async preflight(): Promise<PreflightProblem[]> {
    const c = await this.controlConn();
    return [...(await checkMysql(c, { serverId: this.serverId })), ...(await checkSignalTable(c, this.signal))];
  }

  /**
   * Fixes the start position for a pipeline without checkpoints, and stores it, so that a
   * crash before the first checkpoint resumes there rather than at a later "latest".
   */
  async prepare(from: Position | null = null): Promise<{ positionLost?: boolean }> {
    const r = await this.checkStart(from);
    // Table definitions are read now, at the start position, before start() returns: a DDL
    // run right after must reach the history as a change, not be folded into its base.
    await this.loadSchemas(r.positionLost ? null : (from as MysqlPosition | null));
    return r;
  }

  private schemasLoaded?: Promise<void>;

  /** The schema history at the resume (or start) position, and keys of key-less tables. */
  private loadSchemas(initial: MysqlPosition | null): Promise<void> {
    return (this.schemasLoaded ??= (async () => {
      await this.fixStart();
      const startRec = this.start!;
      const historyAt = initial ?? ('file' in startRec ? new MysqlPosition(startRec.file, startRec.pos, startRec.gtid) : MysqlPosition.ZERO);
      await this.loadHistory(historyAt);
      // Tables without a primary key: stream them with the key their snapshot rows carry.
      try {
        for (const [t, key] of await (this.snapshots() as MysqlSnapshotSupport).fallbackKeys()) if (!this.fallbackKeys.has(t)) this.fallbackKeys.set(t, key);
      } catch (err) {
        this.ctx.logger.warn({ err: errorMessage(err) }, 'could not look up unique keys of tables without a primary key');
      }
    })());
  }

  private async checkStart(from: Position | null): Promise<{ positionLost?: boolean }> {
    await this.fixStart();
    // A checkpoint in a purged file cannot be resumed: say so, so `snapshot: when_needed`
    // can re-snapshot instead of failing at the dump with error 1236.
    const f = from as MysqlPosition | null;
    if (f && f.file) {
      const logs = await mysqlQuery<{ Log_name: string }>(await this.controlConn(), 'SHOW BINARY LOGS').catch(() => null);
      if (logs && !logs.some((l) => l.Log_name === f.file)) {
        this.ctx.logger.warn({ position: f.toString() }, 'the checkpoint position is no longer in the binlog (purged)');
        if (this.cfg.snapshot === 'when_needed') {
          // The pipeline re-snapshots and streams from here: the stored start may be purged too.
          const [st] = await mysqlQuery<{ File: string; Position: number }>(await this.controlConn(), 'SHOW MASTER STATUS');
          if (st) {
            this.start = { file: st.File, pos: Number(st.Position), gtid: await this.gtidNow(await this.controlConn()) };
            await this.ctx.store.put(this.ctx.pipeline, START_KEY, this.start);
            this.ctx.logger.warn({ start: this.start }, 'streaming restarts at the current binlog position; re-snapshotting (snapshot: when_needed)');
          }
        }
        return { positionLost: true };
      }
    }
    return {};
  }

  private fixStart(): Promise<void> {
    return (this.prepared ??= (async () => {
      const stored = await this.ctx.store.get<StartRecord>(this.ctx.pipeline, START_KEY);
      if (stored) {
        this.start = stored;
        return;
      }
      const c = await this.controlConn();
      const s = this.cfg.start;
      let rec: StartRecord;
      if (s === 'latest') {
        const [st] = await mysqlQuery<{ File: string; Position: number }>(c, 'SHOW MASTER STATUS');
        if (!st) {
          throw new TributaryError(ErrorCodes.MYSQL_BINLOG_OFF, 'SHOW MASTER STATUS returned nothing: the binary log is off', {
            fix: 'add log_bin = mysql-bin and server_id = 1 under [mysqld] in my.cnf and restart the server',
          });
        }
        rec = { file: st.File, pos: Number(st.Position), gtid: await this.gtidNow(c) };
      } else if (s === 'earliest') {
        const logs = await mysqlQuery<{ Log_name: string }>(c, 'SHOW BINARY LOGS');
        if (!logs.length) throw new TributaryError(ErrorCodes.MYSQL_BINLOG_OFF, 'SHOW BINARY LOGS lists no file', { fix: 'turn the binary log on (log_bin)' });
        rec = { file: logs[0]!.Log_name, pos: 4, gtid: null };
      } else if ('gtid' in s) rec = { gtid: s.gtid };
      else rec = { file: s.file, pos: s.pos, gtid: null };
      this.start = rec;
      await this.ctx.store.put(this.ctx.pipeline, START_KEY, rec);
      this.ctx.logger.info({ start: rec }, 'mysql start position fixed');
    })());
  }

  /** The server's GTID state now: MariaDB gtid_binlog_pos, MySQL gtid_executed (null when off). */
  private async gtidNow(c: mysql.Connection): Promise<string | null> {
    try {
      const [r] = await mysqlQuery<{ v: string }>(c, 'SELECT @@version AS v');
      const q = /mariadb/i.test(String(r?.v)) ? 'SELECT @@global.gtid_binlog_pos AS g' : 'SELECT @@global.gtid_executed AS g';
      const [g] = await mysqlQuery<{ g: string | null }>(c, q);
      const s = String(g?.g ?? '').replace(/\s+/g, '');
      return s || null;
    } catch {
      return null;
    }
  }

  /** Loads the schema history for `at` from the store, or snapshots it from the server. */
  private async loadHistory(at: MysqlPosition): Promise<void> {
    const doc = await this.ctx.store.get<Parameters<typeof SchemaHistory.fromStored>[0]>(this.ctx.pipeline, SCHEMA_KEY);
    this.history = SchemaHistory.fromStored(doc, at);
    const c = await this.controlConn();
    await this.history.loadCollations(c);
    // Tables missing from the stored history (or no history yet): their definitions now.
    // Exact for a `latest` start; with FULL metadata only used for hints matched by name.
    await this.history.snapshot(c, at);
    await this.persistHistory();
  }

  private async persistHistory(): Promise<void> {
    if (this.acked) this.history.prune(this.acked);
    const revision = this.history.currentRevision;
    await this.ctx.store.put(this.ctx.pipeline, SCHEMA_KEY, this.history.toStored());
    this.history.markDurable(revision);
  }

  /** The write in progress of {@link flushHistory}, shared by every caller. */
  private historyFlush?: Promise<void>;

  /**
   * Makes the schema history durable, retrying a failed write with backoff for as long as it
   * takes (reading stops meanwhile). It is also the runtime's commit gate: a commit after a
   * DDL never goes out before the DDL is stored (a checkpoint at that commit would make a
   * restart resume past a DDL its history lacks).
   */
  private flushHistory(): Promise<void> {
    return (this.historyFlush ??= (async () => {
      try {
        for (let attempt = 1; this.history.dirty; attempt++) {
          try {
            await this.persistHistory();
          } catch (err) {
            if (this.ctx.signal.aborted) throw err;
            const delay = backoffDelay(attempt, 500, 30_000);
            this.ctx.logger.warn({ code: ErrorCodes.STATE_STORE, attempt, delayMs: delay }, `cannot store the schema history, retrying; commits after the DDL wait for it: ${errorMessage(err)}`);
            await sleep(delay, this.ctx.signal);
            if (this.ctx.signal.aborted) throw err;
          }
        }
      } finally {
        this.historyFlush = undefined;
      }
    })());
  }

  /** Streaming begins: the start position and the schema history at the resume position. */
  async begin(from: Position | null): Promise<Position | null> {
    await this.fixStart();
    const initial = from as MysqlPosition | null;
    await this.loadSchemas(initial);
    await this.endControl();
    this.acked = initial;
    return initial;
  }

  /** A commit waits until the schema history it depends on is durable (see flushHistory). */
  commitGate(): Promise<void> | undefined {
    return this.history.dirty ? this.flushHistory() : undefined;
  }

  /** Where a dump from `resume` starts, and the position the decoder starts counting at. */
  private dumpStart(resume: MysqlPosition | null): { dump: DumpStart; pos: MysqlPosition | null } {
    const startRec = this.start!;
    if (resume) return { dump: { file: resume.file, pos: resume.pos }, pos: resume };
    if ('file' in startRec) return { dump: { file: startRec.file, pos: startRec.pos }, pos: new MysqlPosition(startRec.file, startRec.pos, startRec.gtid) };
    return { dump: { gtid: startRec.gtid }, pos: null };
  }

  /** One binlog dump from `resume` (null: the fixed start position). */
  async connect(resume: Position | null, h: StreamHandlers): Promise<SourceStream> {
    this.handlers = h;
    const startRec = this.start!;
    const { dump, pos } = this.dumpStart(resume as MysqlPosition | null);
    // A history write that failed before the connection dropped: finish it first.
    if (this.history.dirty) await this.flushHistory();
    const conn = await BinlogConnection.open({ url: this.cfg.url, serverId: this.serverId, heartbeatMs: this.cfg.heartbeat_ms }, dump);
    this.conn = conn;
    const decoder = new BinlogDecoder({
      pipeline: this.ctx.pipeline,
      file: pos?.file ?? '',
      pos: pos?.pos ?? 4,
      gtid: pos ? pos.gtid : 'gtid' in startRec ? startRec.gtid : null,
      checksumBeforeFde: conn.info.checksum,
      includeTable: (db, t) => this.matches(`${db}.${t}`) || (db === this.signal.db && t === this.signal.table),
      serializeTable: (db, t) => this.serializable(db, t),
      schemaFor: (db, t, map) => this.history.hintFor(db, t, map),
      onDdl: (ddl) => this.history.apply(ddl),
      onHeartbeat: (p) => this.onHeartbeat(p),
      emit: (item) => this.onItem(item),
    });
    this.decoder = decoder;
    let live = false;
    const done = conn.stream({
      onEvent: (ev) => {
        // The first event (the server's artificial ROTATE) proves the dump works: an
        // outage is over.
        if (!live) {
          live = true;
          h.alive();
        }
        const r = decoder.feed(ev);
        if (r) return r.then(() => this.afterFeed());
        return this.afterFeed();
      },
    });
    return { done, pause: () => conn.pause(), resume: () => conn.resume(), close: () => conn.close() };
  }

  /** Dump errors whose fix is known (a purged position, a server_id clash, privileges). */
  explain(err: unknown, at: Position | null): Error | null {
    return explain(err, (at as MysqlPosition | null) ?? this.dumpStart(null).pos);
  }

  /** A dump ended: undelivered items are re-read from the resume position. */
  disconnected(): void {
    this.conn = undefined;
  }

  /** After each fed event: make a changed schema history durable before its commit goes out. */
  private afterFeed(): void | Promise<void> {
    if (!this.history.dirty) return;
    return this.flushHistory();
  }

  /**
   * Whether a table's row events may be serialized by the decoder (the fast path): not when
   * {@link onItem} has to read or amend them, i.e. the signal table (watermarks are read from
   * the row) and tables keyed by a fallback key (the key is derived from the row here).
   */
  private serializable(db: string, table: string): boolean {
    if (db === this.signal.db && table === this.signal.table) return false;
    return !this.fallbackKeys.has(`${db}.${table}`);
  }

  /**
   * One decoded item: watermarks are read from the signal table's rows, tables keyed by a
   * fallback key get their key; everything else goes to the runtime as it is.
   */
  private onItem(item: MysqlSourceItem): void {
    const h = this.handlers!;
    if (item.kind === 'event') {
      const ev = item.event;
      // Serialized events come only from tables serializable() accepted: nothing to inspect,
      // and reading a field would parse the JSON.
      if (ev instanceof SerializedChangeEvent) {
        h.push(item);
        return;
      }
      if (ev.source.table === this.signal.table && ev.source.db === this.signal.db) {
        // The signal table: an inserted row is a snapshot watermark; nothing of it reaches sinks.
        const mark = ev.op === 'c' ? ev.after?.mark : null;
        if (mark === 'low' || mark === 'high') {
          this.watermarkServerId = ev.source.server_id ?? 0;
          h.push({ kind: 'watermark', id: String(ev.after!.id), mark, txn: item.txn, idx: item.idx, at: { file: ev.source.file, pos: ev.source.pos } });
        }
        return;
      }
      if (ev.key === null && ev.op !== 't' && this.fallbackKeys.size) {
        const cols = this.fallbackKeys.get(`${ev.source.db}.${ev.source.table}`);
        const img = ev.after ?? ev.before;
        if (cols && img) {
          const key: Row = {};
          for (const k of cols) key[k] = img[k] ?? null;
          ev.key = key;
        }
      }
    }
    h.push(item);
  }

  /**
   * A heartbeat between transactions: everything up to `pos` has been received and holds
   * nothing more for us. The runtime pushes an empty commit there (when nothing is open or
   * held) so the checkpoint can follow. Its `txn` is one byte before `pos`, so that a
   * transaction starting exactly at `pos` still compares above the stored position and is
   * not skipped as already held.
   */
  private onHeartbeat(pos: MysqlPosition): void {
    if (this.decoder?.inTransaction || !pos.file || pos.pos < 5) return;
    this.handlers!.passed(pos, pos.withPos(pos.pos - 1));
  }

  acknowledge(resume: Position): void {
    const p = resume as MysqlPosition;
    if (!this.acked || p.compare(this.acked) > 0) this.acked = p;
  }

  /**
   * The binlog files a resume still needs (binlogsHeldBack). On a connection of its own, made
   * and ended per poll: the control connection may be busy with a snapshot's long reads.
   */
  async heldBack(): Promise<HeldBack> {
    const start = this.start && 'file' in this.start ? this.start.file : null;
    const oldest = this.acked?.file || start;
    const c = await connectMysql(this.cfg.url, 5_000);
    try {
      return await binlogsHeldBack(c, oldest || null);
    } finally {
      c.destroy();
    }
  }

  close(): Promise<void> {
    return (this.closed ??= (async () => {
      try {
        this.conn?.close();
      } catch {
        /* closing anyway */
      }
      this.conn = undefined;
      await this.endControl();
    })());
  }
}

/**
 * Turns the server errors whose fix this connector knows (a purged position, a server_id
 * clash, a refused dump, missing privileges) into coded errors that name it; null for
 * everything else, which the engine classifies (src/runtime/error-class.ts).
 */
function explain(err: unknown, at: MysqlPosition | null): Error | null {
  if (err instanceof TributaryError) return err.retryable ? null : err;
  const errno = (err as { errno?: number | null }).errno ?? null;
  const msg = errorMessage(err);
  if (errno === 1236) {
    if (/could not find first log file|purged|not found in binlog index|Could not find GTID|binlog file.*does not exist/i.test(msg)) {
      return new TributaryError(
        ErrorCodes.MYSQL_PURGED,
        `the binlog position ${at ? at.toString() : ''} is no longer on the server (purged): ${msg}`,
        {
          fix: 'the changes since the checkpoint are gone from the binlog. Re-snapshot: set source.snapshot: when_needed and restart; ' +
            'or, accepting the gap, delete the pipeline state (state dir/<pipeline>) and restart with source.start: latest. ' +
            'Keep binlogs longer (binlog_expire_logs_seconds) so this does not recur',
          cause: err,
        },
      );
    }
    if (/same server_uuid|same server_id|same server id/i.test(msg)) {
      return new TributaryError(ErrorCodes.MYSQL_SERVER_ID_TAKEN, `another replica uses server_id: ${msg}`, { fix: 'give each pipeline a unique source.server_id', cause: err });
    }
    return new TributaryError(ErrorCodes.MYSQL_DUMP_REFUSED, `the server refused the binlog dump: ${msg}`, {
      fix: 'check the stored position with `tributary status` and the server log; the checkpoint may point past the end of a file',
      cause: err,
    });
  }
  if (errno === 1227 || errno === 1044) {
    return new TributaryError(ErrorCodes.MYSQL_PRIVILEGE, `access denied: ${msg}`, {
      fix: 'GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO the source user (see `tributary validate --check-source`)',
      cause: err,
    });
  }
  return null;
}

/**
 * A stable replica id from the pipeline name (FNV-1a), above 1,000,000 so it stays clear of
 * the small ids people give real servers. Two pipelines on the same server must not share
 * one: the server drops a replica when another registers with its id.
 */
export function defaultServerId(pipeline: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < pipeline.length; i++) {
    h ^= pipeline.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 1_000_000 + (h % 2_000_000_000);
}

/** The MySQL/MariaDB source: the {@link MysqlConnector} run by the source runtime. */
export class MysqlSource extends SourceRuntime {
  constructor(cfg: MysqlSourceConfig, ctx: SourceContext) {
    super(new MysqlConnector(cfg, ctx), ctx);
  }
}
