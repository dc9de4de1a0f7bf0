import { z } from 'zod';
import { warehouseFields } from '../../src/sdk/warehouse/index.js';

/**
 * The `postgres` sink block. This schema is the reference: validation, the TypeScript type and
 * docs/sinks/postgres.md all come from it.
 */
export const PostgresSinkConfig = z
  .object({
    url: z
      .string()
      .min(1)
      .describe('Target database, libpq URL: `postgres://user@host:5432/warehouse`. A password inside it must be percent-encoded; or use `password`. The password never appears in logs.'),
    password: z.string().optional().describe('Password of the URL\'s user, instead of writing it into `url`; never logged.'),
    password_file: z.string().optional().describe('A file holding the password (a mounted Secret), read at start instead of `password`. Relative to the config file.'),
    ...warehouseFields({ metaSchema: 'public', maxRowsPerStatement: 5000 }),
  })
  .strict();

export type PostgresSinkConfig = z.infer<typeof PostgresSinkConfig>;

/**
 * The connection string with `password` in it, percent-encoded. pg lets the parsed URL win over
 * a separate `password` option (an empty one included), so the password has to travel inside.
 */
export function connectionString(config: { url: string; password?: string }): string {
  if (!config.password) return config.url;
  const u = new URL(config.url);
  u.password = encodeURIComponent(config.password);
  return u.toString();
}
