/**
 * An in-process stand-in for Elasticsearch/OpenSearch, for tests: no real cluster can run on
 * the test machines. It implements the slice of the REST API the elasticsearch sink uses,
 * following the documented semantics:
 *
 * - `POST /_bulk` (and `/{index}/_bulk`): NDJSON `index`, `create` and `delete` actions, each
 *   answered per item (`errors: true` when any item failed);
 * - `version_type=external` (and `external_gte`): a write whose version is not greater than
 *   the stored one (or than a deleted document's tombstone, kept like `index.gc_deletes`) is a
 *   409 `version_conflict_engine_exception`; a delete of a missing document answers 404
 *   `not_found` but still records its version;
 * - a document carrying a metadata field (`_id`, `_index`, ...) is a 400 mapper_parsing_exception;
 * - dynamic mapping: the first value of a field fixes its type (long, double, boolean, text,
 *   object); a later value of another type is a 400 `mapper_parsing_exception`, as in ES;
 * - invalid (upper-case) index names are a 400 `invalid_index_name_exception`;
 * - `GET /{index}/_doc/{id}`, `POST /_mget`, `GET|POST /{index}/_search` (every document,
 *   optionally a `term` query), `POST /{index}/_delete_by_query` (match_all), `DELETE /{index}`;
 * - authentication: when `auth` is set, a request without the expected header is a 401.
 *
 * Fault injection: `rejectNext(n, status)` fails the next n bulk items with 429
 * `es_rejected_execution_exception` (or a 5xx); `failRequests(n, status)` fails whole requests;
 * `poisonWhen(fn)` fails matching items with a 400 mapping error.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

type Source = Record<string, unknown>;

/** Fields Elasticsearch reserves; a document that carries one is rejected with a mapping error. */
const METADATA_FIELDS = new Set(['_id', '_index', '_source', '_version', '_routing', '_seq_no', '_primary_term', '_field_names', '_ignored']);
interface Doc {
  source: Source | null; // null: deleted (a tombstone that keeps its version)
  version: bigint;
  seqNo: number;
}

export interface EsStubOptions {
  /** Expected `Authorization` header value; requests without it get a 401. */
  auth?: string;
}

export class EsStub implements AsyncDisposable {
  readonly indices = new Map<string, { docs: Map<string, Doc>; mapping: Map<string, string> }>();
  /** Every request seen (method, path, headers), for assertions about auth and batching. */
  readonly requests: Array<{ method: string; path: string; headers: IncomingMessage['headers']; items?: number }> = [];
  url = '';
  private server?: Server;
  private seq = 0;
  private rejectItems: Array<{ n: number; status: number }> = [];
  private failReqs: Array<{ n: number; status: number }> = [];
  private poison: ((index: string, id: string, source: Source | null) => boolean) | undefined;

  constructor(private readonly o: EsStubOptions = {}) {}

  static async start(o: EsStubOptions = {}): Promise<EsStub> {
    const s = new EsStub(o);
    s.server = createServer((req, res) => {
      s.handle(req, res).catch((err: Error) => s.send(res, 500, { error: { type: 'stub_error', reason: err.message }, status: 500 }));
    });
    await new Promise<void>((r) => s.server!.listen(0, '127.0.0.1', r));
    s.url = `http://127.0.0.1:${(s.server.address() as { port: number }).port}`;
    return s;
  }

  /** Fail the next `n` bulk items with `status` (429 by default). */
  rejectNext(n: number, status = 429): void {
    this.rejectItems.push({ n, status });
  }
  /** Fail the next `n` whole requests with `status`. */
  failRequests(n: number, status = 503): void {
    this.failReqs.push({ n, status });
  }
  /** Fail items for which `fn` returns true with a 400 mapper_parsing_exception. */
  poisonWhen(fn: ((index: string, id: string, source: Source | null) => boolean) | undefined): void {
    this.poison = fn;
  }

  /** Live documents of an index: id → source. */
  docs(index: string): Map<string, Source> {
    const m = new Map<string, Source>();
    for (const [id, d] of this.indices.get(index)?.docs ?? []) if (d.source) m.set(id, d.source);
    return m;
  }
  version(index: string, id: string): bigint | undefined {
    return this.indices.get(index)?.docs.get(id)?.version;
  }
  reset(): void {
    this.indices.clear();
    this.requests.length = 0;
    this.rejectItems = [];
    this.failReqs = [];
    this.poison = undefined;
  }

  private index(name: string) {
    let i = this.indices.get(name);
    if (!i) this.indices.set(name, (i = { docs: new Map(), mapping: new Map() }));
    return i;
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? Number(v) : v));
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://stub');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const entry: (typeof this.requests)[number] = { method: req.method ?? 'GET', path: url.pathname, headers: req.headers };
    this.requests.push(entry);
    if (this.o.auth && req.headers.authorization !== this.o.auth) {
      return this.send(res, 401, { error: { type: 'security_exception', reason: 'missing authentication credentials' }, status: 401 });
    }
    const f = this.failReqs[0];
    if (f) {
      if (--f.n <= 0) this.failReqs.shift();
      return this.send(res, f.status, { error: { type: f.status === 429 ? 'es_rejected_execution_exception' : 'unavailable', reason: 'injected' }, status: f.status });
    }
    const method = req.method ?? 'GET';
    if (!parts.length) return this.send(res, 200, { name: 'es-stub', cluster_name: 'stub', version: { number: '8.13.0', distribution: 'stub' }, tagline: 'You Know, for Search' });
    const last = parts[parts.length - 1]!;
    if (last === '_bulk') return this.bulk(res, body, parts.length > 1 ? parts[0] : undefined, entry);
    if (last === '_mget') return this.mget(res, body, parts.length > 1 ? parts[0] : undefined);
    if (last === '_search') return this.search(res, parts[0]!, body);
    if (last === '_delete_by_query') {
      const i = this.indices.get(parts[0]!);
      let deleted = 0;
      for (const d of i?.docs.values() ?? []) if (d.source) (d.source = null), deleted++;
      return this.send(res, 200, { deleted, failures: [] });
    }
    if (parts[1] === '_doc' && parts[2] !== undefined && method === 'GET') {
      const d = this.indices.get(parts[0]!)?.docs.get(parts[2]);
      if (!d?.source) return this.send(res, 404, { _index: parts[0], _id: parts[2], found: false });
      return this.send(res, 200, { _index: parts[0], _id: parts[2], _version: d.version, found: true, _source: d.source });
    }
    if (parts.length === 1 && method === 'DELETE') {
      this.indices.delete(parts[0]!);
      return this.send(res, 200, { acknowledged: true });
    }
    this.send(res, 400, { error: { type: 'illegal_argument_exception', reason: `stub: unsupported ${method} ${url.pathname}` }, status: 400 });
  }

  private bulk(res: ServerResponse, body: string, defaultIndex: string | undefined, entry: { items?: number }): void {
    const lines = body.split('\n');
    if (lines[lines.length - 1] !== '') {
      return this.send(res, 400, { error: { type: 'illegal_argument_exception', reason: 'The bulk request must be terminated by a newline [\\n]' }, status: 400 });
    }
    const items: unknown[] = [];
    let errors = false;
    for (let i = 0; i < lines.length - 1; i++) {
      const line = lines[i]!;
      if (!line) continue;
      // Versions are int64: read them from the text, not through a lossy JSON number.
      const rawVersion = /"version"\s*:\s*"?(\d+)"?/.exec(line)?.[1];
      const action = JSON.parse(line) as Record<string, { _index?: string; _id?: string; version_type?: string }>;
      const op = Object.keys(action)[0]!;
      const meta = action[op]!;
      let source: Source | null = null;
      if (op !== 'delete') source = JSON.parse(lines[++i]!) as Source;
      const index = meta._index ?? defaultIndex ?? '';
      const id = String(meta._id);
      const result = this.apply(op, index, id, source, rawVersion === undefined ? undefined : BigInt(rawVersion), meta.version_type);
      if (result.status >= 300 && !(op === 'delete' && result.status === 404)) errors = true;
      items.push({ [op]: { _index: index, _id: id, ...result } });
    }
    entry.items = items.length;
    this.send(res, 200, { took: 1, errors, items });
  }

  private apply(op: string, index: string, id: string, source: Source | null, version: bigint | undefined, versionType: string | undefined): { status: number } & Record<string, unknown> {
    const r = this.rejectItems[0];
    if (r) {
      if (--r.n <= 0) this.rejectItems.shift();
      return { status: r.status, error: { type: r.status === 429 ? 'es_rejected_execution_exception' : 'unavailable_shards_exception', reason: 'injected rejection' } };
    }
    if (index !== index.toLowerCase() || !index) {
      return { status: 400, error: { type: 'invalid_index_name_exception', reason: `Invalid index name [${index}], must be lowercase` } };
    }
    if (this.poison?.(index, id, source)) {
      return { status: 400, error: { type: 'mapper_parsing_exception', reason: `failed to parse (injected) document [${id}]` } };
    }
    const idx = this.index(index);
    const cur = idx.docs.get(id);
    const external = versionType === 'external' || versionType === 'external_gte';
    if (external) {
      if (version === undefined) return { status: 400, error: { type: 'action_request_validation_exception', reason: 'version is missing' } };
      const conflict = cur && (versionType === 'external_gte' ? version < cur.version : version <= cur.version);
      if (conflict) {
        return {
          status: 409,
          error: {
            type: 'version_conflict_engine_exception',
            reason: `[${id}]: version conflict, current version [${cur!.version}] is higher or equal to the one provided [${version}]`,
          },
        };
      }
    }
    if (op === 'create' && cur?.source) return { status: 409, error: { type: 'version_conflict_engine_exception', reason: `[${id}]: document already exists` } };
    if (op === 'delete') {
      const found = !!cur?.source;
      idx.docs.set(id, { source: null, version: external ? version! : (cur?.version ?? 0n) + 1n, seqNo: this.seq++ });
      return found ? { status: 200, result: 'deleted', _version: version } : { status: 404, result: 'not_found', _version: version };
    }
    const meta = Object.keys(source ?? {}).find((f) => METADATA_FIELDS.has(f));
    if (meta) {
      return { status: 400, error: { type: 'mapper_parsing_exception', reason: `Field [${meta}] is a metadata field and cannot be added inside a document. Use the index API request parameters.` } };
    }
    // Dynamic mapping: the first type seen for a field is the field's type.
    for (const [f, v] of Object.entries(source ?? {})) {
      if (v === null) continue;
      const t = typeof v === 'number' ? (Number.isInteger(v) ? 'long' : 'double') : typeof v === 'boolean' ? 'boolean' : typeof v === 'string' ? 'text' : Array.isArray(v) ? 'array' : 'object';
      const mapped = idx.mapping.get(f);
      if (!mapped) idx.mapping.set(f, t);
      else if (mapped !== t && !(mapped === 'double' && t === 'long') && !(mapped === 'long' && t === 'double') && !(mapped === 'text' && (t === 'long' || t === 'double' || t === 'boolean'))) {
        return { status: 400, error: { type: 'mapper_parsing_exception', reason: `failed to parse field [${f}] of type [${mapped}] in document with id '${id}'` } };
      }
    }
    const created = !cur?.source;
    idx.docs.set(id, { source, version: external ? version! : (cur?.version ?? 0n) + 1n, seqNo: this.seq++ });
    return { status: created ? 201 : 200, result: created ? 'created' : 'updated', _version: external ? version : undefined };
  }

  private mget(res: ServerResponse, body: string, defaultIndex: string | undefined): void {
    const q = JSON.parse(body) as { docs?: Array<{ _index?: string; _id: string }>; ids?: string[] };
    const wanted = q.docs ?? (q.ids ?? []).map((_id) => ({ _index: defaultIndex, _id }));
    const docs = wanted.map(({ _index, _id }) => {
      const index = _index ?? defaultIndex ?? '';
      const d = this.indices.get(index)?.docs.get(_id);
      return d?.source ? { _index: index, _id, _version: d.version, found: true, _source: d.source } : { _index: index, _id, found: false };
    });
    this.send(res, 200, { docs });
  }

  private search(res: ServerResponse, index: string, body: string): void {
    const q = body ? (JSON.parse(body) as { query?: { term?: Record<string, unknown> }; size?: number }) : {};
    let hits = [...(this.indices.get(index)?.docs ?? [])].filter(([, d]) => d.source);
    const term = q.query?.term;
    if (term) {
      const [f, v] = Object.entries(term)[0]!;
      const want = typeof v === 'object' && v !== null && 'value' in v ? (v as { value: unknown }).value : v;
      hits = hits.filter(([, d]) => d.source![f] === want);
    }
    const size = q.size ?? 10;
    this.send(res, 200, {
      took: 1,
      hits: { total: { value: hits.length, relation: 'eq' }, hits: hits.slice(0, size).map(([id, d]) => ({ _index: index, _id: id, _version: d.version, _source: d.source })) },
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
