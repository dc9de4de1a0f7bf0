/**
 * The public sink SDK. Built-in sinks use exactly this API, as third-party sinks do.
 *
 * ```ts
 * import { z } from 'zod';
 * import { defineSink } from 'tributary/sdk';
 *
 * export default defineSink({
 *   type: 'my-sink',
 *   config: z.object({ url: z.string().describe('Where to write') }),
 *   create(config, ctx) {
 *     return {
 *       async write(events) { ... },   // resolve only when the batch is durable
 *       async close() { ... },         // idempotent
 *     };
 *   },
 * });
 * ```
 */
import { access, constants, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { ChangeEvent } from '../core/event.js';

export type { ChangeEvent, Row, JsonValue, Op, SourceInfo } from '../core/event.js';
import { ErrorCodes, TributaryError } from '../core/errors.js';
export { PoisonEventError, TributaryError, ErrorCodes } from '../core/errors.js';
/** Resolves after `ms`, or at once when the signal aborts (no listener is left behind). */
export { sleep, backoffDelay } from '../core/backoff.js';
export { requireKey, requireAfter, fillUnchanged } from './keyed.js';

/** One change event as a sink receives it, with the data a sink needs to be idempotent. */
export interface SinkEvent {
  /** The envelope (read-only: it is shared by every sink of the pipeline). */
  readonly event: ChangeEvent;
  /** `schema.table` (Postgres) or `db.table` (MySQL). */
  readonly table: string;
  /** Serialized position of the source transaction that holds this event. */
  readonly position: string;
  /** Index of this event inside its transaction, from 0. */
  readonly index: number;
  /**
   * A fixed-width string that orders every event of the pipeline: compare two fences with
   * plain string comparison. Keyed sinks store it next to the data and refuse to apply an
   * event whose fence is not greater than the stored one, so a replay never regresses state.
   */
  readonly fence: string;
  /**
   * An integer that orders every event of the pipeline exactly as `fence` does:
   * `(position ordinal << 32) | index`, where the ordinal is the source's numeric position of
   * the transaction (Postgres: its commit LSN; MySQL: binlog file sequence × 2^30 + offset).
   * Strictly increasing over all events, in stream order, whatever the transaction size;
   * snapshot rows are events of the high watermark's transaction, so they order against
   * streamed changes of the same key as the snapshot algorithm requires.
   *
   * It is wider than 64 bits. A target whose versions are signed 64-bit integers
   * (Elasticsearch external versions, a ClickHouse `UInt64` column) uses {@link int64Version}.
   */
  readonly version: bigint;
  /** The envelope as a JSON line, serialized once per pipeline and shared by all sinks. */
  readonly json: string;
  /**
   * The UTF-8 length of `json` when it is known without encoding it (the source produced the
   * envelope as bytes, as the built-in sources do); undefined otherwise.
   */
  readonly jsonByteLength?: number;
  /**
   * Write `json` as UTF-8 into `target` at `offset` and return the bytes written. `target`
   * needs room for `jsonByteLength` bytes, or for `3 × json.length` when that is undefined.
   * When the source produced bytes they are copied as they are and no string is ever made,
   * which is what a sink that writes lines (jsonl) wants. Optional: events built by hand
   * (tests, other runtimes) may lack it.
   */
  writeJson?(target: Buffer, offset: number): number;
}

/** Counters and gauges a sink may publish; they appear on `/metrics` with the sink's labels. */
export interface SinkMetrics {
  inc(name: string, value?: number, labels?: Record<string, string>): void;
  set(name: string, value: number, labels?: Record<string, string>): void;
}

/** What `create` receives besides the validated config. */
export interface SinkContext {
  /** A pino logger bound to the pipeline and sink names. Never log per event. */
  logger: Logger;
  metrics: SinkMetrics;
  /** Aborted when the pipeline stops; long writes should give up promptly. */
  signal: AbortSignal;
  pipeline: string;
  sinkName: string;
  /** A directory the sink may use for its own files (created on demand). */
  stateDir: string;
}

/** What `write` receives besides the events. */
export interface WriteContext {
  signal: AbortSignal;
  /**
   * The transaction position this batch completes, or null when the batch ends inside a
   * transaction (a huge transaction is delivered in several batches). A sink that stores its
   * position in the target, in the same transaction as the data, stores this value.
   */
  commit: string | null;
}

/** The checkpoint the runtime holds for a sink. */
export interface SinkCheckpoint {
  /** The last transaction position durable in the sink, or null for a new sink. */
  position: string | null;
  /** Opaque state returned by the sink's `checkpoint()` with that position. */
  state: unknown;
}

/** A live sink instance. */
export interface SinkInstance {
  /**
   * Connect and recover. Receives the checkpoint the runtime holds. A sink that keeps its own
   * position in the target returns it, and the runtime resumes from whichever is newer
   * (so a write that landed just before a crash is not applied twice).
   */
  open?(checkpoint: SinkCheckpoint): Promise<{ position: string | null } | void>;
  /**
   * Write a batch, in order. Resolve only when the batch is durable in the target; except
   * that a batch with `ctx.commit === null` ends inside a transaction and no checkpoint
   * follows it, so it may be made durable later, by the time `checkpoint()` resolves for the
   * commit that completes the transaction (the jsonl sink saves those fsyncs so).
   * The same events may be delivered again after a crash: a write must be idempotent.
   * Throw `PoisonEventError` for an event that can never be accepted.
   */
  write(events: readonly SinkEvent[], ctx: WriteContext): Promise<void>;
  /**
   * Called after every write up to `position` resolved, right before the runtime persists
   * `position` for this sink. Whatever it returns is persisted with it and handed back to
   * `open` after a restart (the jsonl sink returns its file offset).
   */
  checkpoint?(position: string): Promise<unknown> | unknown;
  /** Release everything. Must be idempotent: the runtime may call it more than once. */
  close(): Promise<void>;
}

/** A problem a sink's preflight found: what is wrong, and what fixes it. */
export interface SinkProblem {
  message: string;
  fix: string;
}

/** What `check` receives besides the validated config. */
export interface SinkCheckContext {
  /** A logger; `validate` silences it. */
  logger: Logger;
  /** Aborted when `validate` stops waiting for this sink (after 10 s). */
  signal: AbortSignal;
  pipeline: string;
  sinkName: string;
}

/** A sink plugin: its type name, its config schema (validation, type and docs), its factory. */
export interface SinkDefinition<S extends z.ZodObject = z.ZodObject> {
  type: string;
  /** One paragraph for the generated configuration reference. */
  description?: string;
  config: S;
  /**
   * Batch sizes this sink works best with, used when the sink's YAML block sets no `batch`
   * (a column store wants fewer, larger inserts than a cache does).
   */
  batch?: { max_events?: number; max_bytes?: number; max_wait_ms?: number };
  /**
   * Config keys that hold file or directory paths (jsonl's `path`). The runtime makes a
   * relative one absolute against the config file's directory before `create` sees it, so a
   * config means the same files whatever directory `tributary` runs in.
   */
  paths?: readonly string[];
  create(config: z.infer<S>, ctx: SinkContext): SinkInstance | Promise<SinkInstance>;
  /**
   * Optional preflight, run by `tributary validate --check-source` for every sink of every
   * pipeline before anything runs: is the target reachable, does it accept the credentials,
   * can the sink write what it will write (a directory it may create files in, privileges,
   * a schema it can use)? Return every problem found, each with its fix (an empty list when
   * all is well), so one run reports them all. It must change nothing in the target: no
   * tables or files created, no data written. A throw counts as one problem with its message;
   * so does not settling before `ctx.signal` aborts.
   */
  check?(config: z.infer<S>, ctx: SinkCheckContext): Promise<SinkProblem[]>;
}

/** Declare a sink plugin. The default export of a plugin module must be the result. */
export function defineSink<S extends z.ZodObject>(def: SinkDefinition<S>): SinkDefinition<S> {
  if (!def || typeof def.type !== 'string' || !def.config || typeof def.create !== 'function') {
    throw new TypeError('defineSink needs { type: string, config: zod object schema, create(config, ctx) }');
  }
  return def;
}

/**
 * Returns a close function that runs `fn` once, however often it is called, and returns the
 * same promise every time: what every sink's `close()` should be.
 */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

/**
 * Wait for `inflight` at most `ms`; true when it settled (resolved or rejected) in time. For a
 * `close()` that lets the write in flight finish for a grace period before cutting it off.
 */
export async function settledWithin(inflight: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([inflight.then(() => true, () => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return done;
}

/**
 * The preflight of a sink that writes a file: the problem, or null when `path` can be written
 * (an existing writable file, or a writable directory on the way to it, where the missing
 * directories would be created). Creates nothing.
 */
export async function checkWritableFile(path: string): Promise<SinkProblem | null> {
  const target = resolve(path);
  try {
    const st = await stat(target);
    if (!st.isFile()) return { message: `${target} exists and is not a file`, fix: 'point `path` at a file' };
    await access(target, constants.W_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EROFS') return { message: `${target} is not writable (${code})`, fix: 'make it writable for this user, or choose another `path`' };
    if (code !== 'ENOENT') return { message: `${target} cannot be written: ${code ?? (err as Error).message}`, fix: 'choose a `path` inside a writable directory' };
  }
  // The file does not exist yet: the nearest existing ancestor must be a writable directory.
  for (let dir = dirname(target); ; dir = dirname(dir)) {
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) return { message: `${dir} is not a directory, so ${target} cannot be created`, fix: 'choose a `path` inside a directory' };
      await access(dir, constants.W_OK | constants.X_OK);
      return null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && dir !== dirname(dir)) continue;
      if (code === 'ENOTDIR') return { message: `a part of ${dirname(target)} is a file, so ${target} cannot be created`, fix: 'choose a `path` inside a directory' };
      return { message: `${target} cannot be created in ${dir} (${code ?? (err as Error).message})`, fix: 'make the directory writable for this user, or choose another `path`' };
    }
  }
}

/** Render a key/table template such as `{schema}.{table}:{key}`. */
export function renderTemplate(template: string, ev: ChangeEvent, keySeparator = ':'): string {
  return template.replace(/\{(\w+)\}/g, (m, name: string) => {
    switch (name) {
      case 'schema':
        return ev.source.schema ?? ev.source.db;
      case 'db':
        return ev.source.db;
      case 'table':
        return ev.source.table;
      case 'key':
        return ev.key ? Object.values(ev.key).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(keySeparator) : '';
      case 'pipeline':
        return ev.source.name;
      default:
        return m;
    }
  });
}

/** Largest position ordinal {@link int64Version} can encode: 2^47 − 1 (Postgres: 128 TiB of WAL). */
const INT64_MAX_ORDINAL = (1n << 47n) - 1n;
/** Events of one transaction that get versions of their own in {@link int64Version}. */
const INT64_INDEX_SLOTS = 0xffff;

/**
 * {@link SinkEvent.version} narrowed to a signed 64-bit integer, for targets that store a
 * version as int64 (Elasticsearch `version_type=external`, ClickHouse `ReplacingMergeTree`
 * with a `UInt64` version): `(ordinal << 16) | min(index, 65535)`.
 *
 * Events of different transactions always get different versions, in order. Inside one
 * transaction the first 65,535 events do too; every later event of that transaction gets the
 * same version as the 65,535th, and `tie` is true for them. A target must then let an equal
 * version replace the stored one, and apply them in order: Elasticsearch with
 * `version_type=external_gte`, ClickHouse by inserting them in order (of equal versions it
 * keeps the last inserted); within a batch, collapse to the last event per key first.
 * Why that loses nothing: an equal version only ever comes from the same transaction, a
 * transaction is delivered in order and, after a crash, again from its start, so the last
 * event of a key in it is applied last; an older transaction has a lower version and is
 * refused. (While such a transaction is replayed, a key may show an earlier value of that
 * same transaction until its last event is applied again.)
 *
 * Values for index < 65,535 are the ones earlier versions of tributary wrote, so existing
 * indexes and tables keep ordering correctly. Throws TRB3016 for a position beyond 2^47
 * rather than reuse a version.
 */
export function int64Version(e: Pick<SinkEvent, 'version' | 'index' | 'position'>): { version: bigint; tie: boolean } {
  const ordinal = e.version >> 32n;
  if (ordinal > INT64_MAX_ORDINAL) {
    throw new TributaryError(ErrorCodes.VERSION_RANGE, `the event at ${e.position} is beyond what a 64-bit version can order (position ordinal ${ordinal} > 2^47)`, {
      fix: 'use a sink that fences on SinkEvent.fence (postgres, duckdb, redis, manticore) for this source',
    });
  }
  const tie = e.index >= INT64_INDEX_SLOTS;
  return { version: (ordinal << 16n) | BigInt(tie ? INT64_INDEX_SLOTS : e.index), tie };
}
