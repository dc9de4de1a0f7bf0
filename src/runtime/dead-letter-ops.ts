import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import type { ResolvedPipeline } from '../config/load.js';
import { MemoryDeadLetters, type DeadLetterQueue, type StoredDeadLetter } from '../state/dead-letters.js';
import { openStateStoreUnlessLocked } from '../state/open.js';
import type { StateStore } from '../state/store.js';
import { pipelineStateDir } from '../stream/open.js';
import { Metrics } from './metrics.js';
import { positionSupport } from './positions.js';
import { SinkRunner } from './sink-runner.js';

/**
 * The dead-letter operations shared by `tributary dlq` and the HTTP routes (`/dlq…`): the
 * API form of a dead letter, summaries and pages, and retry/discard on a stopped pipeline.
 * A running pipeline retries and discards through its own sink runner (SinkRunner), which
 * serializes them with its batches; these work on the store when nothing runs.
 */

/** Which dead letters a retry or discard takes. */
export interface DeadLetterSelection {
  ids?: string[];
  all?: boolean;
}

/**
 * A dead letter as the API and `dlq list/show --json` give it (docs/admin-api.md):
 * `{ id, pipeline, sink, table, key, offset?, attempts, error: { code?, message },
 * first_failed_at, last_failed_at, position, index, event }`, as JSON text with the stored
 * envelope spliced in as it is (numbers beyond a double's precision stay exact).
 */
export function deadLetterJson(it: StoredDeadLetter): string {
  const { envelope, ...rest } = it;
  const head = JSON.stringify(rest);
  return `${head.slice(0, -1)},"event":${envelope}}`;
}

/** One sink's dead-letter count and the time its oldest one first failed (GET /dlq). */
export interface DeadLetterDepth {
  pipeline: string;
  sink: string;
  depth: number;
  oldest_at: string | null;
}

export function depthOf(pipeline: string, sink: string, items: StoredDeadLetter[]): DeadLetterDepth {
  let oldest: string | null = null;
  for (const it of items) if (oldest === null || it.first_failed_at < oldest) oldest = it.first_failed_at;
  return { pipeline, sink, depth: items.length, oldest_at: oldest };
}

/** A page of dead letters after id `after`, at most `limit`; `next` is the id to page on from. */
export function pageOf(items: StoredDeadLetter[], after: string | undefined, limit: number): { items: StoredDeadLetter[]; next: string | null } {
  const from = after === undefined ? items : items.filter((i) => i.id > after);
  const page = from.slice(0, limit);
  return { items: page, next: from.length > limit ? page[page.length - 1]!.id : null };
}

/** The dead-letter queue of a sink of `p` in `store` (in memory when the store has none). */
export function queueOf(store: StateStore, p: ResolvedPipeline, sink: string): DeadLetterQueue {
  return store.deadLetters?.(p.config.name, sink) ?? new MemoryDeadLetters();
}

/** The sink named `name` in `p`, or TRB5012 listing the sinks. */
export function sinkOf(p: ResolvedPipeline, name: string): ResolvedPipeline['sinks'][number] {
  const s = p.sinks.find((x) => x.base.name === name);
  if (!s) throw new TributaryError(ErrorCodes.LOG_UNKNOWN_NAME, `pipeline ${p.config.name} has no sink named "${name}"`, { fix: `name one of: ${p.sinks.map((x) => x.base.name).join(', ')}` });
  return s;
}

/**
 * Dead-letter files of earlier versions that the store has not imported yet (a pipeline
 * imports them when it starts, and so does an offline `dlq retry|discard`).
 */
export function legacyDeadLetterFiles(p: ResolvedPipeline): string[] {
  const out: string[] = [];
  for (const s of p.sinks) {
    const path = s.base.dead_letter.path ?? join(pipelineStateDir(p.config), p.config.name, `deadletter.${encodeURIComponent(s.base.name)}.jsonl`);
    if (existsSync(path)) out.push(path);
  }
  return out;
}

/**
 * Run `fn` with the sink's runner opened on the stopped pipeline's store, under the
 * pipeline's lock: the sink is created and opened at its checkpoint like `tributary run`
 * does, so a retry goes through the sink's normal write path and its checkpoint state is
 * stored after it. Returns null, without calling `fn`, when a running process holds the lock
 * (the caller then asks that process over HTTP).
 */
export async function withStoppedSink<T>(p: ResolvedPipeline, sinkName: string, logger: Logger, fn: (runner: SinkRunner) => Promise<T>): Promise<T | null> {
  const sink = sinkOf(p, sinkName);
  const store = await openStateStoreUnlessLocked(p.config.state, { pipeline: p.config.name, logger });
  if (!store) return null;
  const positions = await positionSupport(p.config.source.type);
  const runner = new SinkRunner({
    pipeline: p.config.name,
    sink,
    store,
    source: { parsePosition: (s) => positions.parse(s) },
    logger,
    metrics: new Metrics(),
    stateDir: pipelineStateDir(p.config),
    onCommit: () => undefined,
  });
  try {
    await runner.open((await store.loadSinks(p.config.name))[sinkName]);
    return await fn(runner);
  } finally {
    await runner.close();
    await store.close();
  }
}
