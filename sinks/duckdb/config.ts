import { z } from 'zod';

/**
 * The `duckdb` sink block. This schema is the reference: validation, the TypeScript type and
 * docs/sinks/duckdb.md all come from it.
 */
export const DuckdbSinkConfig = z
  .object({
    path: z.string().min(1).describe('The DuckDB database file (created when missing). DuckDB lets one process write a file at a time: readers must wait for the pipeline to stop, or read a copy.'),
    schema: z
      .string()
      .min(1)
      .optional()
      .describe('Target schema, a template over {schema} {db} {table} {pipeline}. Default: the source schema (Postgres) or database (MySQL). Created when missing.'),
    table: z.string().min(1).default('{table}').describe('Target table name template over {schema} {db} {table} {pipeline}. Created when missing.'),
    mode: z
      .enum(['mirror', 'history'])
      .default('mirror')
      .describe('mirror: keep the current row per key (upsert on c/u/r, delete on d, empty on t). history: append every event as a row with _op, _position, _index, _fence, _ts_ms and _before.'),
    meta_schema: z.string().min(1).default('main').describe('Schema that holds `_tributary_positions` (the committed position per pipeline and sink) and `_tributary_tombstones` (fences of deleted keys).'),
    max_rows_per_statement: z
      .number()
      .int()
      .min(1)
      .default(10000)
      .describe('Rows sent in one bulk statement; a larger batch is split into several statements of the same transaction.'),
    threads: z.number().int().min(1).optional().describe('DuckDB worker threads (DuckDB default: one per core).'),
    memory_limit: z.string().optional().describe('DuckDB memory limit, e.g. `1GB` (DuckDB default: 80% of RAM).'),
  })
  .strict();

export type DuckdbSinkConfig = z.infer<typeof DuckdbSinkConfig>;
