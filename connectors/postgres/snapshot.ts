import pg from 'pg';
import type { JsonValue } from '../../src/core/event.js';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { StringRows, chunksBetween, type ChunkBounds, type ChunkPlanner, type SnapshotEventBuilder, type SnapshotReader, type SnapshotSupport, type SnapshotTable } from '../../src/snapshot/types.js';
import { snapshotEventBuilder } from '../../src/snapshot/envelope.js';
import { assertSafeFilter, filterRejected } from '../../src/snapshot/filter.js';
import { ident, loadTypes, resolveTables } from './catalog.js';
import { privilegeError } from './privileges.js';
import { SESSION_OPTIONS } from './replication.js';
import { CopyReader } from './snapshot-copy.js';
import type { PgTypeInfo } from './values.js';
import type { TxnSnapshot } from '../../src/snapshot/visibility.js';

/** The logical-message prefix of snapshot watermarks. */
export const WATERMARK_PREFIX = 'tributary_wm';

/**
 * `pg_current_snapshot()` text (`xmin:xmax:xip,…`, 64-bit xids with their epoch) as the
 * 32-bit xids pgoutput's Begin carries (src/snapshot/visibility.ts compares them modulo 2^32).
 */
export function parsePgSnapshot(text: string): TxnSnapshot {
  const [xmin, xmax, xip] = text.split(':');
  const x32 = (s: string) => Number(BigInt(s) & 0xffffffffn);
  if (xmin === undefined || xmax === undefined) throw new TributaryError(ErrorCodes.PG_PROTOCOL, `unexpected snapshot text "${text}" in a watermark`, { fix: 'this is a bug; report it with the server version' });
  return { xmin: x32(xmin), xmax: x32(xmax), xip: xip ? xip.split(',').map(x32) : [] };
}

/** Raw text for every type: values are decoded by our own decoders, as in streaming. */
const RAW_TEXT = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

/**
 * Run `fn` on `c` inside a READ ONLY transaction when a user filter is part of its SQL (and
 * plainly otherwise: an unfiltered probe needs no extra round trips). Together with the
 * extended protocol ({@link EXTENDED}), a filter cannot reach a second statement or write.
 */
async function filtered<T>(c: pg.Client, where: string | null, fn: () => Promise<T>): Promise<T> {
  if (where === null) return fn();
  assertSafeFilter(where, 'postgres');
  await c.query('BEGIN READ ONLY');
  try {
    const r = await fn();
    await c.query('COMMIT');
    return r;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Send a query over the extended protocol even without parameters (pg uses the simple one
 * then, which runs every statement of a `;`-separated text): Parse takes exactly one.
 */
const EXTENDED = { queryMode: 'extended' } as Partial<pg.QueryConfig>;

function qname(name: string): string {
  const [schema, table] = name.split('.');
  return `${ident(schema!)}.${ident(table!)}`;
}

/**
 * A "permission denied" as TRB2021 naming the GRANT (not retryable, so the snapshot stops with
 * it instead of retrying for ever); any other error as it is.
 */
function denied(c: pg.Client, err: unknown, doing: string, table?: string): unknown {
  const [schema, name] = table ? (table.split('.') as [string, string]) : [];
  return privilegeError(err, { role: c.user, doing, table: table ? { schema: schema!, table: name! } : undefined }) ?? err;
}

/** Run `fn` with {@link denied} errors. */
async function coded<T>(c: pg.Client, doing: string, table: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw denied(c, err, doing, table);
  }
}

/**
 * Snapshot support for Postgres: primary-key (or configured key) chunks by keyset
 * pagination with row-value comparison, `ctid` block ranges for tables with no key, and
 * watermarks written with transactional `pg_logical_emit_message`.
 */
export class PgSnapshotSupport implements SnapshotSupport {
  constructor(
    private readonly o: {
      url: string;
      include: readonly string[];
      exclude: readonly string[] | undefined;
      /** When given, only tables it publishes are snapshotted: what is read is what is streamed. */
      publication?: string;
      keyColumns: Record<string, string[]> | undefined;
      types: () => ReadonlyMap<number, PgTypeInfo>;
    },
  ) {}

  private async client(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.o.url, options: SESSION_OPTIONS, application_name: 'tributary-snapshot' } as pg.ClientConfig);
    c.on('error', () => undefined);
    await coded(c, 'cannot connect to Postgres for a snapshot', undefined, () => c.connect());
    return c;
  }

  async tables(only?: string[]): Promise<SnapshotTable[]> {
    const c = await this.client();
    try {
      // The publication publishes through partition roots and leaves keyless tables out
      // (TableCapture): snapshotting anything else would read rows whose changes never stream,
      // or a partition twice (once through its parent).
      let all = await resolveTables(c, this.o.include, this.o.exclude);
      if (this.o.publication !== undefined) {
        const published = await c.query<{ t: string }>("SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1", [this.o.publication]);
        const names = new Set(published.rows.map((r) => r.t));
        all = all.filter((t) => names.has(`${t.schema}.${t.table}`));
      }
      if (only) {
        const want = new Set(only.map((t) => (t.includes('.') ? t : `public.${t}`)));
        for (const t of want) {
          if (!all.some((x) => `${x.schema}.${x.table}` === t)) {
            throw new TributaryError(ErrorCodes.SNAPSHOT_TABLE_UNKNOWN, `table ${t} is not captured by this pipeline`, {
              fix: 'name a table the pipeline captures (schema.table, matched by source.tables; a table without a replica identity is left out, TRB2020; a partition is read through its partitioned table)',
            });
          }
        }
        all = all.filter((x) => want.has(`${x.schema}.${x.table}`));
      }
      const out: SnapshotTable[] = [];
      for (const t of all) {
        const name = `${t.schema}.${t.table}`;
        // reltuples is -1 until the table is first VACUUMed or ANALYZEd: no estimate then.
        const est = await c.query<{ n: string | null }>('SELECT CASE WHEN reltuples < 0 THEN NULL ELSE reltuples::bigint::text END AS n FROM pg_class WHERE oid = $1', [t.oid]);
        const estimate = est.rows[0]?.n == null ? null : Number(est.rows[0].n);
        const configured = this.o.keyColumns?.[name];
        const key = configured ?? t.primaryKey;
        const keyKind = configured ? 'configured' : t.primaryKey.length ? 'pk' : 'ctid';
        if (keyKind !== 'ctid') {
          const types = await c.query<{ attname: string; t: string }>(
            'SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped',
            [t.oid],
          );
          const byName = new Map(types.rows.map((r) => [r.attname, r.t]));
          const missing = key.filter((k) => !byName.has(k));
          if (missing.length) {
            throw new TributaryError(ErrorCodes.SNAPSHOT_KEY_COLUMNS, `key_columns for ${name} name missing columns: ${missing.join(', ')}`, { fix: `use existing columns of ${name}` });
          }
          out.push({ name, key, keyKind, keyTypes: key.map((k) => byName.get(k)!), estimate });
        } else out.push({ name, key: [], keyKind, estimate });
      }
      return out;
    } finally {
      await c.end();
    }
  }

  async plan(table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]> {
    const c = await this.client();
    try {
      if (table.keyKind === 'ctid') {
        // Physical block ranges: every row lives in exactly one block, so the ranges cover
        // the table with no key at all. Rows per block come from the statistics.
        const r = await c.query<{ pages: string; tuples: string }>(
          `SELECT GREATEST(pg_relation_size(c.oid) / current_setting('block_size')::int, 1)::text AS pages, GREATEST(c.reltuples, 0)::bigint::text AS tuples FROM pg_class c WHERE c.oid = $1::regclass`,
          [qname(table.name)],
        );
        const pages = Number(r.rows[0]!.pages);
        const tuples = Math.max(Number(r.rows[0]!.tuples), 1);
        const perChunk = Math.max(1, Math.floor(pages / Math.max(1, Math.ceil(tuples / chunkRows))));
        const chunks: ChunkBounds[] = [];
        for (let b = 0; b < pages; b += perChunk) chunks.push({ lo: [b], hi: b + perChunk >= pages ? null : [b + perChunk] });
        return chunks.length ? chunks : [{ lo: [0], hi: null }];
      }
      return await filtered(c, where, () => keyedPlan(c, table, chunkRows, where));
    } catch (err) {
      throw denied(c, err, `cannot plan the snapshot of ${table.name}`, table.name);
    } finally {
      await c.end();
    }
  }

  async checkFilter(table: SnapshotTable, where: string): Promise<void> {
    assertSafeFilter(where, 'postgres');
    const c = await this.client();
    try {
      await c.query('BEGIN READ ONLY');
      // Planned, not run: a syntax error, an unknown column or a type mismatch fails here.
      await c.query({ text: `EXPLAIN SELECT 1 FROM ${qname(table.name)} WHERE (${where})`, ...EXTENDED });
    } catch (err) {
      // A server error (it has a SQLSTATE) is the filter's fault; anything else is not.
      if (typeof (err as { code?: unknown }).code === 'string' && /^[0-9A-Z]{5}$/.test((err as { code: string }).code)) throw filterRejected(table.name, err);
      throw err;
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    }
  }

  async planner(): Promise<ChunkPlanner> {
    const c = await this.client();
    const url = this.o.url;
    let closed: Promise<void> | undefined;
    return {
      async next(table, lo, chunkRows, where) {
        return nextBound(table, lo, chunkRows, where).catch((err: unknown) => {
          throw readError(err, table.name, url);
        });
      },
      close() {
        return (closed ??= c.end().catch(() => undefined));
      },
    };
    async function nextBound(table: SnapshotTable, lo: JsonValue[] | null, chunkRows: number, where: string | null): Promise<JsonValue[] | null> {
      const cols = table.key.map(ident).join(', ');
      const kt = table.keyTypes!;
      const conds: string[] = [];
      if (lo) conds.push(`(${cols}) > (${lo.map((_, i) => `$${i + 1}::${kt[i]}`).join(', ')})`);
      if (where) conds.push(`(${where})`);
      // An index probe: the chunkRows-th key after lo, and whether any row follows it (a
      // chunk ending at the very last row takes the open end instead, so no empty chunk
      // trails behind it). A filter runs inside READ ONLY, as one extended-protocol statement.
      const r = await filtered(c, where, () =>
        c.query({
          text: `SELECT ${cols} FROM ${qname(table.name)}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''} ORDER BY ${cols} LIMIT 2 OFFSET ${Math.floor(chunkRows) - 1}`,
          values: lo ? lo.map((v) => String(v)) : [],
          rowMode: 'array',
          types: RAW_TEXT,
          ...EXTENDED,
        }),
      );
      return r.rows.length === 2 ? (r.rows[0] as string[]) : null;
    }
  }

  /** Type catalog for decoders: the source's, or (in a `--worker` process) our own. */
  private ownTypes?: Promise<ReadonlyMap<number, PgTypeInfo>>;

  async reader(): Promise<SnapshotReader> {
    const c = await this.client();
    const url = this.o.url;
    let typeMap = this.o.types();
    if (!typeMap.size) typeMap = await (this.ownTypes ??= loadTypes(c));
    const copy = new CopyReader(c, () => typeMap);
    let closed: Promise<void> | undefined;
    return {
      async watermark(id, mark) {
        // Each watermark says which transactions were visible before it committed (see
        // src/snapshot/visibility.ts): the low one a snapshot taken in its own transaction,
        // the high one the snapshot the chunk was just read in.
        const read = mark === 'high' ? copy.takeSnapshot() : null;
        await c.query(
          `SELECT pg_logical_emit_message(true, $1, json_build_object('id', $2::text, 'mark', $3::text, 'snapshot', ${mark === 'low' ? 'pg_current_snapshot()::text' : '$4::text'})::text)`,
          mark === 'low' ? [WATERMARK_PREFIX, id, mark] : [WATERMARK_PREFIX, id, mark, read],
        );
      },
      async read(table, chunk, where) {
        const out = new StringRows();
        await copy.read(table, qname(table.name), chunkConditions(c, table, chunk, where), out).catch((err: unknown) => {
          throw readError(err, table.name, url);
        });
        return out.out;
      },
      readInto(table, chunk, where, out) {
        return copy.read(table, qname(table.name), chunkConditions(c, table, chunk, where), out).catch((err: unknown) => {
          throw readError(err, table.name, url);
        });
      },
      close() {
        return (closed ??= c.end().catch(() => undefined));
      },
    };
  }
}

/** Every chunk of a keyed table up front (see `plan`); `where` is already vetted. */
async function keyedPlan(c: pg.Client, table: SnapshotTable, chunkRows: number, where: string | null): Promise<ChunkBounds[]> {
  const cols = table.key.map(ident).join(', ');
  // Every chunkRows-th key, numbered on the server: only the boundaries travel.
  const r = await c.query({
    text: `SELECT ${cols} FROM (SELECT ${cols}, row_number() OVER (ORDER BY ${cols}) AS rn FROM ${qname(table.name)}${where ? ` WHERE (${where})` : ''}) s WHERE rn % $1 = 0 ORDER BY ${cols}`,
    values: [chunkRows],
    rowMode: 'array',
    types: RAW_TEXT,
  });
  const bounds = r.rows as string[][];
  if (bounds.length) {
    // When the row count is a multiple of chunkRows the open-ended last chunk would be
    // empty; fold it into the one before, so the final chunk (which carries the
    // snapshot's "last" row) has rows.
    const kt = table.keyTypes!;
    const lastB = bounds[bounds.length - 1]!;
    const more = await c.query(
      `SELECT 1 FROM ${qname(table.name)} WHERE (${cols}) > (${lastB.map((_, i) => `$${i + 1}::${kt[i]}`).join(', ')})${where ? ` AND (${where})` : ''} LIMIT 1`,
      lastB,
    );
    if (!more.rowCount) bounds.pop();
  }
  return chunksBetween(bounds);
}

/**
 * "permission denied" (42501) on a captured table as a coded error naming the grant; the
 * coordinator marks the snapshot failed and tries again with backoff until it is granted.
 */
function readError(err: unknown, table: string, url: string): unknown {
  if ((err as { code?: unknown }).code !== '42501') return err;
  let user = 'the source user';
  try {
    const u = decodeURIComponent(new URL(url).username);
    if (u) user = ident(u);
  } catch {
    /* a URL we cannot parse here: name no user */
  }
  return new TributaryError(ErrorCodes.SNAPSHOT_PRIVILEGE, `cannot read ${table} for the snapshot: ${(err as Error).message}`, {
    fix: `GRANT SELECT ON ${qname(table)} TO ${user};`,
    cause: err,
  });
}

/**
 * The WHERE conditions of a chunk, literals inlined (COPY takes no parameters): a ctid
 * block range, or the key range by row-value comparison with each boundary cast back to its
 * column's type.
 */
function chunkConditions(c: pg.Client, table: SnapshotTable, chunk: ChunkBounds, where: string | null): string[] {
  const conds: string[] = [];
  if (table.keyKind === 'ctid') {
    const block = (v: JsonValue | undefined) => {
      if (!Number.isSafeInteger(v)) throw new TributaryError(ErrorCodes.SNAPSHOT_BOUND, `ctid chunk bound ${JSON.stringify(v)} is not a block number`, { fix: 'cancel the snapshot and start it again' });
      return `'(${v as number},0)'::tid`;
    };
    conds.push(`ctid >= ${block(chunk.lo![0])}`);
    if (chunk.hi) conds.push(`ctid < ${block(chunk.hi[0])}`);
  } else {
    const kt = table.keyTypes!;
    const cols = `(${table.key.map(ident).join(', ')})`;
    const tuple = (vals: JsonValue[]) => `(${vals.map((v, i) => `${c.escapeLiteral(String(v))}::${kt[i]}`).join(', ')})`;
    if (chunk.lo) conds.push(`${cols} > ${tuple(chunk.lo)}`);
    if (chunk.hi) conds.push(`${cols} <= ${tuple(chunk.hi)}`);
  }
  if (where) {
    // Checked when the snapshot was accepted; again here, since chunks also come back from
    // the state store and from Redis job queues.
    assertSafeFilter(where, 'postgres');
    conds.push(`(${where})`);
  }
  return conds;
}

/** The envelopes of Postgres snapshot rows: the watermark's `lsn`, the read time. */
export function pgSnapshotEvent(pipeline: string, db: string): SnapshotEventBuilder {
  return snapshotEventBuilder((table, snapshot, at, now) => {
    const [schema, name] = table.name.split('.') as [string, string];
    return { connector: 'postgresql', name: pipeline, db, schema, table: name, ts_ms: now, snapshot, lsn: at.lsn };
  });
}
