import type { Logger } from 'pino';
import { ErrorCodes, TributaryError, errorMessage } from '../core/errors.js';
import { SerializedChangeEvent, commitTime, qualifiedTable } from '../core/event.js';
import type { Position, PreflightProblem, Source, SourceItem, SourceOutput } from '../core/source.js';
import type { ResolvedPipeline } from '../config/load.js';
import type { SinkEvent } from '../sdk/index.js';
import type { StateStore } from '../state/store.js';
import { openStateStore } from '../state/open.js';
import { StreamEvent, type DurableCommit, type EventStream, type StreamConsumer, type StreamEntry } from '../stream/types.js';
import { openStream, pipelineStateDir } from '../stream/open.js';
import { LogStream } from '../stream/log-stream.js';
import type { Metrics } from './metrics.js';
import { SinkRunner } from './sink-runner.js';
import { createSource } from './source-registry.js';
import { SnapshotCoordinator } from '../snapshot/coordinator.js';
import { JoinedTableSnapshots } from '../snapshot/joined-tables.js';
import { SourceLinkMonitor } from './source-link.js';
import { LogRetention } from './log-retention.js';
import { positionSupport } from './positions.js';
import { countRewind, planRewind, type RewindPlan } from './rewind.js';
import { liveLogView } from '../log/view.js';
import { LogGauges } from './log-gauges.js';
import { ALL_ROLES, RoleLocks, runsSource, sinksFor, type RoleSpec } from './roles.js';
import { TargetedRows } from './targeted-rows.js';
import { pipelineLogDir } from '../stream/open.js';
import { sleep } from './retry.js';
import { HeldBackPoller } from './held-back.js';

export type PipelineState = 'created' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** Which part of a pipeline a failure came from: the database connection, or the rest (sinks, state store, snapshot). */
export type FailureOrigin = 'source' | 'other';

/**
 * One pipeline: a source, the internal stream, and one runner per sink (a consumer group of
 * the stream). What the source is acknowledged for depends on the stream: with the log,
 * every transaction the log holds durably; with the memory stream, the lowest position every
 * sink holds.
 */
export class Pipeline {
  readonly name: string;
  state: PipelineState = 'created';
  source!: Source;
  store!: StateStore;
  stream!: EventStream;
  runners: SinkRunner[] = [];
  error: Error | null = null;
  /** Where `error` (or the error `start()` threw) came from. */
  errorOrigin: FailureOrigin = 'other';
  snapshots?: SnapshotCoordinator;
  /** Snapshots of tables that join the capture while streaming (see JoinedTableSnapshots). */
  private joined?: JoinedTableSnapshots;
  /** The link to the database, shared with the pipeline's later attempts (see supervisor.ts). */
  readonly link: SourceLinkMonitor;
  /** The link was made for this pipeline alone (no supervisor): close() closes it. */
  private readonly ownLink: boolean;
  private readonly ac = new AbortController();
  private sourceRun?: Promise<void>;
  private closed?: Promise<void>;
  private acked: Position | null = null;
  private timer?: NodeJS.Timeout;
  /** Periodic retention of the log this pipeline writes. */
  retention?: LogRetention;
  private logGauges?: LogGauges;
  /** What the source makes the database keep (retained WAL, binlog files), polled every 15 s. */
  private heldBack?: HeldBackPoller;
  /** When the source last delivered an event (or the pipeline started), as seen by the 1 s gauge tick. */
  private lastEventAt = Date.now();
  private eventsAtLastTick = 0;
  private readonly labels: { pipeline: string };
  private eventsIn = 0;
  private txnsIn = 0;
  private lastEvent: SinkEvent['event'] | null = null;
  /** Resolves when the pipeline ends by itself (source finished or failed). */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  /** The parts this process runs (`run --role`, `--sink`). */
  readonly role: RoleSpec;
  /** The locks of those parts in the log's directory (the log's writer, each sink). */
  private roleLocks?: RoleLocks;
  /** Parses stored positions: the source's, or without one (`--role sinks`) its type's. */
  private positions!: Pick<Source, 'parsePosition'>;
  /** Where the log holds rows of snapshots read for one sink alone (targeted-rows.ts). */
  private targeted?: TargetedRows;
  /** Sinks waiting for a snapshot of their own (they fell off the log, uncovered). */
  private readonly wantTargeted = new Set<string>();

  constructor(
    readonly resolved: ResolvedPipeline,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    opts: { link?: SourceLinkMonitor; role?: RoleSpec } = {},
  ) {
    this.name = resolved.config.name;
    this.role = opts.role ?? ALL_ROLES;
    this.ownLink = !opts.link;
    this.link = opts.link ?? new SourceLinkMonitor({ pipeline: this.name, logger, metrics, maxElapsedMs: resolved.config.source.reconnect.max_elapsed });
    this.done = new Promise((r) => (this.resolveDone = r));
    this.labels = { pipeline: this.name };
    this.metrics.set('tributary_pipeline_running', 0, this.labels);
  }

  get stateDir(): string {
    return pipelineStateDir(this.resolved.config);
  }

  /**
   * Connect everything and start streaming. Throws on config or preflight errors, and when
   * the database or a sink is unreachable: the caller (supervisor.ts) decides from the error
   * and {@link errorOrigin} whether to try again with a new Pipeline. A pipeline whose start
   * failed must be closed, and is never started again.
   */
  async start(): Promise<void> {
    this.state = 'starting';
    const cfg = this.resolved.config;
    // Which part the next step talks to, so a failure is blamed on the right one.
    let origin: FailureOrigin = 'other';
    const step = async <T>(o: FailureOrigin, fn: () => Promise<T>): Promise<T> => {
      origin = o;
      if (this.ac.signal.aborted) throw new Error(`pipeline ${this.name} stopped while starting`);
      return fn();
    };
    try {
      await this.startSteps(cfg, step);
    } catch (err) {
      // A failure of the running source (see fail) may have stopped the start: that one counts.
      if (!this.error) this.errorOrigin = origin;
      throw this.error ?? err;
    }
  }

  private async startSteps(cfg: ResolvedPipeline['config'], step: <T>(o: FailureOrigin, fn: () => Promise<T>) => Promise<T>): Promise<void> {
    // The pipeline's exclusive lock (file) or lease (Redis): a second `run` of it refuses
    // (TRB3011). Processes that run a part each share the pipeline: the role locks guard them.
    const whole = this.role.role === 'all';
    this.store = await step('other', () => openStateStore(cfg.state, { pipeline: this.name, logger: this.logger, onLost: (err) => this.fail(err), shared: !whole }));
    // Then the locks of this process's parts, before the log is recovered or a sink opened:
    // one writer of the log, one process per sink (roles.ts).
    this.roleLocks = await step('other', () => RoleLocks.acquire(this.resolved, this.role, this.logger));
    if (!runsSource(this.role)) return this.startSinksOnly(cfg, step);
    const stored = await step('other', () => this.store.loadSinks(this.name));
    const fresh = Object.keys(stored).length === 0;
    // Checkpoints mean the login worked before: a refused password is then a rotation, not a typo.
    if (!fresh) this.link.noteStoredState();
    const joined = (this.joined = new JoinedTableSnapshots({ mode: cfg.source.snapshot, logger: this.logger.child({ component: 'snapshot' }) }));
    this.source = await step('source', () =>
      createSource(cfg, {
        pipeline: this.name,
        logger: this.logger.child({ source: cfg.source.type }),
        signal: this.ac.signal,
        metrics: this.metrics,
        store: this.store,
        link: this.link.bind(this.ac.signal),
        requestSnapshot: (tables) => joined.request(tables),
      }),
    );
    this.positions = this.source;
    const problems = await step('source', () => this.source.preflight());
    this.link.up();
    reportProblems(problems, this.logger);
    // The log is recovered now (a torn tail cut, an unfinished transaction dropped), before
    // anything reads it: the source resumes after its last durable commit.
    this.stream = await step('other', () => openStream(cfg, this.stateDir, (s) => this.source.parsePosition(s), this.logger.child({ component: 'log' })));
    if (this.stream instanceof LogStream) {
      this.targeted = TargetedRows.load(pipelineLogDir(cfg));
      // Rows a crash kept out of the log: their offsets go to other records now.
      this.targeted.truncate(this.stream.start, this.stream.end);
    }
    for (const s of sinksFor(this.resolved, this.role)) {
      const runner = this.makeRunner(s);
      // Listed before it opens, so close() closes a sink whose open() failed half-way.
      this.runners.push(runner);
      await step('other', () => runner.open(stored[s.base.name]));
    }
    // With the log, the source resumes after the log's last durable commit: the sinks read
    // the rest from the log. Otherwise (the memory stream, or a log still empty beside older
    // checkpoints), from the lowest position any sink needs; sinks that are ahead skip what
    // they already hold.
    let from: Position | null = null;
    const logged = this.stream instanceof LogStream ? this.stream.lastCommit : null;
    if (logged) from = this.source.parsePosition(logged.resume);
    else if (this.role.role === 'all') {
      for (const r of this.runners) {
        const p = r.resume ?? r.position;
        if (p && (!from || p.compare(from) < 0)) from = p;
      }
    } else {
      // The source alone (its sinks run elsewhere) beside a log still empty: from the lowest
      // position any sink of the config has stored.
      for (const rec of Object.values(stored)) {
        const p = this.source.parsePosition(rec.resume ?? rec.position);
        if (!from || p.compare(from) < 0) from = p;
      }
    }
    if (!from && fresh) this.logger.info('no checkpoint: starting a new pipeline');
    const prepared = (await step('source', async () => this.source.prepare?.(from))) ?? {};
    if (prepared.positionLost) from = null;
    const src = cfg.source;
    this.snapshots = new SnapshotCoordinator({
      pipeline: this.name,
      mode: src.snapshot,
      workers: src.snapshot_workers,
      chunkRows: src.snapshot_chunk_rows,
      source: this.source,
      store: this.store,
      logger: this.logger.child({ component: 'snapshot' }),
      metrics: this.metrics,
      push: (item) => this.pushToStream(item),
      distributed: cfg.snapshot.queue?.redis ? { url: cfg.snapshot.queue.redis } : undefined,
      targetedRows: (sink, rows, txn) => {
        // The rows are appended right after this, from the log's end on, in order.
        const from = this.stream.end;
        this.targeted?.add(sink, from, from + rows, txn.serialize(), this.stream instanceof LogStream ? this.stream.start : 0);
      },
      onInitialOnlyDone: () => {
        this.logger.info('initial_only: snapshot complete and durable; stopping');
        void this.drainAndStop().then(() => this.resolveDone());
      },
    });
    await step('source', () => this.snapshots!.init({ freshPipeline: fresh, positionLost: !!prepared.positionLost }));
    for (const r of this.runners) r.start(await step('other', () => this.consumerFor(r)));
    this.acked = from;
    // With the log, acknowledge what it holds durably; snapshot chunks count as done then too.
    this.stream.onDurable((c) => this.durable(c));
    const out: SourceOutput = {
      push: (item) => this.push(item),
      drained: async () => {
        await this.snapshots?.unblocked();
        await this.stream.drained();
      },
    };
    this.state = 'running';
    this.sourceRun = this.source.run(from, out).then(
      () => {
        this.logger.info('source finished');
        void this.drainAndStop().then(() => this.resolveDone());
      },
      (err) => {
        if (this.ac.signal.aborted) return;
        this.fail(err, 'source');
      },
    );
    await step('source', () => this.snapshots!.start());
    this.joined!.attach(this.snapshots, this.source);
    await this.collectTargeted();
    // Sinks in other processes (run --role sinks) store their wish there: look for it.
    if (this.role.role !== 'all' || this.role.sinks) {
      this.targetedPoll = setInterval(() => void this.collectTargeted().catch((err) => this.logger.warn({ err }, 'cannot read the targeted snapshots sinks asked for; trying again')), 1000);
      this.targetedPoll.unref();
    }
    if (this.snapshots.active) this.snapshots.showProgress();
    if (this.snapshots.initialOnlyComplete && src.snapshot === 'initial_only') {
      this.logger.info('initial_only: the snapshot is already complete; stopping');
      void this.drainAndStop().then(() => this.resolveDone());
    }
    this.lastEventAt = Date.now();
    this.timer = setInterval(() => this.updateGauges(), 1000);
    this.timer.unref();
    (this.heldBack = new HeldBackPoller(this.source, this.name, this.metrics, this.logger)).start();
    this.metrics.set('tributary_pipeline_running', 1, this.labels);
    if (this.stream instanceof LogStream) {
      this.logGauges = new LogGauges(this.stream, this.name, this.metrics, this.logger);
      (this.retention = new LogRetention({ stream: this.stream, pipeline: this.name, sinks: this.resolved.sinks, runners: () => this.runners, store: this.store, logger: this.logger })).start();
    }
    this.logger.info({ from: from?.serialize() ?? null, role: this.role.role, sinks: this.runners.map((r) => r.name) }, `pipeline ${this.name} running${this.role.role === 'all' ? '' : ` (role ${this.role.role})`}`);
  }

  /**
   * `run --role sinks`: no source and no database. The log is opened read-only (another
   * process writes it; the readers follow its files as they grow), and the sinks of this
   * process read it from their committed offsets. Nothing is acknowledged from here: the
   * source-role process acknowledges at log durability, and keeps what these sinks have not
   * read (their offsets are in the state store it reads).
   */
  private async startSinksOnly(cfg: ResolvedPipeline['config'], step: <T>(o: FailureOrigin, fn: () => Promise<T>) => Promise<T>): Promise<void> {
    const support = await step('other', () => positionSupport(cfg.source.type));
    this.positions = { parsePosition: (s) => support.parse(s) };
    // No database to wait for: the link counts as up, so /readyz speaks for the sinks alone.
    this.link.up();
    const stored = await step('other', () => this.store.loadSinks(this.name));
    this.stream = await step('other', () => openStream(cfg, this.stateDir, (s) => support.parse(s), this.logger.child({ component: 'log' }), { readOnly: true }));
    // The source's process adds ranges while these sinks read: they follow the file.
    if (this.stream instanceof LogStream) this.targeted = TargetedRows.load(pipelineLogDir(cfg), { follow: true });
    for (const s of sinksFor(this.resolved, this.role)) {
      const runner = this.makeRunner(s);
      this.runners.push(runner);
      await step('other', () => runner.open(stored[s.base.name]));
    }
    for (const r of this.runners) r.start(await step('other', () => this.consumerFor(r)));
    this.state = 'running';
    this.timer = setInterval(() => this.updateGauges(), 1000);
    this.timer.unref();
    if (this.stream instanceof LogStream) this.logGauges = new LogGauges(this.stream, this.name, this.metrics, this.logger);
    this.logger.info({ role: 'sinks', sinks: this.runners.map((r) => r.name) }, `pipeline ${this.name} running (role sinks: ${this.runners.map((r) => r.name).join(', ')})`);
  }

  private makeRunner(s: ResolvedPipeline['sinks'][number]): SinkRunner {
    return new SinkRunner({
      pipeline: this.name,
      sink: s,
      stream: this.stream,
      store: this.store,
      source: this.positions,
      logger: this.logger,
      metrics: this.metrics,
      stateDir: this.stateDir,
      onCommit: () => this.coordinate(),
      targeted: this.targeted,
    });
  }

  /**
   * The stream reader of a sink: from its committed offset; a sink that has only a position
   * (checkpointed before the log existed) from the start of the log, skipping what it holds;
   * a new sink from its `start`. A sink that fell off the start of the log follows `on_gap`;
   * one rewound to `earliest` past retention reads the compacted state first.
   */
  private async consumerFor(r: SinkRunner): Promise<StreamConsumer> {
    const base = r.sink.base;
    const s = this.stream;
    if (r.rebuild && s instanceof LogStream) return s.rebuild(r.name);
    const from = r.offset ?? (r.position && s instanceof LogStream ? s.start : null);
    try {
      return await s.consumer(r.name, from, base.start);
    } catch (err) {
      if (!(s instanceof LogStream) || base.on_gap !== 'rebuild' || (err as { code?: string }).code !== ErrorCodes.LOG_GAP) throw err;
      const c = s.compacted;
      if (c && c.horizon >= s.start) {
        this.logger.warn({ sink: r.name, code: ErrorCodes.LOG_GAP }, `${errorMessage(err)}; rebuilding it from the compacted state (on_gap: rebuild)`);
        return s.rebuild(r.name);
      }
      return this.targetedRebuild(r, s, err);
    }
  }

  /**
   * A sink fell off the start of the log (on_gap: rebuild) and the compacted state does not
   * reach back to the start either (compaction off, or turned on after the log was trimmed):
   * only the source holds what it missed. It reads on from the log's last commit, and gets a
   * snapshot from the source for itself alone, through the snapshot machinery (DBLog windows:
   * its rows sit in the log at their high watermarks, and the other sinks skip them, see
   * targeted-rows.ts). The wish is stored before the sink's offset moves, so a crash before the
   * snapshot starts still leads to it.
   *
   * In a `run --role sinks` process the wish is all it does here: the source's process picks it
   * up ({@link collectTargeted}), and sinks processes re-read the ranges before they skip.
   */
  private async targetedRebuild(r: SinkRunner, s: LogStream, gap: unknown): Promise<StreamConsumer> {
    const why = s.compacted ? `the compacted state reaches back to offset ${s.compacted.horizon} only` : 'compaction is off';
    if (!this.targeted || (this.source && !this.source.snapshots)) {
      throw new TributaryError(ErrorCodes.LOG_REBUILD_UNCOVERED, `sink ${r.name} fell off the start of the log (${errorMessage(gap).split('\n')[0]}), and ${why}; it needs a snapshot of its own from the source, but the source cannot snapshot`, {
        fix: 'rewind the sink to the start of the log (tributary rewind --sink NAME --to earliest) and accept the gap, or rebuild the sink from the database by hand; turn on stream.compaction to rebuild from the log in future',
      });
    }
    // Where the log ends now: the snapshot's rows come after it, whenever the source begins it.
    await s.settle();
    const offset = s.lastCommit ? s.lastCommit.offset + 1 : s.start;
    await this.store.put(this.name, targetedPendingKey(r.name), { offset, at: Date.now() });
    const stored = (await this.store.loadSinks(this.name))[r.name];
    if (stored) {
      const { rebuild: _r, ...rest } = stored;
      await this.store.saveSink(this.name, r.name, { ...rest, offset, at: Date.now() });
    }
    r.offset = offset;
    r.rebuild = false;
    const here = runsSource(this.role);
    if (here) this.wantTargeted.add(r.name);
    this.logger.warn(
      { sink: r.name, code: ErrorCodes.LOG_GAP, offset },
      `sink ${r.name} fell off the start of the log and ${why}: it reads on from offset ${offset} and gets a snapshot from the source for itself alone (on_gap: rebuild)${here ? '' : '; the process that runs the source (run --role source) begins it'}`,
    );
    return s.consumer(r.name, offset, 'earliest');
  }

  /**
   * Take the targeted snapshots sinks asked for (in this process, before a crash, or in a
   * `run --role sinks` process: the wish is a state-store key per sink) and begin them.
   */
  private async collectTargeted(): Promise<void> {
    // One look at a time, and none while a round runs: a read that overlapped a round could
    // find a wish the round then met and cleared, and begin it twice.
    if (this.collecting || this.targetedRun) return;
    this.collecting = true;
    try {
      for (const s of this.resolved.sinks) {
        const name = s.base.name;
        if (!this.wantTargeted.has(name) && (await this.store.get(this.name, targetedPendingKey(name))) !== undefined) this.wantTargeted.add(name);
      }
    } finally {
      this.collecting = false;
    }
    this.kickTargeted();
  }
  private collecting = false;

  private targetedRun: Promise<void> | null = null;
  /** Looks for the wishes of sinks in other processes (see {@link collectTargeted}). */
  private targetedPoll?: NodeJS.Timeout;
  /** Begin the snapshots sinks are owed (once at a time; a sink added meanwhile is taken by the next round). */
  private kickTargeted(): void {
    if (!this.wantTargeted.size || this.targetedRun) return;
    this.targetedRun = this.beginTargeted().finally(() => {
      this.targetedRun = null;
      if (this.wantTargeted.size && !this.ac.signal.aborted) this.kickTargeted();
    });
  }

  /** Start the snapshots of {@link wantTargeted}, one at a time, each once no other snapshot runs. */
  private async beginTargeted(): Promise<void> {
    const signal = this.ac.signal;
    try {
      for (const sink of [...this.wantTargeted]) {
        while (!signal.aborted && this.snapshots?.active && this.snapshots.state?.target !== sink) await sleep(500, signal);
        if (signal.aborted || !this.snapshots) return;
        // Begun before a crash (its state is stored): it resumes by itself.
        const cur = this.snapshots.state;
        if (!(cur?.target === sink && this.snapshots.active)) await this.snapshots.begin('incremental', null, null, sink);
        this.snapshots.showProgress();
        // Begun (its state stored with its target): the wish is met, even across a crash.
        await this.store.delete(this.name, targetedPendingKey(sink));
        this.wantTargeted.delete(sink);
        // The next one waits for this one to finish.
      }
    } catch (err) {
      if (!signal.aborted) this.fail(err);
    }
  }

  /** The log holds a commit durably: acknowledge it to the source. */
  private durable(c: DurableCommit): void {
    const resume = this.source.parsePosition(c.resume);
    this.snapshots?.onDurable(this.source.parsePosition(c.txn));
    if (!this.acked || resume.compare(this.acked) > 0) {
      this.acked = resume;
      this.source.acknowledge(resume);
      this.metrics.set('tributary_acknowledged_position', Number(resume.ordinal()), { pipeline: this.name });
    }
  }

  private push(item: SourceItem): boolean {
    return this.snapshots ? this.snapshots.intake(item) : this.pushToStream(item);
  }

  private pushToStream(item: SourceItem): boolean {
    let entry: StreamEntry;
    if (item.kind === 'event') {
      const ev = item.event;
      if (ev instanceof SerializedChangeEvent && ev.bytes) {
        // Held as bytes outside the heap (json-bytes.ts, arena): nothing for the GC to copy; the
        // slab's memory is what the entry costs.
        entry = new StreamEvent(ev, ev.table, item.txn, item.idx, null, ev.byteLength + 200);
      } else {
        const pre = ev instanceof SerializedChangeEvent;
        const json = pre ? ev.json : JSON.stringify(ev);
        // Flatten the envelope now. Sources build it by concatenation, which V8 keeps as a
        // tree of dozens of small string pieces; kept in the stream, every piece is an object
        // the young-generation GC copies (and then promotes) again and again. Reading one
        // character makes V8 flatten the tree into one string. Measured: half the GC time at
        // the default stream budget, and GC was a third of the process.
        json.charCodeAt(json.length >> 1);
        const table = pre ? ev.table : qualifiedTable(ev);
        // What an entry really costs: the JSON string plus the event's object graph (about the
        // JSON again) plus fixed overhead. Counting only the JSON let the real footprint grow
        // to ~2.5 times the budget.
        entry = new StreamEvent(item.event, table, item.txn, item.idx, json, json.length * 2 + 200);
      }
      // Plain counters on the hot path; published to the registry once a second.
      this.eventsIn++;
      this.lastEvent = item.event;
    } else if (item.kind === 'commit') {
      entry = { kind: 'commit', txn: item.txn, resume: item.resume, bytes: 64, offset: -1 };
      this.txnsIn++;
    } else return true; // watermarks are consumed by the snapshot coordinator
    return this.stream.append(entry);
  }

  /**
   * A sink committed (or failed). A failed sink fails the pipeline. With the memory stream,
   * acknowledge to the source the lowest resume position that every sink holds.
   */
  private coordinate(): void {
    const failed = this.runners.find((r) => r.failed);
    if (failed) {
      this.fail(failed.failed!);
      return;
    }
    if (this.stream.kind === 'log') return;
    let min: Position | null = null;
    let minTxn: Position | null = null;
    for (const r of this.runners) {
      const p = r.resume;
      if (!p || !r.position) return; // a sink has committed nothing yet: nothing is safe to acknowledge
      if (!min || p.compare(min) < 0) min = p;
      if (!minTxn || r.position.compare(minTxn) < 0) minTxn = r.position;
    }
    if (minTxn) this.snapshots?.onDurable(minTxn);
    if (min && (!this.acked || min.compare(this.acked) > 0)) {
      this.acked = min;
      this.source.acknowledge(min);
      this.metrics.set('tributary_acknowledged_position', Number(min.ordinal()), { pipeline: this.name });
    }
  }

  private updateGauges(): void {
    const now = Date.now();
    this.metrics.set('tributary_stream_buffer_bytes', this.stream.bytes, { pipeline: this.name });
    for (const r of this.runners) {
      this.metrics.set('tributary_sink_lag_seconds', r.lagSeconds(now), { pipeline: this.name, sink: r.name });
      this.metrics.set('tributary_sink_lag_events', r.lagEvents, { pipeline: this.name, sink: r.name });
    }
    this.logGauges?.update(this.runners, now);
    this.metrics.set('tributary_events_in_total', this.eventsIn, { pipeline: this.name });
    this.metrics.set('tributary_transactions_in_total', this.txnsIn, { pipeline: this.name });
    if (this.lastEvent) this.metrics.set('tributary_source_lag_seconds', Math.max(0, (now - commitTime(this.lastEvent)) / 1000), { pipeline: this.name });
    // Measured per tick, not per event: the hot path only counts.
    if (this.eventsIn !== this.eventsAtLastTick) {
      this.eventsAtLastTick = this.eventsIn;
      this.lastEventAt = now;
    }
    this.metrics.set('tributary_source_last_event_seconds', (now - this.lastEventAt) / 1000, this.labels);
  }

  private fail(err: unknown, origin: FailureOrigin = 'other'): void {
    if (this.state === 'failed' || this.state === 'stopped') return;
    this.error = err instanceof Error ? err : new Error(String(err));
    this.errorOrigin = origin;
    this.state = 'failed';
    this.logger.error({ err: this.error }, `pipeline ${this.name} failed: ${errorMessage(err)}`);
    void this.close().then(() => this.resolveDone());
  }

  /** Makes a `start()` in progress stop at its next step (it then throws); a running pipeline stops reading. */
  abort(): void {
    this.ac.abort();
  }

  /** Stop reading the source, let every sink write what the stream holds, then stop. */
  async drainAndStop(timeoutMs = 30_000): Promise<void> {
    if (this.state === 'running') this.state = 'draining';
    this.ac.abort();
    await this.joined?.close();
    await this.snapshots?.close();
    await this.source?.close().catch(() => undefined);
    await this.sourceRun?.catch(() => undefined);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.runners.some((r) => !r.failed && r.lagEvents > 0)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.close();
  }

  /**
   * Rewind sink `sink` to `to` (see planRewind): its runner stops, its checkpoint is
   * rewritten, and a new runner reads on from the new offset; the other sinks and the source
   * go on undisturbed. With `dryRun`, only counts what it would receive again. One rewind at a
   * time; a failure half-way fails the pipeline, which restarts from the checkpoints.
   */
  rewindSink(sink: string, to: string, dryRun: boolean): Promise<RewindPlan> {
    const run = async (): Promise<RewindPlan> => {
      const i = this.runners.findIndex((r) => r.name === sink);
      if (i < 0) {
        if (this.resolved.sinks.some((s) => s.base.name === sink)) {
          throw new TributaryError(ErrorCodes.LOG_REWIND_LIVE, `sink ${sink} of pipeline ${this.name} does not run in this process (role ${this.role.role}): another process runs it`, {
            fix: 'ask the process that runs the sink (its --http-port), or stop it and run tributary rewind',
          });
        }
        throw new TributaryError(ErrorCodes.LOG_UNKNOWN_NAME, `pipeline ${this.name} has no sink named "${sink}"`, { fix: `name one of: ${this.runners.map((r) => r.name).join(', ')}` });
      }
      if (!(this.stream instanceof LogStream) || this.state !== 'running') {
        throw new TributaryError(this.stream instanceof LogStream ? ErrorCodes.LOG_REWIND_LIVE : ErrorCodes.LOG_NOT_ENABLED, `pipeline ${this.name} cannot rewind a sink now: ${this.stream instanceof LogStream ? `it is ${this.state}` : 'its stream is not the log (stream: memory keeps no history)'}`, {
          fix: this.stream instanceof LogStream ? 'wait until it runs (tributary status), or stop it and run tributary rewind' : 'use stream: log (the default)',
        });
      }
      if (this.ac.signal.aborted) throw new TributaryError(ErrorCodes.LOG_REWIND_LIVE, `pipeline ${this.name} is stopping`, { fix: 'rewind it with tributary rewind once it has stopped' });
      const old = this.runners[i]!;
      const view = liveLogView(this.stream);
      const positions = await positionSupport(this.resolved.config.source.type);
      const args = { pipeline: this.name, sink: old.sink.base, to, dryRun };
      const stored = async () => (await this.store.loadSinks(this.name))[sink];
      if (dryRun) return (await planRewind(view, positions, { ...args, stored: await stored(), count: true })).plan;
      // Checked before the runner stops: a bad target leaves the sink running.
      await planRewind(view, positions, { ...args, stored: await stored(), count: false });
      try {
        await old.close();
        const { plan, record } = await planRewind(view, positions, { ...args, stored: await stored(), count: false });
        await this.store.saveSink(this.name, sink, record);
        const fresh = this.makeRunner(old.sink);
        this.runners[i] = fresh;
        await fresh.open(record);
        fresh.start(await this.consumerFor(fresh));
        this.kickTargeted();
        this.logger.info({ sink, to, offset: plan.offset, previousOffset: plan.previousOffset, rebuild: plan.rebuild }, `sink ${sink} rewound to ${to} (offset ${plan.offset})`);
        await countRewind(view, old.sink.base, plan);
        return plan;
      } catch (err) {
        this.fail(err);
        throw err;
      }
    };
    const p = this.rewinding.then(run, run);
    this.rewinding = p.catch(() => undefined);
    return p;
  }
  private rewinding: Promise<unknown> = Promise.resolve();

  /** Idempotent hard stop: abort sinks, close sinks, the source and the store. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      this.ac.abort();
      clearInterval(this.timer);
      clearInterval(this.targetedPoll);
      this.metrics.set('tributary_pipeline_running', 0, this.labels);
      await this.heldBack?.close();
      await this.retention?.close();
      // A rewind half-way (its runner closed, the next not yet started) finishes first.
      await this.rewinding;
      await this.joined?.close();
      await this.snapshots?.close();
      for (const r of this.runners) await r.close();
      try {
        await this.source?.close();
      } catch (err) {
        this.logger.warn({ err }, 'source close failed');
      }
      await this.sourceRun?.catch(() => undefined);
      try {
        await this.stream?.close();
      } catch (err) {
        this.logger.warn({ err }, 'stream close failed');
      }
      await this.store?.close();
      // Last: the log is closed (the writer's tail synced) and every sink closed.
      await this.roleLocks?.release();
      if (this.ownLink) this.link.close();
      if (this.state !== 'failed') this.state = 'stopped';
      this.resolveDone();
    })());
  }

  /** For `/status` and `tributary status`. */
  status(): Record<string, unknown> {
    return {
      name: this.name,
      state: this.state,
      // The parts this process runs; the others run in other processes (run --role).
      role: this.role.role,
      error: this.error ? errorMessage(this.error) : null,
      acknowledged: this.acked?.serialize() ?? null,
      bufferBytes: this.stream?.bytes ?? 0,
      stream: this.stream?.kind ?? null,
      snapshot: this.snapshots?.summary() ?? null,
      // The log (stream: log): offsets, times, bytes, the retention horizon; refreshed every second.
      log: this.logGauges?.summary?.info ?? null,
      // What the source makes the database keep (Postgres: retained WAL; MySQL: binlog files); every ~15 s.
      held_back: this.heldBack?.status() ?? null,
      sinks: this.runners.map((r) => ({
        name: r.name,
        position: r.position?.serialize() ?? null,
        offset: r.offset,
        lagEvents: r.lagEvents,
        lagSeconds: r.lagSeconds(),
        eventsOut: r.eventsOut,
        deadLettered: r.deadLettered,
        // Behind the log's committed end from its committed offset (log only).
        lag: this.logGauges?.summary?.lags.get(r.name) ?? null,
        failed: r.failed ? errorMessage(r.failed) : null,
        deadLetters: r.deadLetterDepth,
      })),
      // Sinks of the config that this process does not run (run --role source, or --sink).
      sinksElsewhere: this.resolved.sinks.map((s) => s.base.name).filter((n) => !this.runners.some((r) => r.name === n)),
    };
  }
}

/**
 * State-store key: sink `sink` is owed a targeted snapshot that has not begun yet. One key per
 * sink, so a `run --role sinks` process that sets it and the source process that clears it
 * never overwrite each other's news.
 */
function targetedPendingKey(sink: string): string {
  return `targeted-pending.${sink}`;
}

/** Log warnings; throw one coded error listing every blocking problem with its fix. */
export function reportProblems(problems: PreflightProblem[], logger: Logger): void {
  for (const p of problems.filter((x) => x.severity === 'warning')) logger.warn({ code: p.code, fix: p.fix }, `${p.message} (fix: ${p.fix})`);
  const errors = problems.filter((x) => x.severity === 'error');
  if (errors.length) {
    throw new TributaryError(
      errors[0]!.code,
      'source preflight failed:\n' + errors.map((e) => `  ${e.code} ${e.message}\n    fix: ${e.fix}`).join('\n'),
      { fix: 'apply the fixes above, then run `tributary validate --check-source`' },
    );
  }
}
