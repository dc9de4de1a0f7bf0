import { z } from 'zod';
import { passwordFields, reconnect, retiredKey, snapshotCommon, tableList } from '../../src/config/common.js';

/**
 * The `source:` block of a MySQL or MariaDB pipeline (`type: mysql`): validation, the
 * TypeScript type and its section of docs/configuration.md, from one schema. The source
 * registry (src/runtime/source-registry.ts) puts it into the pipeline schema; the keys every
 * source shares come from src/config/common.ts. Unknown keys are rejected (`.strict()`).
 */
export const MysqlSourceConfig = z
  .object({
    type: z.literal('mysql'),
    url: z
      .string()
      .describe('`mysql://user@host:3306/`. MariaDB uses the same type. A password written here must be percent-encoded (`#` is `%23`, `%` is `%25`); or use `password`/`password_file`.'),
    ...passwordFields('the source user'),
    tables: tableList.default(['*.*']),
    exclude: tableList.optional(),
    server_id: z
      .number()
      .int()
      .min(1)
      .max(4294967295)
      .optional()
      .describe("Replica server id; must be unique among the server's replicas. Default: derived from the pipeline name (a stable number from 1000000 up), so pipelines do not evict each other."),
    start: z
      .union([
        z.enum(['earliest', 'latest']),
        z.object({ file: z.string(), pos: z.number().int().min(4) }).strict(),
        z.object({ gtid: z.string() }).strict(),
      ])
      .default('latest')
      .describe('Where to start when there is no checkpoint: earliest, latest, {file, pos} or {gtid}.'),
    heartbeat_ms: z.number().int().min(0).default(5000).describe('Server heartbeat period; a dead socket is detected after 3 missed heartbeats.'),
    decode_workers: retiredKey('decode_workers'),
    signal_table: z
      .string()
      .regex(/^[^.`\s]+\.[^`\s]+$/, 'a db.table name')
      .optional()
      .describe(
        'Default `tributary.watermarks`. Table (`db.table`) that snapshot watermarks are inserted into; their binlog rows mark chunk windows and are never sent to sinks. Created on first use (the source user needs CREATE, INSERT and DELETE on its database), or create it yourself: `(id VARCHAR(190) NOT NULL, mark VARCHAR(8) NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (id, mark))`.',
      ),
    reconnect,
    ...snapshotCommon,
  })
  .strict();

export type MysqlSourceConfig = z.infer<typeof MysqlSourceConfig>;
