import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Server } from 'node:http';
import { ConfigError, ErrorCodes, TributaryError, errorMessage } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { loadConfig } from '../config/load.js';
import { Metrics, defineRuntimeMetrics } from '../runtime/metrics.js';
import { PipelineSupervisor } from '../runtime/supervisor.js';
import { standaloneLink } from '../runtime/source-link.js';
import { startHttp } from '../http/server.js';
import { snapshotRoute } from '../http/snapshot-route.js';
import { logApi } from '../http/log-routes.js';
import { historyRoute } from '../http/history-route.js';
import { LagHistory, samplesFromStatus } from '../runtime/lag-history.js';
import { dlqRoutes } from '../http/dlq-routes.js';
import { COMMANDS, overview, version, wantsHelp } from './usage.js';
import { createSource } from '../runtime/source-registry.js';
import { checkSinks } from '../runtime/sink-check.js';
import { openStateStore } from '../state/open.js';
import type { SnapshotState } from '../snapshot/types.js';
import { RUN_ROLES, checkRole, type RoleSpec, type RunRole } from '../runtime/roles.js';

/** Exit code 2 for usage and config errors, 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  return err instanceof ConfigError ? 2 : 1;
}

function printError(err: unknown): void {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd !== undefined && COMMANDS[cmd] && cmd !== 'help' && wantsHelp(rest)) {
      process.stdout.write(COMMANDS[cmd]!.usage + '\n');
      return;
    }
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'validate':
        return await cmdValidate(rest);
      case 'status':
        return await cmdStatus(rest);
      case 'snapshot':
        return await cmdSnapshot(rest);
      case 'binlog':
        return await cmdBinlog(rest);
      case 'log':
        return await (await import('./log-commands.js')).cmdLog(rest);
      case 'state':
        return await (await import('./log-commands.js')).cmdState(rest);
      case 'rewind':
        return await (await import('./log-commands.js')).cmdRewind(rest);
      case 'dlq':
        return await (await import('./dlq-commands.js')).cmdDlq(rest);
      case 'docs': {
        // Regenerates docs/configuration.md from the schemas.
        if (rest.length !== 1 || rest[0] !== 'config') throw new ConfigError(ErrorCodes.USAGE, 'usage: tributary docs config', { fix: 'run `tributary docs config`' });
        const { renderConfigReference } = await import('../config/docs.js');
        process.stdout.write(await renderConfigReference());
        return;
      }
      case 'demo': {
        const { runDemo } = await import('./demo.js');
        return await runDemo(rest);
      }
      case 'version':
      case '--version':
      case '-V':
        process.stdout.write(`tributary ${version()}\n`);
        return;
      case undefined:
      case 'help':
      case '--help':
      case '-h': {
        const topic = cmd === 'help' ? rest[0] : undefined;
        if (topic !== undefined && !COMMANDS[topic]) throw new ConfigError(ErrorCodes.USAGE, `no command "${topic}"`, { fix: 'run `tributary help` for the list of commands' });
        process.stdout.write((topic ? COMMANDS[topic]!.usage : overview()) + '\n');
        if (cmd === undefined) process.exitCode = 2;
        return;
      }
      default:
        throw new ConfigError(ErrorCodes.USAGE, `unknown command "${cmd}"`, { fix: 'run `tributary help` for the list of commands' });
    }
  } catch (err) {
    printError(err);
    process.exitCode = exitCodeFor(err);
  }
}

export function args<O extends ParseArgsConfig['options']>(rest: string[], options: O): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(ErrorCodes.USAGE, (err as Error).message, { fix: 'run `tributary COMMAND --help` for its usage' });
  }
}

export function configFiles(v: unknown): string[] {
  const files = (Array.isArray(v) ? v : v ? [v] : []) as string[];
  if (!files.length) throw new ConfigError(ErrorCodes.USAGE, 'missing --config FILE', { fix: 'pass --config path/to/tributary.yaml' });
  return files;
}

async function cmdRun(rest: string[]): Promise<void> {
  const { values } = args(rest, {
    config: { type: 'string', multiple: true, short: 'c' },
    worker: { type: 'boolean' },
    pipeline: { type: 'string', multiple: true },
    role: { type: 'string' },
    sink: { type: 'string', multiple: true },
    'http-port': { type: 'string' },
  });
  if (values.pipeline && !values.worker) throw new ConfigError(ErrorCodes.USAGE, '--pipeline is an option of run --worker', { fix: 'put pipelines to run in their own config file' });
  const role = runRole(values.role, values.sink);
  const httpPort = values['http-port'] === undefined ? undefined : portOption(values['http-port']);
  if (values.worker && (values.role !== undefined || values.sink)) throw new ConfigError(ErrorCodes.ROLE_USAGE, '--role and --sink are options of run, not of run --worker', { fix: 'drop them: a worker takes snapshot chunk jobs only' });
  const cfg = await loadConfig(configFiles(values.config));
  for (const w of cfg.warnings) process.stderr.write(`warning: ${w}\n`);
  if (values.worker) return (await import('./worker.js')).runWorker(cfg, values.pipeline ?? []);
  // Before anything starts: a role needs the log, and --sink must name sinks of the pipelines.
  for (const p of cfg.pipelines) checkRole(p, role.sinks && cfg.pipelines.length > 1 ? { ...role, sinks: role.sinks.filter((n) => p.sinks.some((s) => s.base.name === n)) } : role);
  if (role.sinks && cfg.pipelines.length > 1) {
    const known = new Set(cfg.pipelines.flatMap((p) => p.sinks.map((s) => s.base.name)));
    const unknown = role.sinks.filter((n) => !known.has(n));
    if (unknown.length) throw new ConfigError(ErrorCodes.ROLE_USAGE, `run --sink: no pipeline has a sink named ${unknown.map((n) => `"${n}"`).join(', ')}`, { fix: `name one of: ${[...known].join(', ')}` });
  }
  if (httpPort !== undefined) cfg.http.port = httpPort;
  const logger = createLogger({ level: process.env.TRIBUTARY_LOG_LEVEL ?? cfg.log.level });
  const metrics = new Metrics();
  defineRuntimeMetrics(metrics);
  metrics.collectProcessMetrics();
  // One supervisor per pipeline: each retries and restarts its own pipeline, so one that
  // waits for its database or fails never holds up or stops the others.
  // With several pipelines, --sink names sinks of any of them: each runs those it has, and a
  // sinks-only process leaves out the pipelines it names none of.
  const roleOf = (p: (typeof cfg.pipelines)[number]): RoleSpec => (role.sinks && cfg.pipelines.length > 1 ? { ...role, sinks: role.sinks.filter((n) => p.sinks.some((s) => s.base.name === n)) } : role);
  const mine = cfg.pipelines.filter((p) => !(role.role === 'sinks' && roleOf(p).sinks?.length === 0));
  const pipelines = mine.map((p) => new PipelineSupervisor(p, logger.child({ pipeline: p.config.name }), metrics, roleOf(p)));
  let server: Server | undefined;
  // The console's lag charts (GET /history): an hour of samples per sink, taken off the hot path.
  const history = new LagHistory({ intervalMs: cfg.http.history_interval, sample: () => samplesFromStatus(pipelines) });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'draining: no new reads; waiting for sinks to commit what they hold');
    await Promise.all(pipelines.map((p) => p.stop()));
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  try {
    // Up before the pipelines start: /healthz, /readyz (503) and /status answer while they
    // wait for their database.
    if (cfg.http.port) {
      server = await startHttp({
        host: cfg.http.host,
        port: cfg.http.port,
        pipelines,
        metrics,
        logger,
        auth: { token: cfg.http.auth_token || null, openProbes: cfg.http.open_probes },
        routes: adminRoutes(pipelines, history),
      });
      history.start();
    }
    for (const p of pipelines) p.start();
    await Promise.all(pipelines.map((p) => p.done));
  } catch (err) {
    await Promise.all(pipelines.map((p) => p.stop()));
    throw err;
  } finally {
    history.close();
    server?.close();
  }
  const failed = pipelines.filter((p) => p.state === 'failed');
  logger.info({ pipelines: pipelines.map((p) => ({ name: p.name, state: p.state })) }, 'stopped');
  logger.flush();
  for (const f of failed) process.stderr.write(`error: pipeline ${f.name} failed: ${errorMessage(f.error)}\n`);
  if (failed.length) process.exitCode = Math.max(...failed.map((f) => exitCodeFor(f.error)));
}

/** Every admin route besides the built-in ones: snapshots, the log, dead letters. */
function adminRoutes(pipelines: PipelineSupervisor[], history: LagHistory): import('../http/server.js').HttpRoutes {
  const log = logApi(pipelines, { '/snapshot': snapshotRoute(pipelines) });
  const dlq = dlqRoutes(pipelines);
  return { get: { ...log.get, ...dlq.get, '/history': historyRoute(history) }, post: { ...log.post, ...dlq.post } };
}

/** `--role` and `--sink` of `tributary run` (checked against each pipeline by checkRole). */
function runRole(role: string | undefined, sinks: string[] | undefined): RoleSpec {
  const r = (role ?? 'all') as RunRole;
  if (!RUN_ROLES.includes(r)) throw new ConfigError(ErrorCodes.ROLE_USAGE, `run --role ${role}: no such role`, { fix: `use one of: ${RUN_ROLES.join(', ')}` });
  return { role: r, sinks: sinks?.length ? sinks : null };
}

/** `--http-port N`: 0..65535 (0 turns the HTTP API off). */
function portOption(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new ConfigError(ErrorCodes.USAGE, `--http-port ${v}: not a port number`, { fix: 'give a port from 0 to 65535 (0 turns the HTTP API off)' });
  return n;
}

async function cmdValidate(rest: string[]): Promise<void> {
  const { values } = args(rest, { config: { type: 'string', multiple: true, short: 'c' }, 'check-source': { type: 'boolean' } });
  const cfg = await loadConfig(configFiles(values.config));
  for (const w of cfg.warnings) process.stderr.write(`warning: ${w}\n`);
  for (const p of cfg.pipelines) {
    process.stdout.write(`${p.origin}: pipeline ${p.config.name}: ${p.config.source.type} source, ${p.sinks.length} sink(s): ok\n`);
  }
  if (!values['check-source']) return;
  const logger = createLogger({ level: 'silent' });
  let sourceErrors = 0;
  let sinkErrors = 0;
  for (const p of cfg.pipelines) {
    const ac = new AbortController();
    const st = p.config.state;
    const store = await openStateStore(st);
    const source = await createSource(p.config, { pipeline: p.config.name, logger, signal: ac.signal, metrics: new Metrics(), store, link: standaloneLink(p.config.name, logger, ac.signal) });
    // The sinks are checked while the source's preflight runs.
    const sinkChecks = checkSinks(p, logger);
    try {
      const problems = await source.preflight();
      for (const pr of problems) {
        if (pr.severity === 'error') sourceErrors++;
        process.stdout.write(`${pr.severity === 'error' ? 'ERROR' : 'warning'} ${pr.code} ${p.config.name}: ${pr.message}\n    fix: ${pr.fix}\n`);
      }
      if (!problems.some((x) => x.severity === 'error')) process.stdout.write(`${p.config.name}: source preflight ok\n`);
    } catch (err) {
      sourceErrors++;
      process.stdout.write(`ERROR ${p.config.name}: ${errorMessage(err)}\n`);
    } finally {
      await source.close();
      await store.close();
    }
    for (const r of await sinkChecks) {
      const what = `${p.config.name}: sink ${r.sink} (${r.type})`;
      if (!r.checked) process.stdout.write(`${what}: no preflight to run\n`);
      else if (!r.problems.length) process.stdout.write(`${what}: ok\n`);
      for (const pr of r.problems) {
        sinkErrors++;
        process.stdout.write(`ERROR ${ErrorCodes.SINK_CHECK} ${what}: ${pr.message}\n    fix: ${pr.fix}\n`);
      }
    }
  }
  if (sourceErrors + sinkErrors) {
    const parts = [sourceErrors && `${sourceErrors} in sources`, sinkErrors && `${sinkErrors} in sinks`].filter(Boolean).join(', ');
    throw new ConfigError(sourceErrors ? ErrorCodes.SOURCE_CHECK : ErrorCodes.SINK_CHECK, `preflight found ${sourceErrors + sinkErrors} problem(s): ${parts}`, { fix: 'apply the fixes listed above' });
  }
}

async function cmdStatus(rest: string[]): Promise<void> {
  const { values } = args(rest, { config: { type: 'string', multiple: true, short: 'c' }, json: { type: 'boolean' }, 'http-port': { type: 'string', multiple: true } });
  const cfg = await loadConfig(configFiles(values.config));
  for (const w of cfg.warnings) process.stderr.write(`warning: ${w}\n`);
  type Live = { pipelines: (LiveStatus & { name: string })[] };
  // The processes to ask: the config's port, or each --http-port (a pipeline whose source and
  // sinks run in separate processes, run --role, has one port per process).
  const ports = values['http-port']?.length ? values['http-port'].map(portOption) : cfg.http.port ? [cfg.http.port] : [];
  const lives: { port: number; live: Live }[] = [];
  let refused: string | null = null;
  for (const port of ports) {
    try {
      const r = await fetch(`${apiBase({ ...cfg.http, port })}/status`, { headers: authHeaders(cfg.http), signal: AbortSignal.timeout(1500) });
      if (r.ok) lives.push({ port, live: (await r.json()) as Live });
      else refused = ((await r.json().catch(() => ({}))) as { error?: string }).error ?? `HTTP ${r.status}`;
    } catch {
      // not running on that port
    }
  }
  const out: Record<string, unknown>[] = [];
  for (const p of cfg.pipelines) {
    const st = p.config.state;
    const store = await openStateStore(st);
    try {
      const sinks = await store.loadSinks(p.config.name);
      const snap = await store.get<SnapshotState>(p.config.name, 'snapshot');
      const snapshot = snap && {
        id: snap.id,
        kind: snap.kind,
        status: snap.status,
        error: snap.error ?? null,
        tables: snap.tables.map((t) => ({ table: t.table.name, chunksDone: t.done.filter(Boolean).length, chunks: t.chunks.length, rows: t.rows, estimate: t.table.estimate })),
      };
      const processes = lives.flatMap(({ port, live }) => live.pipelines.filter((x) => x.name === p.config.name).map((x) => ({ ...x, port })));
      out.push({
        pipeline: p.config.name,
        running: processes[0] ?? null,
        // Every process that runs a part of it (run --role), with the port it answered on.
        processes,
        sinks: Object.fromEntries(p.sinks.map((s) => [s.base.name, sinks[s.base.name] ? { position: sinks[s.base.name]!.position, committedAt: new Date(sinks[s.base.name]!.at).toISOString() } : null])),
        // Parked events per sink (the dead-letter store: tributary dlq list).
        deadLetters: Object.fromEntries(await Promise.all(p.sinks.map(async (s) => [s.base.name, (await store.deadLetters?.(p.config.name, s.base.name).list())?.length ?? 0] as const))),
        snapshot: snapshot ?? null,
        // The log (stream: log), read-only from disk: offsets, times, bytes, horizon, each sink's offset and lag.
        log: await (await import('./log-commands.js')).statusLog(p, store),
      });
    } finally {
      await store.close();
    }
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  if (refused) process.stdout.write(`the running process refused /status: ${refused}\n  (showing positions from the state store; set http.auth_token in this config to the process's token)\n`);
  for (const p of out) {
    const procs = p.processes as (LiveStatus & { port: number })[];
    const running = procs.length === 1 ? procs[0]! : null;
    if (procs.length > 1 || procs.some((x) => x.role && x.role !== 'all')) {
      // Parts in separate processes: one line each, with what it runs.
      process.stdout.write(`pipeline ${p.pipeline}: ${procs.length} process${procs.length === 1 ? '' : 'es'}\n`);
      for (const x of procs) {
        const parts = x.role === 'source' ? 'the source (writes the log)' : `sinks ${x.sinks.map((s) => s.name).join(', ') || '-'}`;
        process.stdout.write(`  role ${x.role} on port ${x.port}: ${x.state}, runs ${parts}${x.sinksElsewhere?.length ? `; elsewhere: ${x.sinksElsewhere.join(', ')}` : ''}\n`);
        for (const line of healthLines(x)) process.stdout.write(`    ${line}\n`);
      }
    } else {
      process.stdout.write(`pipeline ${p.pipeline}: ${running ? running.state : 'not running (positions from the state store)'}\n`);
      if (running) for (const line of healthLines(running)) process.stdout.write(`  ${line}\n`);
    }
    // What the source holds back: from the process that runs it.
    const srcProc = procs.find((x) => !x.role || x.role !== 'sinks');
    const held = srcProc?.held_back ? heldBackLine(srcProc.held_back) : null;
    if (held) process.stdout.write(`  ${held}\n`);
    const log = p.log as import('../runtime/log-info.js').LogInfo | null;
    if (log) for (const line of (await import('./log-commands.js')).statusLogLines(log)) process.stdout.write(`  ${line}\n`);
    for (const [name, s] of Object.entries(p.sinks as Record<string, { position: string; committedAt: string } | null>)) {
      const lag = procs.flatMap((x) => x.sinks).find((x) => x.name === name);
      const behind = log?.sinks.find((x) => x.name === name);
      const offset = behind && behind.offset !== null ? `, offset ${behind.offset} (${behind.lag.events} behind the log, ${behind.lag.seconds.toFixed(1)} s)` : '';
      const parked = (p.deadLetters as Record<string, number>)[name] ?? 0;
      process.stdout.write(`  sink ${name}: ${s ? `position ${s.position} (committed ${s.committedAt})` : 'no checkpoint yet'}${offset}${lag ? `, lag ${lag.lagEvents} events / ${lag.lagSeconds.toFixed(1)} s` : ''}${parked ? `, ${parked} dead letter(s) (tributary dlq list --sink ${name})` : ''}\n`);
    }
    const snap = p.snapshot as { id: string; kind: string; status: string; error: { code: string; message: string; fix?: string } | null; tables: { table: string; chunksDone: number; chunks: number; rows: number; estimate: number | null }[] } | null;
    if (snap) {
      const why = snap.status === 'failed' && snap.error ? `: ${snap.error.code} ${snap.error.message}${snap.error.fix ? ` (fix: ${snap.error.fix}; it is retried until it succeeds)` : ''}` : '';
      process.stdout.write(`  snapshot ${snap.id} (${snap.kind}): ${snap.status}${why}\n`);
      for (const t of snap.tables) process.stdout.write(`    ${t.table}: ${t.chunksDone}/${t.chunks} chunks, ${t.rows} rows ${t.estimate === null ? '(no estimate)' : `of ~${t.estimate}`}\n`);
    }
  }
}

/** What `/status` says about one pipeline (src/runtime/supervisor.ts). */
interface LiveStatus {
  state: string;
  /** The parts the process runs (run --role), and the config's sinks it leaves to others. */
  role?: string;
  sinksElsewhere?: string[];
  error: string | null;
  sinks: { name: string; lagEvents: number; lagSeconds: number }[];
  source?: { up: boolean; downSeconds: number; attempts: number; lastError: string | null; nextRetryAt: string | null };
  restarts?: number;
  nextRetryAt?: string | null;
  held_back?: import('../runtime/held-back.js').HeldBackStatus | null;
}

/** What the source makes the database keep, in one line (`/status` `held_back`). */
function heldBackLine(h: import('../runtime/held-back.js').HeldBackStatus): string | null {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  const at = `measured ${h.checked_at}${h.error ? `; last measure failed: ${h.error}` : ''}`;
  if (h.wal_bytes !== undefined) return `source holds back: ${mib(h.wal_bytes)} of WAL in the slot${h.slot_missing ? ' (no slot)' : ''} (${at})`;
  if (h.binlog_files !== undefined) {
    return `source holds back: ${h.binlog_files} binlog file(s) from ${h.oldest_binlog_file}${h.binlog_bytes !== undefined ? `, ${mib(h.binlog_bytes)}` : ''}${h.oldest_binlog_purged ? ' (that file was purged: the pipeline cannot resume from it)' : ''} (${at})`;
  }
  return h.error ? `source holds back: unknown (${at})` : null;
}

/** Why a live pipeline is not (fully) running: its database, its last failure, its next retry. */
function healthLines(s: LiveStatus): string[] {
  const lines: string[] = [];
  const inSecs = (at: string | null | undefined) => (at ? `, next try in ${Math.max(0, (Date.parse(at) - Date.now()) / 1000).toFixed(0)} s` : '');
  const src = s.source;
  if (src && !src.up && src.attempts > 0) {
    lines.push(`source: down for ${src.downSeconds.toFixed(0)} s (${src.attempts} failed attempt${src.attempts === 1 ? '' : 's'}${inSecs(src.nextRetryAt)}): ${src.lastError}`);
  }
  if (s.state === 'failed') lines.push(`failed: ${s.error}`);
  else if (s.state === 'restarting') lines.push(`restarting (${s.restarts} restart${s.restarts === 1 ? '' : 's'}${inSecs(s.nextRetryAt)}) after: ${s.error}`);
  return lines;
}

async function cmdSnapshot(rest: string[]): Promise<void> {
  const { values } = args(rest, {
    config: { type: 'string', multiple: true, short: 'c' },
    table: { type: 'string' },
    where: { type: 'string' },
    pipeline: { type: 'string' },
    cancel: { type: 'boolean' },
    pause: { type: 'boolean' },
    resume: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const cfg = await loadConfig(configFiles(values.config));
  for (const w of cfg.warnings) process.stderr.write(`warning: ${w}\n`);
  if (!values.table) throw new ConfigError(ErrorCodes.USAGE, 'missing --table', { fix: 'pass --table schema.table' });
  if (!cfg.http.port) throw new ConfigError(ErrorCodes.USAGE, 'the config turns the HTTP API off (http.port: 0)', { fix: 'set http.port so the running pipeline can take snapshot requests' });
  const action = values.cancel ? 'cancel' : values.pause ? 'pause' : values.resume ? 'resume' : 'start';
  let r: Response;
  try {
    r = await fetch(`${apiBase(cfg.http)}/snapshot`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders(cfg.http) },
      // No --pipeline: the running process picks the pipeline that captures the table.
      body: JSON.stringify({ pipeline: values.pipeline, table: values.table, where: values.where ?? null, action }),
    });
  } catch (err) {
    throw new TributaryError(ErrorCodes.SNAPSHOT_NOT_RUNNING, `no running pipeline answers on ${cfg.http.host}:${cfg.http.port}: ${errorMessage(err)}`, {
      fix: 'start it with `tributary run --config FILE` first',
    });
  }
  const text = await r.text();
  if (values.json) process.stdout.write(text + '\n');
  else {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: text };
    }
    if (r.ok) process.stdout.write(snapshotSummary(action, body as SnapshotReply) + '\n');
    else {
      const b = body as { error?: string; fix?: string };
      process.stderr.write(`error: ${b.error ?? `HTTP ${r.status}`}${b.fix ? `\n  fix: ${b.fix}` : ''}\n`);
    }
  }
  if (!r.ok) process.exitCode = 1;
}

type SnapshotReply = {
  pipeline?: string;
  started?: string;
  snapshot?: { id: string; kind: string; status: string; tables: { table: string; where: string | null; chunksDone: number; chunks: number; rows: number; estimate: number }[] } | null;
};

/** What `tributary snapshot` prints for a successful request (`--json` prints the reply). */
export function snapshotSummary(action: string, b: SnapshotReply): string {
  const s = b.snapshot;
  if (!s) return `pipeline ${b.pipeline ?? '?'}: ${action}: ok`;
  const lines = [action === 'start' ? `snapshot ${s.id} started on pipeline ${b.pipeline}` : `snapshot ${s.id} on pipeline ${b.pipeline}: ${s.status}`];
  for (const t of s.tables) {
    const progress = action === 'start' ? `~${t.estimate} rows in the table` : `${t.rows} rows read, ${t.chunksDone}/${t.chunks} chunks`;
    lines.push(`  ${t.table}${t.where ? ` where ${t.where}` : ''}: ${progress}`);
  }
  if (action === 'start') lines.push('follow it with `tributary status --config FILE`');
  return lines.join('\n');
}

/** The base URL the CLI reaches the running process at (a wildcard bind is reached on loopback). */
export function apiBase(http: { host: string; port: number }): string {
  const host = http.host === '0.0.0.0' || http.host === '' ? '127.0.0.1' : http.host === '::' ? '::1' : http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${http.port}`;
}

/** `Authorization: Bearer …` from the config's http.auth_token, when it has one. */
export function authHeaders(http: { auth_token?: string }): Record<string, string> {
  return http.auth_token ? { authorization: `Bearer ${http.auth_token}` } : {};
}

async function cmdBinlog(rest: string[]): Promise<void> {
  const [sub, ...files] = rest;
  if (sub !== 'decode' || !files.length) {
    throw new ConfigError(ErrorCodes.USAGE, 'usage: tributary binlog decode FILE...', { fix: 'pass one or more binlog files (`tributary binlog --help`)' });
  }
  const { runBinlogDecode } = await import('./binlog-decode.js');
  await runBinlogDecode(files);
}
