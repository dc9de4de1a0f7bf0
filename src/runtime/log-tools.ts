import { ConfigError, ErrorCodes } from '../core/errors.js';
import type { ResolvedPipeline } from '../config/load.js';
import { qualified } from './table-filter.js';
import { logInfo, type LogInfo, type SinkRecord } from './log-info.js';
import { TimeTravel } from '../log/time-travel.js';
import { openLogView, type LogView } from '../log/view.js';
import type { StateStore } from '../state/store.js';
import { pipelineLogDir } from '../stream/open.js';

/**
 * What the CLI (`log`, `state`, `rewind`) and the HTTP API (`/log`, `/state`, `/rewind`)
 * share: choosing the pipeline, checking that it has a log, and the answers themselves.
 */

/** The item named `name`, or the only one; TRB5013 (a usage error) otherwise. */
export function pickByName<T>(items: readonly T[], name: string | undefined, nameOf: (t: T) => string, what: string): T {
  if (name !== undefined) {
    const hit = items.find((t) => nameOf(t) === name);
    if (hit) return hit;
    throw new ConfigError(ErrorCodes.LOG_UNKNOWN_NAME, `no ${what} named "${name}"`, { fix: `name one of: ${items.map(nameOf).join(', ')}` });
  }
  if (items.length === 1) return items[0]!;
  throw new ConfigError(ErrorCodes.LOG_UNKNOWN_NAME, `the config has ${items.length} ${what}s and none is named`, { fix: `pass --${what} (or ?${what}=) with one of: ${items.map(nameOf).join(', ')}` });
}

/** TRB5011 unless the pipeline keeps its stream in the log. */
export function requireLog(p: ResolvedPipeline): void {
  if (p.config.stream.type !== 'log') {
    throw new ConfigError(ErrorCodes.LOG_NOT_ENABLED, `pipeline ${p.config.name} runs with stream: ${p.config.stream.type}, which keeps no history`, {
      fix: 'use stream: { type: log } (the default) to keep a retained log; history starts when it runs with it',
    });
  }
}

/** The pipeline's log read-only from disk (TRB5011, TRB5012 when there is none). */
export async function openPipelineLog(p: ResolvedPipeline): Promise<LogView> {
  requireLog(p);
  return openLogView(pipelineLogDir(p.config));
}

/** A table as the log names it (Postgres: a bare name is in `public`). */
export function logTable(p: ResolvedPipeline, table: string): string {
  return qualified(table, p.config.source.type);
}

/** `log info` of a pipeline: the log's facts and every sink of the config with its stored offset and lag. */
export async function pipelineLogInfo(p: ResolvedPipeline, view: LogView, store: Pick<StateStore, 'loadSinks'>): Promise<LogInfo & { pipeline: string }> {
  const stored = await store.loadSinks(p.config.name);
  const sinks: SinkRecord[] = p.sinks.map((s) => ({ name: s.base.name, start: s.base.start, record: stored[s.base.name] }));
  return { pipeline: p.config.name, ...(await logInfo(view, sinks)) };
}

/** A `--key` value: a JSON object, or a usage error. */
export function keyArg(text: string): string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = null;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw new ConfigError(ErrorCodes.USAGE, `--key is not a JSON object: ${text}`, { fix: 'give the key as events show it, e.g. --key \'{"id":7}\'' });
  }
  return text;
}

/**
 * "The rows of `table` as they were at `ts`" (the result of every transaction committed at or
 * before it), as JSON bytes, one row each; with `key`, that row only. TRB5003 before the
 * start of the history.
 */
export async function statesAt(view: LogView, table: string, ts: number, key?: string): Promise<{ cut: number; rows: AsyncIterable<Buffer> }> {
  const tt = new TimeTravel(view.log, view.compacted);
  const cut = await tt.cutAt(ts);
  if (key === undefined) return { cut, rows: tt.tableAt(table, cut) };
  const row = await tt.rowAt(table, Buffer.from(key), cut);
  return {
    cut,
    rows: (async function* () {
      if (row) yield row;
    })(),
  };
}
