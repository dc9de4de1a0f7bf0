import type { ServerResponse } from 'node:http';
import { ErrorCodes, TributaryError, type ErrorCode } from '../core/errors.js';
import type { ResolvedPipeline } from '../config/load.js';
import { deadLetterJson, depthOf, pageOf, queueOf, sinkOf, type DeadLetterDepth, type DeadLetterSelection } from '../runtime/dead-letter-ops.js';
import { pickByName } from '../runtime/log-tools.js';
import { openStateStore } from '../state/open.js';
import type { StateStore } from '../state/store.js';
import { badRequest, codedReply, sendJsonText, sendReply, type Reply } from './reply.js';

/** What the dead-letter routes need of a pipeline in this process (a PipelineSupervisor). */
export interface DlqRouteTarget {
  readonly name: string;
  readonly resolved: ResolvedPipeline;
  /** The current attempt, if any. */
  readonly pipeline: {
    readonly state: string;
    readonly store?: StateStore;
    readonly runners: readonly {
      readonly name: string;
      retryDeadLetters(sel: DeadLetterSelection): Promise<{ retried: number; delivered: number; parked: number }>;
      discardDeadLetters(sel: DeadLetterSelection, reason: string): Promise<{ discarded: number }>;
    }[];
  } | null;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.HTTP_BAD_REQUEST]: 400,
  [ErrorCodes.LOG_UNKNOWN_NAME]: 404,
  [ErrorCodes.DLQ_UNKNOWN_ID]: 404,
  [ErrorCodes.DLQ_ORDER]: 409,
  [ErrorCodes.DLQ_LIVE]: 409,
};

const coded = (err: unknown): Reply => codedReply(err, STATUS);

/** The running pipeline's store, or the store opened without the lock for this read. */
async function withStore<T>(t: DlqRouteTarget, fn: (store: StateStore) => Promise<T>): Promise<T> {
  const pl = t.pipeline;
  if (pl && pl.state === 'running' && pl.store) return fn(pl.store);
  const store = await openStateStore(t.resolved.config.state);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** `ids` / `all` of a retry or discard body: one of them, never neither. */
function selection(b: { ids?: unknown; all?: unknown }, what: string): DeadLetterSelection {
  if (b.all === true) return { all: true };
  if (Array.isArray(b.ids) && b.ids.length && b.ids.every((x) => typeof x === 'string')) return { ids: b.ids as string[] };
  throw badRequest(`POST /dlq/${what} needs "ids" (a list of dead-letter ids) or "all": true`, `send {"sink": "audit", "ids": ["…"]} or {"sink": "audit", "all": true}`);
}

/**
 * The dead-letter API (docs/admin-api.md, docs/dead-letters.md):
 * - `GET /dlq[?pipeline=P]` → `{ sinks: [{ pipeline, sink, depth, oldest_at }] }`;
 * - `GET /dlq/list?sink=S[&pipeline=P][&limit=N][&after=ID]` → `{ pipeline, sink, depth, items, next }`;
 * - `GET /dlq/show?sink=S&id=ID[&pipeline=P]` → one dead letter;
 * - `POST /dlq/retry {sink, pipeline?, ids?|all?}` → `{ retried, delivered, parked }`;
 * - `POST /dlq/discard {sink, pipeline?, ids?|all?, reason}` → `{ discarded }`.
 * Reads go to the store (the running pipeline's, or opened read-only); a retry or discard is
 * done by the running pipeline's sink runner, between its batches.
 */
export function dlqRoutes(pipelines: readonly DlqRouteTarget[]): { get: Record<string, (url: URL, res: ServerResponse) => Promise<void>>; post: Record<string, (body: unknown) => Promise<Reply>> } {
  const pick = (name: string | undefined | null) => pickByName(pipelines, name ?? undefined, (t) => t.name, 'pipeline');
  const sinkParam = (url: URL) => {
    const s = url.searchParams.get('sink');
    if (!s) throw badRequest(`GET ${url.pathname} needs sink`, `e.g. ${url.pathname}?sink=audit`);
    return s;
  };
  const live = (t: DlqRouteTarget, sink: string) => {
    sinkOf(t.resolved, sink);
    const pl = t.pipeline;
    const runner = pl && pl.state === 'running' ? pl.runners.find((r) => r.name === sink) : undefined;
    if (!runner) {
      throw new TributaryError(ErrorCodes.DLQ_LIVE, `pipeline ${t.name} is not running here (${pl?.state ?? 'starting'}), so its dead letters cannot be retried or discarded now`, {
        fix: 'wait until it runs (GET /status), or stop the process and use tributary dlq retry|discard, which then work on the store',
      });
    }
    return runner;
  };
  return {
    get: {
      '/dlq': async (url, res) => {
        let chosen: readonly DlqRouteTarget[];
        try {
          const name = url.searchParams.get('pipeline');
          chosen = name === null ? pipelines : [pick(name)];
        } catch (err) {
          const r = coded(err);
          return sendReply(res, r);
        }
        const sinks: DeadLetterDepth[] = [];
        for (const t of chosen) {
          await withStore(t, async (store) => {
            for (const s of t.resolved.sinks) sinks.push(depthOf(t.name, s.base.name, await queueOf(store, t.resolved, s.base.name).list()));
          });
        }
        sendJsonText(res, 200, JSON.stringify({ sinks }));
      },

      '/dlq/list': async (url, res) => {
        try {
          const t = pick(url.searchParams.get('pipeline'));
          const sink = sinkParam(url);
          sinkOf(t.resolved, sink);
          const l = url.searchParams.get('limit') ?? '100';
          const limit = Number(l);
          if (!/^\d+$/.test(l) || limit < 1 || limit > 1000) throw badRequest(`limit=${l} is not a count from 1 to 1000`, 'page with limit and the reply\'s next (after=next)');
          const items = await withStore(t, (store) => queueOf(store, t.resolved, sink).list());
          const page = pageOf(items, url.searchParams.get('after') ?? undefined, limit);
          sendJsonText(res, 200, `{"pipeline":${JSON.stringify(t.name)},"sink":${JSON.stringify(sink)},"depth":${items.length},"items":[${page.items.map(deadLetterJson).join(',\n')}],"next":${JSON.stringify(page.next)}}`);
        } catch (err) {
          const r = coded(err);
          sendReply(res, r);
        }
      },

      '/dlq/show': async (url, res) => {
        try {
          const t = pick(url.searchParams.get('pipeline'));
          const sink = sinkParam(url);
          sinkOf(t.resolved, sink);
          const id = url.searchParams.get('id');
          if (!id) throw badRequest('GET /dlq/show needs id', 'e.g. /dlq/show?sink=audit&id=… (ids from /dlq/list)');
          const items = await withStore(t, (store) => queueOf(store, t.resolved, sink).list());
          const it = items.find((i) => i.id === id);
          if (!it) throw new TributaryError(ErrorCodes.DLQ_UNKNOWN_ID, `sink ${sink} has no dead letter ${id}`, { fix: `list them with GET /dlq/list?sink=${sink}` });
          sendJsonText(res, 200, deadLetterJson(it));
        } catch (err) {
          const r = coded(err);
          sendReply(res, r);
        }
      },
    },

    post: {
      '/dlq/retry': async (body) => {
        try {
          const b = (body ?? {}) as { pipeline?: unknown; sink?: unknown; ids?: unknown; all?: unknown };
          if (typeof b.sink !== 'string') throw badRequest('POST /dlq/retry needs "sink"', 'send {"sink": "audit", "all": true}');
          const sel = selection(b, 'retry');
          const t = pick(typeof b.pipeline === 'string' ? b.pipeline : undefined);
          return { status: 200, body: await live(t, b.sink).retryDeadLetters(sel) };
        } catch (err) {
          return coded(err);
        }
      },
      '/dlq/discard': async (body) => {
        try {
          const b = (body ?? {}) as { pipeline?: unknown; sink?: unknown; ids?: unknown; all?: unknown; reason?: unknown };
          if (typeof b.sink !== 'string') throw badRequest('POST /dlq/discard needs "sink"', 'send {"sink": "audit", "ids": ["…"], "reason": "…"}');
          if (typeof b.reason !== 'string' || !b.reason.trim()) throw badRequest('POST /dlq/discard needs a "reason"', 'say why the events may be dropped: it is recorded with them');
          const sel = selection(b, 'discard');
          const t = pick(typeof b.pipeline === 'string' ? b.pipeline : undefined);
          return { status: 200, body: await live(t, b.sink).discardDeadLetters(sel, b.reason.trim()) };
        } catch (err) {
          return coded(err);
        }
      },
    },
  };
}
