import { z } from 'zod';
import { passwordFields, reconnect, snapshotCommon, tableList } from '../../src/config/common.js';

/**
 * The `source:` block of a Postgres pipeline (`type: postgres`): validation, the TypeScript
 * type and its section of docs/configuration.md, from one schema. The source registry
 * (src/runtime/source-registry.ts) puts it into the pipeline schema; the keys every source
 * shares come from src/config/common.ts. Unknown keys are rejected (`.strict()`).
 */
export const PostgresSourceConfig = z
  .object({
    type: z.literal('postgres'),
    url: z
      .string()
      .describe('libpq-style URL: `postgres://user@host:5432/db`. A password written here must be percent-encoded (`#` is `%23`, `%` is `%25`); or use `password`/`password_file`. The password is redacted from logs.'),
    ...passwordFields('the source user'),
    tables: tableList.default(['public.*']),
    exclude: tableList.optional().describe('Tables to leave out even when `tables` matches them.'),
    slot: z.string().optional().describe('Replication slot name. Default `tributary_<name>`.'),
    publication: z.string().optional().describe('Publication name. Default `tributary_<name>`; created when missing, limited to the captured tables.'),
    create_publication: z.boolean().default(true).describe('Create the publication when it does not exist.'),
    replica_identity_full: z
      .array(z.string().regex(/^[^.*]+\.[^*]+$/, 'a schema.table name, without wildcards'))
      .optional()
      .describe(
        'Tables (`schema.table`, no wildcards) to set to `REPLICA IDENTITY FULL` (`ALTER TABLE … REPLICA IDENTITY FULL`, run by Tributary, which then needs the owner\'s rights) so they can be captured, with full `before` images. A table `tables` matches that has no primary key and REPLICA IDENTITY DEFAULT (or NOTHING) is otherwise left out of the publication with a TRB2020 warning: published, Postgres would reject UPDATE and DELETE on it in the application. FULL writes the whole old row to the WAL on every update and delete.',
      ),
    table_check_ms: z
      .number()
      .int()
      .min(0)
      .default(10000)
      .describe(
        'How often to look for tables that start to match `tables` while the pipeline runs (created, or given a key, after start): they join the publication and are snapshotted (unless `snapshot: never`), since rows written before they joined are never streamed. Keyless ones are left out as at start. 0 checks at start only.',
      ),
    heartbeat_ms: z.number().int().min(0).default(10000).describe('How often to write a `pg_logical_emit_message` heartbeat so an idle slot advances. 0 turns it off.'),
    status_interval_ms: z.number().int().min(100).default(1000).describe('How often to send a standby status update (the acknowledged LSN).'),
    reconnect,
    ...snapshotCommon,
  })
  .strict();

export type PostgresSourceConfig = z.infer<typeof PostgresSourceConfig>;
