/**
 * The `manticore` sink: a full-text index in Manticore Search or Sphinx (2.2+), written over
 * SphinxQL (the MySQL protocol) to real-time (RT) indexes.
 *
 * - c/u/r become multi-row `REPLACE INTO idx (id, ...) VALUES (...), (...)`; d becomes
 *   `DELETE FROM idx WHERE id IN (...)`; t becomes `TRUNCATE RTINDEX idx`.
 * - Each batch is collapsed to the last event per document first (REPLACE and DELETE are
 *   whole-document overwrites, so the intermediate states would be overwritten anyway).
 * - Fencing: searchd has no conditional writes, so the sink applies events strictly in order
 *   and keeps its own high-water mark (the fence of the last applied event, and the last
 *   committed position) in a file under its state directory, written after the data. An
 *   event at or below the mark is skipped; `open()` returns the stored position so the
 *   runtime resumes after it. See docs/sinks/manticore.md for the exactly-once argument.
 * - Columns map to the index by name (DESCRIBE), or through `fields` / `attributes`.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { defineSink, ErrorCodes, once, PoisonEventError, renderTemplate, requireAfter, requireKey, TributaryError, type JsonValue, type Row, type SinkEvent } from '../../src/sdk/index.js';
import { docId } from './docid.js';
import { readMark, writeMark, type Mark } from './position.js';
import { attrType, connect, literal, name, ValueError, type AttrType, type Conn } from './sphinxql.js';
import { checkManticore } from './check.js';

const columnMap = z
  .union([z.array(z.string().min(1)), z.record(z.string(), z.string().min(1))])
  .optional();

export const ManticoreSinkConfig = z.object({
  url: z.string().default('mysql://127.0.0.1:9306').describe('SphinxQL listener (`listen = host:port:mysql41` in searchd.conf, 9306 by default).'),
  index: z.string().min(1).default('{table}').describe('RT index name template: {schema} {db} {table} {pipeline}. The index must exist (declared in the searchd config, or CREATE TABLE on Manticore).'),
  fields: columnMap.describe('Columns indexed as full-text fields: a list of names (same name in the index) or a map column → index field. Default: every row column whose name is a field of the index.'),
  attributes: columnMap.describe('Columns stored as attributes: a list or a map column → index attribute. Default: every row column whose name is an attribute of the index.'),
  id: z.enum(['auto', 'hash']).default('auto').describe('Document id: auto uses a single positive integer key as is and hashes other keys to 63 bits; hash always hashes.'),
  max_rows_per_statement: z.number().int().min(1).max(100_000).default(1000).describe('Rows per multi-row REPLACE (keep the statement under searchd\'s max_packet_size).'),
  timeout_ms: z.number().int().min(100).default(30_000).describe('Connect timeout.'),
});
export type ManticoreSinkConfig = z.infer<typeof ManticoreSinkConfig>;

/** How one row column lands in one index column. */
interface Target {
  column: string;
  target: string;
  type: AttrType;
}

interface IndexPlan {
  index: string;
  /** Index columns (without id), in REPLACE order, with their source column. */
  targets: Target[];
  header: string;
}

interface Doc {
  e: SinkEvent;
  id: bigint;
  row: Row | null; // null: delete
}

export default defineSink({
  type: 'manticore',
  description: 'A full-text index in Manticore Search or Sphinx over SphinxQL: multi-row REPLACE and DELETE into RT indexes, collapsed per document and fenced by a high-water mark kept next to the sink state.',
  config: ManticoreSinkConfig,
  check: checkManticore,
  create(config, ctx) {
    const markPath = join(ctx.stateDir, `manticore.${encodeURIComponent(ctx.sinkName)}.mark.json`);
    const plans = new Map<string, IndexPlan>();
    const warnedUnchanged = new Set<string>();
    let conn: Conn | undefined;
    let mark: Mark | null = null;
    let closed = false;
    const safeUrl = (() => {
      const u = new URL(config.url);
      u.password = '';
      return u.toString();
    })();

    async function connection(): Promise<Conn> {
      if (closed) throw new TributaryError(ErrorCodes.SINK_CLOSED, 'manticore sink is closed', { retryable: true });
      if (conn) return conn;
      try {
        conn = await connect(config.url, config.timeout_ms);
      } catch (err) {
        throw new TributaryError(ErrorCodes.SINK_TARGET, `cannot connect to searchd at ${safeUrl}: ${(err as Error).message}`, {
          retryable: true,
          cause: err,
          fix: 'check that searchd runs with a mysql41 listener at the configured url',
        });
      }
      const c = conn;
      c.on('error', () => {
        if (conn === c) conn = undefined;
      });
      return c;
    }

    /** Run one statement; a broken connection is dropped (the next attempt reconnects). */
    async function exec(sql: string, signal: AbortSignal): Promise<unknown> {
      if (signal.aborted) throw new TributaryError(ErrorCodes.SINK_CLOSED, 'write aborted', { retryable: true });
      const c = await connection();
      const onAbort = () => c.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        const [r] = await c.query(sql);
        return r;
      } catch (err) {
        const e = err as { code?: string; fatal?: boolean; message: string };
        if (e.fatal || signal.aborted) {
          if (conn === c) conn = undefined;
          c.destroy();
          throw new TributaryError(ErrorCodes.SINK_TARGET, `searchd connection failed: ${e.message}`, { retryable: true, cause: err });
        }
        // A statement searchd refused (the connection is fine). Not retryable as such: the
        // runtime retries a few times, then bisects and dead-letters the event that still fails.
        throw new TributaryError(ErrorCodes.SINK_REJECTED, `searchd refused "${sql.slice(0, 60)}...": ${e.message}`, { cause: err, fix: 'check the index schema against the mapping (fields, attributes)' });
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    }

    function pick(map: ManticoreSinkConfig['fields'], col: string, targetOk: (t: string) => boolean): string | undefined {
      if (!map) return targetOk(col) ? col : undefined;
      if (Array.isArray(map)) return map.includes(col) ? col : undefined;
      return map[col];
    }

    /** DESCRIBE the index once and decide which row column goes where. */
    async function planFor(e: SinkEvent, row: Row | null, signal: AbortSignal): Promise<IndexPlan> {
      const index = name(renderTemplate(config.index, e.event), 'index');
      let p = plans.get(index);
      if (p) return p;
      let desc: Array<{ Field: string; Type: string }>;
      try {
        desc = (await exec(`DESCRIBE ${index}`, signal)) as Array<{ Field: string; Type: string }>;
      } catch (err) {
        if ((err as TributaryError).retryable) throw err;
        throw new TributaryError(ErrorCodes.SINK_CONFIG, `searchd has no index ${index} (for ${e.table})`, {
          retryable: true, // retried loudly until the index exists, rather than dead-lettering every event
          cause: err,
          fix: `declare an RT index ${index} in searchd.conf (rt_field / rt_attr_*) or CREATE TABLE ${index} on Manticore, or change the sink's index template`,
        });
      }
      const types = new Map(desc.filter((d) => d.Field !== 'id').map((d) => [d.Field, attrType(d.Type)]));
      const columns = new Set<string>([...Object.keys(row ?? {}), ...Object.keys(e.event.key ?? {})]);
      if (config.fields && !Array.isArray(config.fields)) for (const c of Object.keys(config.fields)) columns.add(c);
      if (config.attributes && !Array.isArray(config.attributes)) for (const c of Object.keys(config.attributes)) columns.add(c);
      for (const c of Array.isArray(config.fields) ? config.fields : []) columns.add(c);
      for (const c of Array.isArray(config.attributes) ? config.attributes : []) columns.add(c);
      const targets: Target[] = [];
      const used = new Set<string>();
      for (const col of columns) {
        const f = pick(config.fields, col, (t) => types.get(t) === 'field');
        const a = pick(config.attributes, col, (t) => types.has(t) && types.get(t) !== 'field');
        for (const t of [f, a]) {
          if (t === undefined || used.has(t)) continue;
          if (!types.has(t)) {
            throw new TributaryError(ErrorCodes.SINK_CONFIG, `index ${index} has no column ${t} (mapped from ${col})`, {
              retryable: true,
              fix: `add rt_field/rt_attr_* ${t} to index ${index}, or fix the sink's fields/attributes mapping`,
            });
          }
          used.add(t);
          targets.push({ column: col, target: t, type: types.get(t)! });
        }
      }
      p = { index, targets, header: `REPLACE INTO ${index} (id${targets.map((t) => `, ${t.target}`).join('')}) VALUES ` };
      plans.set(index, p);
      ctx.logger.info({ index, columns: targets.map((t) => `${t.column}→${t.target}:${t.type}`) }, 'manticore: index mapping');
      return p;
    }

    function values(d: Doc, p: IndexPlan): string {
      let s = `(${d.id}`;
      for (const t of p.targets) {
        try {
          s += ', ' + literal(d.row![t.column] as JsonValue | undefined, t.type);
        } catch (err) {
          if (!(err instanceof ValueError)) throw err;
          throw new PoisonEventError(`event at ${d.e.position}#${d.e.index} of ${d.e.table}: column ${t.column} → ${p.index}.${t.target} (${t.type}): ${err.message}`);
        }
      }
      return s + ')';
    }

    /** Apply collapsed documents: multi-row REPLACEs, then DELETEs, per index. */
    async function apply(docs: Map<string, { p: IndexPlan; d: Doc }>, signal: AbortSignal): Promise<void> {
      const byIndex = new Map<IndexPlan, { rep: string[]; del: bigint[] }>();
      // Build every statement before sending any, so a poison value fails the batch cleanly.
      for (const { p, d } of docs.values()) {
        let g = byIndex.get(p);
        if (!g) byIndex.set(p, (g = { rep: [], del: [] }));
        if (d.row) g.rep.push(values(d, p));
        else g.del.push(d.id);
      }
      for (const [p, g] of byIndex) {
        for (let i = 0; i < g.rep.length; i += config.max_rows_per_statement) {
          await exec(p.header + g.rep.slice(i, i + config.max_rows_per_statement).join(', '), signal);
        }
        for (let i = 0; i < g.del.length; i += 10_000) {
          await exec(`DELETE FROM ${p.index} WHERE id IN (${g.del.slice(i, i + 10_000).join(',')})`, signal);
        }
      }
      docs.clear();
    }

    return {
      async open(checkpoint) {
        mark = await readMark(markPath);
        await exec('SHOW TABLES', ctx.signal);
        ctx.logger.info({ url: safeUrl, position: mark?.position ?? null, runtimePosition: checkpoint.position }, 'manticore: connected');
        return { position: mark?.position ?? null };
      },

      async write(events, wctx) {
        const signal = AbortSignal.any([ctx.signal, wctx.signal]);
        const docs = new Map<string, { p: IndexPlan; d: Doc }>();
        let applied: SinkEvent | undefined;
        for (const e of events) {
          // At or below the mark: already applied before a crash or by an earlier delivery.
          if (mark && e.fence <= mark.fence) continue;
          applied = e;
          const ev = e.event;
          if (ev.op === 't') {
            await apply(docs, signal);
            const index = name(renderTemplate(config.index, ev), 'index');
            await exec(`TRUNCATE RTINDEX ${index}`, signal);
            continue;
          }
          const key = requireKey(e, 'index documents are keyed by it');
          const row = ev.op === 'd' ? null : requireAfter(e);
          if (ev.source.unchanged?.length && !warnedUnchanged.has(e.table)) {
            warnedUnchanged.add(e.table);
            ctx.logger.warn({ table: e.table, columns: ev.source.unchanged }, 'manticore: updates without unchanged TOAST values; those columns are written empty. Set REPLICA IDENTITY FULL on the table.');
          }
          const p = await planFor(e, row, signal);
          const id = docId(key, config.id);
          const k = `${p.index}\u0000${id}`;
          docs.delete(k); // keep insertion order = order of last writes
          docs.set(k, { p, d: { e, id, row } });
        }
        await apply(docs, signal);
        if (applied || wctx.commit !== null) {
          // After the data, never before: a crash in between only replays the batch.
          const next: Mark = { position: wctx.commit ?? mark?.position ?? null, fence: applied && (!mark || applied.fence > mark.fence) ? applied.fence : (mark?.fence ?? '') };
          await writeMark(markPath, next);
          mark = next;
        }
      },

      close: once(async () => {
        closed = true;
        const c = conn;
        conn = undefined;
        // end() waits for the in-flight query; destroy() if searchd does not answer.
        if (c) await Promise.race([c.end().catch(() => c.destroy()), new Promise((r) => setTimeout(r, 2000).unref())]).then(() => c.destroy());
      }),
    };
  },
});
