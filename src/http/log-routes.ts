import type { ServerResponse } from 'node:http';
import { ErrorCodes, TributaryError, type ErrorCode } from '../core/errors.js';
import type { ResolvedPipeline } from '../config/load.js';
import { readEvents } from '../log/event-reader.js';
import { parseTarget, parseTime, resolveTarget } from '../log/targets.js';
import { liveLogView, type LogView } from '../log/view.js';
import { keyArg, logTable, openPipelineLog, pickByName, pipelineLogInfo, requireLog, statesAt } from '../runtime/log-tools.js';
import { positionSupport } from '../runtime/positions.js';
import type { RewindPlan } from '../runtime/rewind.js';
import { openStateStore } from '../state/open.js';
import type { StateStore } from '../state/store.js';
import { LogStream } from '../stream/log-stream.js';
import type { EventStream } from '../stream/types.js';
import { badRequest, codedReply, sendReply, type Reply } from './reply.js';

/** What the log routes need of a pipeline in this process (a PipelineSupervisor). */
export interface LogRouteTarget {
  readonly name: string;
  readonly resolved: ResolvedPipeline;
  /** The current attempt, if any. */
  readonly pipeline: {
    readonly state: string;
    readonly stream?: EventStream;
    readonly store?: StateStore;
    rewindSink(sink: string, to: string, dryRun: boolean): Promise<RewindPlan>;
  } | null;
}

/** HTTP status of the log tools' refusals. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.USAGE]: 400,
  [ErrorCodes.HTTP_BAD_REQUEST]: 400,
  [ErrorCodes.LOG_POSITION]: 400,
  [ErrorCodes.LOG_UNKNOWN_NAME]: 404,
  [ErrorCodes.LOG_MISSING]: 404,
  [ErrorCodes.LOG_NOT_ENABLED]: 409,
  [ErrorCodes.LOG_REWIND_LIVE]: 409,
  [ErrorCodes.LOG_BEFORE_HISTORY]: 422,
  [ErrorCodes.LOG_TARGET]: 422,
};

const coded = (err: unknown): Reply => codedReply(err, STATUS);

/** The running pipeline's own log, or the log on disk read-only (a pipeline waiting, failed, or run elsewhere). */
async function withView<T>(t: LogRouteTarget, fn: (view: LogView) => Promise<T>): Promise<T> {
  requireLog(t.resolved);
  const pl = t.pipeline;
  if (pl && pl.state === 'running' && pl.stream instanceof LogStream) return fn(liveLogView(pl.stream));
  const view = await openPipelineLog(t.resolved);
  try {
    return await fn(view);
  } finally {
    await view.close();
  }
}

async function withStore<T>(t: LogRouteTarget, fn: (store: Pick<StateStore, 'loadSinks'>) => Promise<T>): Promise<T> {
  const pl = t.pipeline;
  if (pl && pl.state === 'running' && pl.store) return fn(pl.store);
  const store = await openStateStore(t.resolved.config.state);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Write JSON text in pieces, waiting while the client's socket is full. */
async function put(res: ServerResponse, text: string | Buffer): Promise<void> {
  if (!res.write(text)) await new Promise<void>((r) => res.once('drain', r).once('close', r));
  if (res.destroyed) throw new Error('the client went away');
}

const param = (url: URL, name: string): string | undefined => url.searchParams.get(name) ?? undefined;

/**
 * The log's HTTP API, for the console and scripts (docs/admin-api.md):
 * - `GET /log[?pipeline=P]`: `log info` of every pipeline (or one);
 * - `GET /log/read?pipeline&table&key&from&to&limit`: retained events, paged;
 * - `GET /state?pipeline&table&at&key`: time travel, rows streamed;
 * - `POST /rewind {pipeline, sink, to, dry_run}`: rewind a sink of a running pipeline.
 * Reads are GETs (the token once one is set); the rewind needs the token (auth.ts).
 */
export function logRoutes(pipelines: readonly LogRouteTarget[]): { get: Record<string, (url: URL, res: ServerResponse) => Promise<void>>; post: Record<string, (body: unknown) => Promise<Reply>> } {
  const pick = (name: string | undefined) => pickByName(pipelines, name, (t) => t.name, 'pipeline');
  return {
    get: {
      '/log': async (url, res) => {
        const name = param(url, 'pipeline');
        let chosen: readonly LogRouteTarget[];
        try {
          chosen = name === undefined ? pipelines : [pick(name)];
        } catch (err) {
          return sendReply(res, coded(err));
        }
        const out: unknown[] = [];
        for (const t of chosen) {
          try {
            out.push(await withView(t, (view) => withStore(t, (store) => pipelineLogInfo(t.resolved, view, store))));
          } catch (err) {
            out.push({ pipeline: t.name, ...(coded(err).body as object) });
          }
        }
        sendReply(res, { status: 200, body: { pipelines: out } });
      },

      '/log/read': async (url, res) => {
        let t: LogRouteTarget;
        let limit: number;
        let key: string | undefined;
        try {
          t = pick(param(url, 'pipeline'));
          const l = param(url, 'limit') ?? '1000';
          limit = Number(l);
          if (!/^\d+$/.test(l) || limit < 1 || limit > 10_000) throw badRequest(`limit=${l} is not a count from 1 to 10000`, 'page with limit and the reply\'s next (from=next)');
          const k = param(url, 'key');
          key = k === undefined ? undefined : keyArg(k);
        } catch (err) {
          return sendReply(res, coded(err));
        }
        const table = param(url, 'table');
        try {
          await withView(t, async (view) => {
            const positions = await positionSupport(t.resolved.config.source.type);
            const from = await resolveTarget(view, parseTarget(param(url, 'from') ?? 'earliest', positions, 'from'), true);
            const to = await resolveTarget(view, parseTarget(param(url, 'to') ?? 'latest', positions, 'to'), true);
            res.writeHead(200, { 'content-type': 'application/json' });
            await put(res, `{"pipeline":${JSON.stringify(t.name)},"from":${from.offset},"to":${to.offset},"beforeStart":${from.beforeStart},"events":[`);
            let n = 0;
            let next: number | null = null;
            for await (const ev of readEvents(view, { from: from.offset, to: to.offset, table: table === undefined ? undefined : logTable(t.resolved, table), key })) {
              if (n === limit) {
                next = ev.offset;
                break;
              }
              // The envelope's bytes as stored: numbers beyond a double's precision stay exact.
              await put(res, Buffer.concat([Buffer.from(`${n ? ',' : ''}\n{"offset":${ev.offset},"event":`), ev.buf.subarray(ev.envStart, ev.envEnd), CLOSE]));
              n++;
            }
            res.end(`\n],"next":${next}}\n`);
          });
        } catch (err) {
          if (res.headersSent) throw err;
          sendReply(res, coded(err));
        }
      },

      '/state': async (url, res) => {
        let t: LogRouteTarget;
        let ts: number;
        let key: string | undefined;
        let table: string;
        try {
          t = pick(param(url, 'pipeline'));
          const tb = param(url, 'table');
          const at = param(url, 'at');
          if (!tb || !at) throw badRequest('GET /state needs table and at', 'e.g. /state?table=public.orders&at=2024-01-15T10:45:00Z');
          table = logTable(t.resolved, tb);
          ts = parseTime(at, 'at');
          const k = param(url, 'key');
          key = k === undefined ? undefined : keyArg(k);
        } catch (err) {
          return sendReply(res, coded(err));
        }
        try {
          await withView(t, async (view) => {
            const { cut, rows } = await statesAt(view, table, ts, key);
            res.writeHead(200, { 'content-type': 'application/json' });
            await put(res, `{"pipeline":${JSON.stringify(t.name)},"table":${JSON.stringify(table)},"at":"${new Date(ts).toISOString()}","cut":${cut},"rows":[`);
            let n = 0;
            for await (const row of rows) await put(res, Buffer.concat([Buffer.from(n++ ? ',\n' : '\n'), row]));
            res.end('\n]}\n');
          });
        } catch (err) {
          if (res.headersSent) throw err;
          sendReply(res, coded(err));
        }
      },
    },

    post: {
      '/rewind': async (body) => {
        try {
          const b = (body ?? {}) as { pipeline?: unknown; sink?: unknown; to?: unknown; dry_run?: unknown };
          if (typeof b.sink !== 'string' || typeof b.to !== 'string') throw badRequest('POST /rewind needs "sink" and "to"', 'send {"sink": "audit", "to": "2024-01-15T10:45:00Z", "dry_run": true}');
          const t = pick(typeof b.pipeline === 'string' ? b.pipeline : undefined);
          requireLog(t.resolved);
          const pl = t.pipeline;
          if (!pl || pl.state !== 'running') {
            throw new TributaryError(ErrorCodes.LOG_REWIND_LIVE, `pipeline ${t.name} is not running here (${pl?.state ?? 'starting'})`, {
              fix: 'wait until it runs (GET /status), or stop the process and run tributary rewind',
            });
          }
          return { status: 200, body: await pl.rewindSink(b.sink, b.to, b.dry_run === true) };
        } catch (err) {
          return coded(err);
        }
      },
    },
  };
}

const CLOSE = Buffer.from('}');

/** The HTTP routes of `tributary run`: the log API beside other POST routes (the snapshot API). */
export function logApi(pipelines: readonly LogRouteTarget[], post: Record<string, (body: unknown) => Promise<Reply>>): { get: ReturnType<typeof logRoutes>['get']; post: Record<string, (body: unknown) => Promise<Reply>> } {
  const r = logRoutes(pipelines);
  return { get: r.get, post: { ...post, ...r.post } };
}
