import { z } from 'zod';
import { warehouseFields } from '../../src/sdk/warehouse/index.js';

/**
 * The `duckdb` sink block. This schema is the reference: validation, the TypeScript type and
 * docs/sinks/duckdb.md all come from it.
 */
export const DuckdbSinkConfig = z
  .object({
    path: z.string().min(1).describe('The DuckDB database file (created when missing). DuckDB lets one process write a file at a time: readers must wait for the pipeline to stop, or read a copy.'),
    ...warehouseFields({ metaSchema: 'main', maxRowsPerStatement: 10000 }),
    threads: z.number().int().min(1).optional().describe('DuckDB worker threads (DuckDB default: one per core).'),
    memory_limit: z.string().optional().describe('DuckDB memory limit, e.g. `1GB` (DuckDB default: 80% of RAM).'),
  })
  .strict();

export type DuckdbSinkConfig = z.infer<typeof DuckdbSinkConfig>;
