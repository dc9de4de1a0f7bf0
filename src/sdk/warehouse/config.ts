import { z } from 'zod';

/**
 * The config keys of a SQL warehouse sink, for its zod schema: where rows go (`schema`,
 * `table` templates), how (`mode`), where its bookkeeping lives (`meta_schema`) and the bulk
 * statement size (`max_rows_per_statement`). Spread them into the sink's `z.object({...})` next
 * to its connection keys; `defaults` are the sink's own. The postgres and duckdb sinks use it,
 * so a plugin that does too reads like them in the configuration reference.
 */
export function warehouseFields(defaults: { metaSchema: string; maxRowsPerStatement: number }) {
  return {
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
    meta_schema: z
      .string()
      .min(1)
      .default(defaults.metaSchema)
      .describe('Schema that holds `_tributary_positions` (the committed position per pipeline and sink) and `_tributary_tombstones` (fences of deleted keys).'),
    max_rows_per_statement: z
      .number()
      .int()
      .min(1)
      .default(defaults.maxRowsPerStatement)
      .describe('Rows sent in one bulk statement; a larger batch is split into several statements of the same transaction.'),
  };
}
