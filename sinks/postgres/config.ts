import { z } from 'zod';
import { warehouseFields } from './warehouse-config.js';

/**
 * The `postgres` sink block. This schema is the reference: validation, the TypeScript type and
 * docs/sinks/postgres.md all come from it.
 */
export const PostgresSinkConfig = z
  .object({
    url: z.string().min(1).describe('Target database, libpq URL: `postgres://user:pass@host:5432/warehouse`. The password never appears in logs.'),
    ...warehouseFields({ metaSchema: 'public', maxRowsPerStatement: 5000 }),
  })
  .strict();

export type PostgresSinkConfig = z.infer<typeof PostgresSinkConfig>;
