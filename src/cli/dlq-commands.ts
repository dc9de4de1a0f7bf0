import { ConfigError, ErrorCodes, TributaryError, errorMessage } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { loadConfig, type ResolvedPipeline } from '../config/load.js';
import { deadLetterJson, legacyDeadLetterFiles, queueOf, sinkOf, withStoppedSink, type DeadLetterSelection } from '../runtime/dead-letter-ops.js';
import { pickByName } from '../runtime/log-tools.js';
import type { StoredDeadLetter } from '../state/dead-letters.js';
import { openStateStore } from '../state/open.js';
import { apiBase, args, authHeaders, configFiles } from './main.js';

/**
 * `tributary dlq list|show|retry|discard`. list and show read the state store without its
 * lock (also while the pipeline runs). retry and discard take the pipeline's lock and work on
 * the store, opening the sink at its checkpoint; when a running process holds the lock, they
 * ask it over its HTTP API instead (as `tributary rewind` does).
 */
export async function cmdDlq(rest: string[]): Promise<void> {
  const [sub, ...more] = rest;
  if (sub !== 'list' && sub !== 'show' && sub !== 'retry' && sub !== 'discard') {
    throw new ConfigError(ErrorCodes.USAGE, sub ? `unknown dlq command "${sub}"` : 'missing dlq command', { fix: 'run `tributary dlq list|show|retry|discard` (`tributary dlq --help`)' });
  }
  const { values } = args(more, {
    config: { type: 'string', multiple: true, short: 'c' },
    pipeline: { type: 'string' },
    sink: { type: 'string' },
    id: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    reason: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!values.sink) throw new ConfigError(ErrorCodes.USAGE, 'missing --sink', { fix: 'pass --sink NAME (a sink of the pipeline)' });
  const cfg = await loadConfig(configFiles(values.config));
  for (const w of cfg.warnings) process.stderr.write(`warning: ${w}\n`);
  const p = pickByName(cfg.pipelines, values.pipeline, (x) => x.config.name, 'pipeline');
  const sink = sinkOf(p, values.sink).base.name;
  const json = values.json === true;
  if (sub === 'list' || sub === 'show') {
    if (values.all || values.reason) throw new ConfigError(ErrorCodes.USAGE, `--all and --reason are options of retry and discard`, { fix: `run tributary dlq ${sub} --sink ${sink}` });
    const items = await readQueue(p, sink);
    if (sub === 'list') return list(p, sink, items, values.limit, json);
    const id = values.id?.length === 1 ? values.id[0]! : undefined;
    if (!id) throw new ConfigError(ErrorCodes.USAGE, 'dlq show needs one --id', { fix: `list the ids with tributary dlq list --sink ${sink}` });
    const it = items.find((i) => i.id === id);
    if (!it) throw new TributaryError(ErrorCodes.DLQ_UNKNOWN_ID, `sink ${sink} has no dead letter ${id}`, { fix: `list them with tributary dlq list --sink ${sink}` });
    // The API's form on one line, the event as stored (a parse and print would round big numbers).
    process.stdout.write(json ? deadLetterJson(it) + '\n' : showText(it));
    return;
  }
  const sel = selection(values.id, values.all === true);
  if (sub === 'discard' && !values.reason?.trim()) throw new ConfigError(ErrorCodes.USAGE, 'dlq discard needs --reason TEXT', { fix: 'say why the events may be dropped: it is logged and kept with them' });
  const reason = values.reason?.trim() ?? '';
  const logger = createLogger({ level: process.env.TRIBUTARY_LOG_LEVEL ?? 'warn' });
  let live = false;
  type Result = { retried: number; delivered: number; parked: number } | { discarded: number };
  let result = await withStoppedSink<Result>(p, sink, logger, (runner) => (sub === 'retry' ? runner.retryDeadLetters(sel) : runner.discardDeadLetters(sel, reason)));
  if (result === null) {
    live = true;
    result = await askLive(cfg.http, sub, { pipeline: p.config.name, sink, ...sel, ...(sub === 'discard' ? { reason } : {}) });
  }
  logger.flush();
  if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else if ('discarded' in result) process.stdout.write(`sink ${sink}: discarded ${result.discarded} dead letter(s)${live ? ' (by the running pipeline)' : ''}; reason recorded: ${reason}\n`);
  else {
    const r = result as { retried: number; delivered: number; parked: number };
    process.stdout.write(`sink ${sink}: retried ${r.retried} dead letter(s)${live ? ' (by the running pipeline)' : ''}: ${r.delivered} delivered, ${r.parked} still parked\n`);
  }
  if ('parked' in result && (result as { parked: number }).parked > 0) process.exitCode = 1;
}

function selection(ids: string[] | undefined, all: boolean): DeadLetterSelection {
  if (all && ids?.length) throw new ConfigError(ErrorCodes.USAGE, 'pass --id or --all, not both', { fix: 'name the dead letters with --id ID (repeatable), or take them all with --all' });
  if (all) return { all: true };
  if (!ids?.length) throw new ConfigError(ErrorCodes.USAGE, 'missing --id ID or --all', { fix: 'name the dead letters with --id ID (repeatable; ids from tributary dlq list), or take them all with --all' });
  return { ids };
}

/** The sink's dead letters, read from the store without its lock. */
async function readQueue(p: ResolvedPipeline, sink: string): Promise<StoredDeadLetter[]> {
  const store = await openStateStore(p.config.state);
  try {
    return await queueOf(store, p, sink).list();
  } finally {
    await store.close();
  }
}

function list(p: ResolvedPipeline, sink: string, items: StoredDeadLetter[], limitText: string | undefined, json: boolean): void {
  const limit = limitText === undefined ? Infinity : Number(limitText);
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 1)) throw new ConfigError(ErrorCodes.USAGE, `--limit ${limitText} is not a count`, { fix: 'give a whole number' });
  const shown = items.slice(0, limit);
  for (const f of legacyDeadLetterFiles(p)) process.stderr.write(`note: ${f} holds dead letters of an earlier version; they are imported into the store when the pipeline next starts (or by tributary dlq retry|discard)\n`);
  if (json) {
    process.stdout.write(`{"pipeline":${JSON.stringify(p.config.name)},"sink":${JSON.stringify(sink)},"depth":${items.length},"items":[${shown.map(deadLetterJson).join(',\n')}]}\n`);
    return;
  }
  if (!items.length) {
    process.stdout.write(`sink ${sink} of pipeline ${p.config.name}: no dead letters\n`);
    return;
  }
  process.stdout.write(`sink ${sink} of pipeline ${p.config.name}: ${items.length} dead letter(s)${shown.length < items.length ? `, the first ${shown.length}` : ''}\n`);
  const rows = [['id', 'table', 'key', 'attempts', 'first failed', 'error']];
  for (const it of shown) rows.push([it.id, it.table, JSON.stringify(it.key), String(it.attempts), it.first_failed_at, oneLine(`${it.error.code ? it.error.code + ' ' : ''}${it.error.message}`, 100)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write('  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n');
}

function oneLine(s: string, max: number): string {
  const t = s.replace(/\s+/g, ' ');
  return t.length > max ? t.slice(0, max - 1) + '…' : t;
}

function showText(it: StoredDeadLetter): string {
  return [
    `dead letter ${it.id}`,
    `  pipeline   ${it.pipeline}, sink ${it.sink}`,
    `  table      ${it.table}, key ${JSON.stringify(it.key)}`,
    `  position   ${it.position} (event ${it.index})${it.offset !== undefined ? `, log offset ${it.offset}` : ''}`,
    `  attempts   ${it.attempts}`,
    `  failed     first ${it.first_failed_at}, last ${it.last_failed_at}`,
    `  error      ${it.error.code ? it.error.code + ' ' : ''}${it.error.message}`,
    `  event      ${it.envelope}`,
  ].join('\n') + '\n';
}

/** Ask the running process (POST /dlq/retry or /dlq/discard with the admin token of the same config). */
async function askLive(http: { host: string; port: number; auth_token?: string }, what: 'retry' | 'discard', body: Record<string, unknown>): Promise<{ retried: number; delivered: number; parked: number } | { discarded: number }> {
  const fix = 'the pipeline runs in another process: make its HTTP API reachable (http.port, http.auth_token from the same config), or stop it and run the command again';
  if (!http.port) throw new TributaryError(ErrorCodes.DLQ_LIVE, `pipeline ${String(body.pipeline)} is running (its state lock is held) and this config turns the HTTP API off`, { fix });
  let r: Response;
  try {
    r = await fetch(`${apiBase(http)}/dlq/${what}`, { method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(http) }, body: JSON.stringify(body) });
  } catch (err) {
    throw new TributaryError(ErrorCodes.DLQ_LIVE, `pipeline ${String(body.pipeline)} is running (its state lock is held), but no process answers on ${http.host}:${http.port}: ${errorMessage(err)}`, { fix });
  }
  const reply = (await r.json().catch(() => ({}))) as { error?: string; fix?: string; code?: string };
  if (!r.ok) {
    const code = (Object.values(ErrorCodes) as string[]).includes(reply.code ?? '') ? (reply.code as typeof ErrorCodes.DLQ_LIVE) : ErrorCodes.DLQ_LIVE;
    throw new TributaryError(code, `the running process refused the ${what}: ${reply.error?.replace(/^TRB\d+ /, '') ?? `HTTP ${r.status}`}`, { fix: reply.fix ?? fix });
  }
  return reply as never;
}
