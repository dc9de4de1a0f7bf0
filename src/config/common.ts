import { z } from 'zod';

/**
 * Schema pieces shared by the engine's blocks and by the connectors' own schemas
 * (connectors/<name>/config.ts): table lists, durations, reconnect and snapshot options,
 * password fields. A connector builds its `source` block from these, so the keys every source
 * accepts read and validate the same way, and docs/configuration.md describes them once.
 * This module imports nothing but zod, so a connector's config module stays cheap to load.
 */

/** A list of table patterns (`tables`, `exclude`, a sink's `tables`). */
export const tableList = z
  .array(z.string().min(1))
  .describe('Tables as `schema.table` (Postgres) or `db.table` (MySQL). `*` matches any run of characters.');

/** `source.snapshot`: when a source takes a snapshot. */
export const snapshotMode = z
  .enum(['initial', 'never', 'initial_only', 'when_needed'])
  .default('initial')
  .describe('initial: snapshot once, then stream. never: stream only. initial_only: snapshot, then exit 0. when_needed: snapshot when no usable checkpoint exists or the slot/binlog position was lost.');

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `500ms`, `30s`, `10m`, `1.5h` or `7d`, as milliseconds. */
export const duration = z
  .string()
  .regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, 'a duration such as 30s, 10m, 1h or 7d')
  .transform((v) => {
    const [, n, unit] = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v)!;
    return Math.round(Number(n) * DURATION_UNITS[unit!]!);
  });

/** `source.reconnect`: how long a source keeps reconnecting (src/runtime/source-link.ts). */
export const reconnect = z
  .object({
    max_elapsed: duration
      .optional()
      .describe(
        'How long to keep reconnecting to a database that is down or refuses connections (at start-up or while streaming) before the pipeline fails with TRB2201, e.g. `10m` or `1h`. Default: no limit, retry for ever.',
      ),
  })
  .strict()
  .default({})
  .describe('A lost or unreachable database is retried with backoff and jitter (0.5 s doubling to 5 s); a login that worked before and is now refused, every few minutes. See docs/architecture.md#reconnects.');

/** `password:` and `password_file:`, for blocks whose `url` may need a password. */
export const passwordFields = (what: string) => ({
  password: z
    .string()
    .optional()
    .describe(`Password for ${what}, instead of writing it into the url (where #, %, @, /, ? and : must be percent-encoded). Usually \`"\${PASSWORD_VAR}"\`. Never logged.`),
  password_file: z.string().optional().describe('A file holding the password (a mounted Secret), instead of `password`. Relative to the config file; surrounding whitespace is ignored.'),
});

/**
 * Source keys that were removed, with why: a config that still sets one loads, with a warning
 * (src/config/load.ts) that names the key as ignored and gives this reason, instead of failing
 * on an unknown key. Each connector's schema accepts its own with {@link retiredKey}.
 */
export const RETIRED_SOURCE_KEYS: Readonly<Record<string, string>> = {
  snapshot_threads:
    'snapshot chunks are read on the main thread; reader threads were removed because the project\'s measurements (docs/benchmarks.md, "Decided: no worker threads") showed they cost more CPU than they saved on a 2-core host and added state to the path that keeps data safe',
  decode_workers:
    'binlog rows are decoded on the main thread; the decode worker was removed because the project\'s measurements (docs/benchmarks.md, "Decided: no worker threads") showed it cost about 30% more CPU for the same drain time and added ordering state to the path that keeps data safe',
};

/** A retired key (see {@link RETIRED_SOURCE_KEYS}): any value is accepted and ignored. */
export const retiredKey = (key: keyof typeof RETIRED_SOURCE_KEYS & string) =>
  z.unknown().optional().describe(`Deprecated and ignored (a warning says so at start-up): ${RETIRED_SOURCE_KEYS[key]}.`);

/**
 * The snapshot keys every source accepts (the engine's snapshot coordinator reads them), spread
 * into a connector's schema: `...snapshotCommon`.
 */
export const snapshotCommon = {
  snapshot: snapshotMode,
  snapshot_workers: z
    .number()
    .int()
    .min(0)
    .max(64)
    .default(2)
    .describe('Chunks read in parallel by this process. With snapshot.queue.redis, `tributary run --worker` processes read chunks too, and 0 leaves all reading to them.'),
  snapshot_chunk_rows: z.number().int().min(100).default(10000).describe('Rows per snapshot chunk (keyset pagination by primary key).'),
  snapshot_threads: retiredKey('snapshot_threads'),
  key_columns: z
    .record(z.string(), z.array(z.string()))
    .optional()
    .describe('Per table, the columns to use as the row key when a table has no primary key: `{ "db.t": [a, b] }`.'),
};
