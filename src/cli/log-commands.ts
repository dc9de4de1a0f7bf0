import { ConfigError, ErrorCodes, TributaryError, errorMessage } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { loadConfig, type ResolvedPipeline } from '../config/load.js';
import { readEvents } from '../log/event-reader.js';
import type { LogInfo } from '../runtime/log-info.js';
import { parseTarget, parseTime, resolveTarget } from '../log/targets.js';
import { positionSupport } from '../runtime/positions.js';
import { countRewind, planRewind, type RewindPlan } from '../runtime/rewind.js';
import { keyArg, logTable, openPipelineLog, pickByName, pipelineLogInfo, requireLog, statesAt } from '../runtime/log-tools.js';
import { RoleLocks } from '../runtime/roles.js';
import { existsSync } from 'node:fs';
import { openStateStore, openStateStoreUnlessLocked } from '../state/open.js';
import type { StateStore } from '../state/store.js';
import { pipelineLogDir } from '../stream/open.js';
import { apiBase, args, authHeaders, configFiles } from './main.js';

/**
 * `tributary log info|read`, `tributary state` and `tributary rewind`: the log's history from
 * the command line. They read the log read-only (a running pipeline may be appending to it)
 * and the state store without its lock; only a rewind of a stopped pipeline takes the lock,
 * and a running one is asked over its HTTP API instead.
 */

const pipelineOpts = { config: { type: 'string', multiple: true, short: 'c' }, pipeline: { type: 'string' } } as const;

async function pipelineOf(values: { config?: string[]; pipeline?: string }): Promise<{ p: ResolvedPipeline; cfg: Awaited<ReturnType<typeof loadConfig>> }> {
  const cfg = await loadConfig(configFiles(values.config));
  for (const w of cfg.warnings) process.stderr.write(`warning: ${w}\n`);
  const p = pickByName(cfg.pipelines, values.pipeline, (x) => x.config.name, 'pipeline');
  requireLog(p);
  return { p, cfg };
}

/** Write to stdout, waiting when the pipe is full; false once the reader went away (`| head`). */
function stdoutWriter(): { write(b: Buffer | string): Promise<boolean>; gone: () => boolean } {
  let gone = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') gone = true;
    else throw err;
  });
  return {
    gone: () => gone,
    async write(b) {
      if (gone) return false;
      if (!process.stdout.write(b)) await new Promise<void>((r) => process.stdout.once('drain', r).once('error', () => r()));
      return !gone;
    },
  };
}

export async function cmdLog(rest: string[]): Promise<void> {
  const [sub, ...more] = rest;
  if (sub === 'info') return logInfoCmd(more);
  if (sub === 'read') return logReadCmd(more);
  throw new ConfigError(ErrorCodes.USAGE, sub ? `unknown log command "${sub}"` : 'missing log command', { fix: 'run `tributary log info` or `tributary log read` (`tributary log --help`)' });
}

async function logInfoCmd(rest: string[]): Promise<void> {
  const { values } = args(rest, { ...pipelineOpts, json: { type: 'boolean' } });
  const { p } = await pipelineOf(values);
  const view = await openPipelineLog(p);
  const store = await openStateStore(p.config.state);
  try {
    const info = await pipelineLogInfo(p, view, store);
    process.stdout.write(values.json ? JSON.stringify(info, null, 2) + '\n' : infoText(info));
  } finally {
    await store.close();
    await view.close();
  }
}

/** `log info` as a readable table. */
export function infoText(info: LogInfo & { pipeline: string }): string {
  const o = info.offsets;
  const lines = [`pipeline ${info.pipeline}: log in ${info.dir}`];
  lines.push(`  offsets   first ${o.first}, last ${o.last ?? '-'}, durable end ${o.durableEnd}${o.committedEnd !== o.durableEnd ? ` (committed end ${o.committedEnd}: a transaction is being appended)` : ''}`);
  lines.push(`  commits   ${info.times.firstCommit ?? '-'} .. ${info.times.lastCommit ?? '-'}${info.lastCommit ? ` (last at ${info.lastCommit.position})` : ''}`);
  lines.push(`  size      ${bytes(info.bytes)} in ${info.segments} segment${info.segments === 1 ? '' : 's'}`);
  const h = info.horizon;
  lines.push(`  horizon   ${h ? `offset ${h.offset}, commits up to ${h.time ?? '-'}; ${h.records} record${h.records === 1 ? '' : 's'} in the compacted state` : 'none: retention has removed nothing'}`);
  if (info.sinks.length) {
    const rows = [['sink', 'offset', 'lag events', 'lag bytes', 'lag seconds', 'committed']];
    for (const s of info.sinks) {
      rows.push([s.name, s.offset === null ? '-' : String(s.offset) + (s.rebuild ? ' (compacted state first)' : ''), String(s.lag.events), bytes(s.lag.bytes), s.lag.seconds.toFixed(1), s.committedAt ?? 'no checkpoint yet']);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) lines.push('  ' + r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  }
  return lines.join('\n') + '\n';
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

async function logReadCmd(rest: string[]): Promise<void> {
  const { values } = args(rest, { ...pipelineOpts, table: { type: 'string' }, key: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, limit: { type: 'string' } });
  const { p } = await pipelineOf(values);
  const key = values.key === undefined ? undefined : keyArg(values.key);
  const limit = values.limit === undefined ? Infinity : Number(values.limit);
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) throw new ConfigError(ErrorCodes.USAGE, `--limit ${values.limit} is not a count`, { fix: 'give a whole number of events' });
  const positions = await positionSupport(p.config.source.type);
  const view = await openPipelineLog(p);
  try {
    const from = await resolveTarget(view, parseTarget(values.from ?? 'earliest', positions, '--from'), true);
    const to = await resolveTarget(view, parseTarget(values.to ?? 'latest', positions, '--to'), true);
    if (from.beforeStart) process.stderr.write(`note: the log starts at offset ${view.log.start}: what came before --from ${values.from} was removed by retention\n`);
    const out = stdoutWriter();
    let n = 0;
    const table = values.table === undefined ? undefined : logTable(p, values.table);
    for await (const ev of readEvents(view, { from: from.offset, to: to.offset, table, key })) {
      if (n++ >= limit) break;
      const line = Buffer.allocUnsafe(ev.envEnd - ev.envStart + 1);
      ev.buf.copy(line, 0, ev.envStart, ev.envEnd);
      line[line.length - 1] = 10;
      if (!(await out.write(line))) break;
    }
  } finally {
    await view.close();
  }
}

export async function cmdState(rest: string[]): Promise<void> {
  const { values } = args(rest, { ...pipelineOpts, table: { type: 'string' }, at: { type: 'string' }, key: { type: 'string' } });
  if (!values.table) throw new ConfigError(ErrorCodes.USAGE, 'missing --table', { fix: 'pass --table schema.table (Postgres) or db.table (MySQL)' });
  if (!values.at) throw new ConfigError(ErrorCodes.USAGE, 'missing --at', { fix: 'pass --at with an ISO-8601 time, e.g. --at 2024-01-15T10:45:00Z' });
  const ts = parseTime(values.at);
  const key = values.key === undefined ? undefined : keyArg(values.key);
  const { p } = await pipelineOf(values);
  const table = logTable(p, values.table);
  const view = await openPipelineLog(p);
  try {
    const { rows } = await statesAt(view, table, ts, key);
    const out = stdoutWriter();
    let n = 0;
    for await (const row of rows) {
      n++;
      if (!(await out.write(Buffer.concat([row, NL])))) break;
    }
    if (key !== undefined && n === 0) process.stderr.write(`no row of ${table} with key ${key} at ${new Date(ts).toISOString()}\n`);
  } finally {
    await view.close();
  }
}

const NL = Buffer.from('\n');

export async function cmdRewind(rest: string[]): Promise<void> {
  const { values } = args(rest, { ...pipelineOpts, sink: { type: 'string' }, to: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } });
  if (!values.sink) throw new ConfigError(ErrorCodes.USAGE, 'missing --sink', { fix: 'pass --sink NAME (a sink of the pipeline)' });
  if (!values.to) throw new ConfigError(ErrorCodes.USAGE, 'missing --to', { fix: 'pass --to earliest | latest | TIME | OFFSET | POSITION' });
  const { p, cfg } = await pipelineOf(values);
  const sink = pickByName(p.sinks, values.sink, (s) => s.base.name, 'sink').base;
  const dryRun = values['dry-run'] === true;
  const positions = await positionSupport(p.config.source.type);
  let plan: RewindPlan;
  let live = false;
  if (dryRun) {
    // Reads only: the log read-only and the state store without its lock.
    const view = await openPipelineLog(p);
    const store = await openStateStore(p.config.state);
    try {
      const stored = (await store.loadSinks(p.config.name))[sink.name];
      plan = (await planRewind(view, positions, { pipeline: p.config.name, sink, stored, to: values.to, dryRun, count: true })).plan;
    } finally {
      await store.close();
      await view.close();
    }
  } else {
    const locked = await lockPipeline(p, sink.name);
    if (locked) {
      const view = await openPipelineLog(p).catch(async (err) => {
        await locked.close();
        throw err;
      });
      try {
        const stored = (await locked.loadSinks(p.config.name))[sink.name];
        const r = await planRewind(view, positions, { pipeline: p.config.name, sink, stored, to: values.to, dryRun, count: false });
        await locked.saveSink(p.config.name, sink.name, r.record);
        plan = r.plan;
        await countRewind(view, sink, plan);
      } finally {
        await locked.close();
        await view.close();
      }
    } else {
      plan = await rewindLive(cfg.http, p.config.name, sink.name, values.to);
      live = true;
    }
  }
  process.stdout.write(values.json ? JSON.stringify(plan, null, 2) + '\n' : rewindText(plan, live));
}

/**
 * The pipeline's state store with its lock and the lock of sink `sink` (roles.ts), or null
 * when a running process holds either: the whole pipeline, or that sink (`run --role sinks`).
 * Its close() releases both.
 */
async function lockPipeline(p: ResolvedPipeline, sink: string): Promise<StateStore | null> {
  const logger = createLogger({ level: 'silent' });
  const store = await openStateStoreUnlessLocked(p.config.state, { pipeline: p.config.name, logger });
  if (!store) return null;
  let locks: RoleLocks;
  try {
    locks = await RoleLocks.acquire(p, { role: 'sinks', sinks: [sink] }, logger);
  } catch (err) {
    await store.close();
    if ((err as { code?: string }).code === ErrorCodes.ROLE_SINK_LOCKED) return null;
    throw err;
  }
  return {
    loadSinks: (pipeline) => store.loadSinks(pipeline),
    saveSink: (pipeline, name, rec) => store.saveSink(pipeline, name, rec),
    get: (pipeline, key) => store.get(pipeline, key),
    put: (pipeline, key, value) => store.put(pipeline, key, value),
    delete: (pipeline, key) => store.delete(pipeline, key),
    close: async () => {
      await locks.release();
      await store.close();
    },
  };
}

/** Ask the running process to rewind (POST /rewind with the admin token of the same config). */
async function rewindLive(http: { host: string; port: number; auth_token?: string }, pipeline: string, sink: string, to: string): Promise<RewindPlan> {
  const fix = 'the pipeline runs in another process: make its HTTP API reachable (http.port, http.auth_token from the same config), or stop it and rewind again';
  if (!http.port) throw new TributaryError(ErrorCodes.LOG_REWIND_LIVE, `pipeline ${pipeline} is running (its state lock is held) and this config turns the HTTP API off`, { fix });
  let r: Response;
  try {
    r = await fetch(`${apiBase(http)}/rewind`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders(http) },
      body: JSON.stringify({ pipeline, sink, to, dry_run: false }),
    });
  } catch (err) {
    throw new TributaryError(ErrorCodes.LOG_REWIND_LIVE, `pipeline ${pipeline} is running (its state lock is held), but no process answers on ${http.host}:${http.port}: ${errorMessage(err)}`, { fix });
  }
  const body = (await r.json().catch(() => ({}))) as RewindPlan & { error?: string; fix?: string };
  if (!r.ok) throw new TributaryError(ErrorCodes.LOG_REWIND_LIVE, `the running process refused the rewind: ${body.error ?? `HTTP ${r.status}`}`, { fix: body.fix ?? fix });
  return body;
}

/** What `tributary rewind` prints. */
export function rewindText(p: RewindPlan, live: boolean): string {
  const again = `${p.events ?? '?'} event${p.events === 1 ? '' : 's'} in ${p.transactions ?? '?'} transaction${p.transactions === 1 ? '' : 's'}`;
  const lines: string[] = [];
  const where = `offset ${p.offset}${p.rebuild ? ', the compacted state first' : ''}`;
  if (p.dryRun) lines.push(`dry run: sink ${p.sink} of pipeline ${p.pipeline} would read again from ${where}`);
  else lines.push(`sink ${p.sink} of pipeline ${p.pipeline} rewound to ${where}${live ? ' (the running pipeline restarted that sink)' : '; it reads from there when the pipeline runs'}`);
  const verb = p.dryRun ? 'it would receive' : 'it receives';
  lines.push(`  ${verb} again: ${again}${p.rebuild ? `, after ${p.compactedRows ?? '?'} rows of the compacted state` : ''}${p.previousOffset === null ? ' (it had committed nothing yet)' : ` (it had committed up to offset ${p.previousOffset})`}`);
  if (p.skippedEvents) lines.push(`  ${p.dryRun ? 'it would skip' : 'it skips'} ${p.skippedEvents} event${p.skippedEvents === 1 ? '' : 's'} in ${p.skippedTransactions} transaction${p.skippedTransactions === 1 ? '' : 's'} it has not received`);
  return lines.join('\n') + '\n';
}


/**
 * The log block of `tributary status`: read-only from disk; null for `stream: memory` or
 * before the pipeline first ran with the log, and `{ error }` when it cannot be read.
 */
export async function statusLog(p: ResolvedPipeline, store: Pick<StateStore, 'loadSinks'>): Promise<(LogInfo & { pipeline: string }) | { error: string } | null> {
  if (p.config.stream.type !== 'log' || !existsSync(pipelineLogDir(p.config))) return null;
  try {
    const view = await openPipelineLog(p);
    try {
      return await pipelineLogInfo(p, view, store);
    } finally {
      await view.close();
    }
  } catch (err) {
    return { error: errorMessage(err) };
  }
}

/** `tributary status` lines about the log (the sinks' offsets go on their own lines). */
export function statusLogLines(info: LogInfo | { error: string }): string[] {
  if ('error' in info) return [`log: cannot be read: ${info.error}`];
  const o = info.offsets;
  const h = info.horizon;
  return [
    `log: offsets ${o.first}..${o.last ?? '-'} (durable end ${o.durableEnd}), ${bytes(info.bytes)} in ${info.segments} segment${info.segments === 1 ? '' : 's'}, commits ${info.times.firstCommit ?? '-'} .. ${info.times.lastCommit ?? '-'}`,
    `log horizon: ${h ? `offset ${h.offset} (commits up to ${h.time ?? '-'}, ${h.records} records compacted)` : 'none'}`,
  ];
}
