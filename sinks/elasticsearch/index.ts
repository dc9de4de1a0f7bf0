/**
 * The `elasticsearch` sink (also registered as `opensearch`): one document per row, written
 * with the `_bulk` API and fenced with external versioning.
 *
 * - Document id: the primary-key values joined with `id_separator`; index: the `index`
 *   template, lower-cased (Elasticsearch refuses upper-case index names).
 * - Every action carries the event's 64-bit version (`int64Version` in the SDK) and
 *   `version_type=external`, so the cluster itself refuses an event older than what it holds:
 *   a replay answers 409 per item, which is the proof that the newer state is already there,
 *   and is counted as success. Events past the 65,535th of one transaction share a version
 *   (a `tie`): those go with `version_type=external_gte`, so a later event of that transaction
 *   replaces an earlier one of the same document instead of answering 409 and being dropped.
 * - Deletes are real deletes with the external version; Elasticsearch keeps the deleted
 *   document's version for `index.gc_deletes` (60 s by default), which fences replays that
 *   arrive within that window (see docs/sinks/elasticsearch.md for the limit this implies).
 * - Per-item failures: 409 ok; a 404 on delete ok; 429 and 5xx items are sent again, alone,
 *   with backoff; any other 4xx (mapping errors) is a PoisonEventError naming the item, and
 *   the runtime bisects the batch down to that event and dead-letters it.
 */
import { z } from 'zod';
import { defineSink, fillUnchanged, int64Version, once, PoisonEventError, renderTemplate, requireAfter, requireKey, sleep, type Row, type SinkEvent } from '../../src/sdk/index.js';
import { EsClient, EsRequestError } from './client.js';
import { checkElasticsearch } from './check.js';

export const ElasticsearchSinkConfig = z.object({
  url: z.string().default('http://127.0.0.1:9200').describe('Cluster URL (any node, or a load balancer). Credentials in the URL are accepted and never logged.'),
  index: z.string().min(1).default('{table}').describe('Index name template: {schema} {db} {table} {pipeline}. Lower-cased before use.'),
  id_separator: z.string().default(':').describe('Joins the values of a composite primary key into the document `_id`.'),
  username: z.string().optional().describe('Basic-auth user.'),
  password: z.string().optional().describe('Basic-auth password; never logged. A password inside `url` must be percent-encoded.'),
  password_file: z.string().optional().describe('A file holding the password (a mounted Secret), read at start instead of `password`. Relative to the config file.'),
  api_key: z.string().optional().describe('API key (the base64 `id:key` form sent as `Authorization: ApiKey ...`); never logged. Wins over username/password.'),
  refresh: z.enum(['false', 'true', 'wait_for']).default('false').describe('The bulk `refresh` parameter. `false` is fastest; documents become searchable at the next refresh interval.'),
  item_retries: z.number().int().min(0).default(8).describe('How many times items rejected with 429/5xx are resent (alone, with backoff) before the batch fails as retryable.'),
  backoff_ms: z.number().int().min(1).default(100).describe('First backoff for rejected items; doubles each attempt, capped at 10 s.'),
  timeout_ms: z.number().int().min(100).default(60_000).describe('Per-request timeout.'),
});
export type ElasticsearchSinkConfig = z.infer<typeof ElasticsearchSinkConfig>;

/** One bulk action, kept so that a failed item can be resent and named in errors. */
interface Action {
  e: SinkEvent;
  index: string;
  id: string;
  /** The two NDJSON lines (action and, for index, the source), each ending with \n. */
  lines: string;
  del: boolean;
}

interface BulkItemResult {
  status: number;
  error?: { type?: string; reason?: string; caused_by?: { reason?: string } };
}


export default defineSink({
  type: 'elasticsearch',
  description: 'A search index: one document per row via the _bulk API, `version_type=external` with the event version so older events never overwrite newer documents; deletes are real deletes. Also serves OpenSearch.',
  config: ElasticsearchSinkConfig,
  check: checkElasticsearch,
  create(config, ctx) {
    const client = new EsClient({ url: config.url, username: config.username, password: config.password, apiKey: config.api_key, timeoutMs: config.timeout_ms });
    const closing = new AbortController();
    const refresh = config.refresh === 'false' ? '' : `?refresh=${config.refresh}`;

    const docId = (e: SinkEvent) => renderTemplate('{key}', e.event, config.id_separator);
    const indexOf = (e: SinkEvent) => renderTemplate(config.index, e.event).toLowerCase();

    function action(e: SinkEvent, source: Row | null): Action {
      const index = indexOf(e);
      const id = docId(e);
      const del = source === null;
      // Hand-built so the int64 version is written exactly (JSON numbers would round it).
      const v = int64Version(e);
      const meta = `{"${del ? 'delete' : 'index'}":{"_index":${JSON.stringify(index)},"_id":${JSON.stringify(id)},"version":${v.version.toString()},"version_type":"${v.tie ? 'external_gte' : 'external'}"}}\n`;
      return { e, index, id, del, lines: del ? meta : meta + JSON.stringify(source) + '\n' };
    }

    /**
     * Columns a Postgres update left out (`source.unchanged`, TOASTed and not sent) are taken
     * from the newest earlier event of this batch, or from the stored document (`_mget`).
     */
    async function fillUnchangedColumns(events: readonly SinkEvent[], signal: AbortSignal): Promise<Map<SinkEvent, Row>> {
      const filled = new Map<SinkEvent, Row>();
      const need = events.filter((e) => e.event.op !== 'd' && e.event.source.unchanged?.length);
      if (!need.length) return filled;
      const res = await client.request<{ docs: Array<{ _index: string; _id: string; found: boolean; _source?: Row }> }>(
        'POST',
        '/_mget',
        JSON.stringify({ docs: need.map((e) => ({ _index: indexOf(e), _id: docId(e) })) }),
        signal,
      );
      const stored = new Map(res.docs.filter((d) => d.found).map((d) => [`${d._index}\u0000${d._id}`, d._source!]));
      const running = new Map<string, Row | null>();
      for (const e of events) {
        const k = `${indexOf(e)}\u0000${docId(e)}`;
        if (e.event.op === 'd') {
          running.set(k, null);
          continue;
        }
        let row = e.event.after!;
        const unchanged = e.event.source.unchanged;
        if (unchanged?.length) {
          row = fillUnchanged(row, unchanged, running.has(k) ? running.get(k) : stored.get(k));
          filled.set(e, row);
        }
        running.set(k, row);
      }
      return filled;
    }

    /** Send actions; resend only 429/5xx items; return the poison items. */
    async function bulk(actions: Action[], signal: AbortSignal): Promise<Array<{ a: Action; r: BulkItemResult }>> {
      const poison: Array<{ a: Action; r: BulkItemResult }> = [];
      let pending = actions;
      for (let attempt = 0; pending.length; attempt++) {
        let body = '';
        for (const a of pending) body += a.lines;
        const res = await client.request<{ errors: boolean; items: Array<Record<string, BulkItemResult>> }>('POST', `/_bulk${refresh}`, body, signal, 'application/x-ndjson');
        if (!res.errors) break;
        const again: Action[] = [];
        res.items.forEach((item, i) => {
          const r = Object.values(item)[0]!;
          const a = pending[i]!;
          if (r.status < 300) return;
          // 409: the document already holds this or a newer version (a replay): done.
          if (r.status === 409) return;
          if (r.status === 404 && a.del) return; // deleting what is not there; the version is recorded
          if (r.status === 429 || r.status >= 500) again.push(a);
          else poison.push({ a, r });
        });
        pending = again;
        if (!pending.length) break;
        if (attempt >= config.item_retries) {
          throw new EsRequestError(`Elasticsearch kept rejecting ${pending.length} bulk item(s) with ${Object.values(res.items[0] ?? {})[0]?.status ?? '429/5xx'} after ${attempt + 1} attempts`, 429, true);
        }
        ctx.metrics.inc('tributary_sink_item_retries_total', pending.length);
        await sleep(Math.min(10_000, config.backoff_ms * 2 ** attempt), signal);
        if (signal.aborted) throw new EsRequestError('write aborted while retrying rejected bulk items', null, true);
      }
      return poison;
    }

    return {
      async open() {
        const info = await client.request<{ version?: { number?: string; distribution?: string } }>('GET', '/', undefined, AbortSignal.any([closing.signal, ctx.signal]));
        ctx.logger.info({ url: client.safeUrl, version: info.version?.number, distribution: info.version?.distribution ?? 'elasticsearch' }, 'elasticsearch: connected');
      },

      async write(events, wctx) {
        const signal = AbortSignal.any([closing.signal, ctx.signal, wctx.signal]);
        const filled = await fillUnchangedColumns(events, signal);
        // Collapse to the last event per document: with external versions the earlier ones
        // would be overwritten anyway, and a batch of 2,000 updates to one row is one item.
        const last = new Map<string, Action>();
        const flush = async () => {
          if (!last.size) return;
          const poison = await bulk([...last.values()], signal);
          last.clear();
          if (poison.length) {
            const { a, r } = poison[0]!;
            const why = `${r.error?.type ?? r.status}: ${r.error?.reason ?? ''}${r.error?.caused_by?.reason ? ` (${r.error.caused_by.reason})` : ''}`;
            throw new PoisonEventError(
              `Elasticsearch rejected ${poison.length} document(s); first: index ${a.index} id ${a.id} (event at ${a.e.position}#${a.e.index} of ${a.e.table}): ${why}`,
            );
          }
        };
        for (const e of events) {
          const ev = e.event;
          if (ev.op === 't') {
            // Flush first: the truncate must not remove documents written before it in this
            // batch without them having been written (order), nor after it.
            await flush();
            await client.request('POST', `/${encodeURIComponent(indexOf(e))}/_delete_by_query?conflicts=proceed&refresh=true`, '{"query":{"match_all":{}}}', signal, 'application/json', [404]);
            continue;
          }
          requireKey(e, 'Elasticsearch documents are keyed by it');
          const source = ev.op === 'd' ? null : (filled.get(e) ?? requireAfter(e));
          const a = action(e, source);
          const k = `${a.index}\u0000${a.id}`;
          last.delete(k); // re-insert so the map's order stays the order of last writes
          last.set(k, a);
        }
        await flush();
      },

      close: once(async () => {
        closing.abort();
      }),
    };
  },
});
