import type pg from 'pg';
import { ErrorCodes } from '../../src/core/errors.js';
import type { PreflightProblem } from '../../src/core/source.js';
import { qualified, slotInfo, tableName, type CapturedTable } from './catalog.js';
import { keylessProblem, optedIn, replicaIdentityStatements } from './capture.js';
import { privilegeProblems } from './privileges.js';
import { publicationChanges, publicationState, publicationStatements } from './publication.js';

/**
 * Check everything logical replication needs, in one pass, and return every problem with
 * the statement that fixes it (rather than failing on the first): server settings, the slot,
 * the tables (keyless ones are left out, TRB2020), the publication, and the source role's
 * privileges for what this start will do.
 */
export async function checkPostgres(
  client: pg.ClientBase,
  opts: {
    slot: string;
    publication: string;
    createPublication: boolean;
    /** What `source.tables` / `exclude` match (resolveTables). */
    tables: CapturedTable[];
    include: readonly string[];
    replicaIdentityFull: readonly string[] | undefined;
    snapshotNever: boolean;
  },
): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const settings = await client.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders', 'max_slot_wal_keep_size', 'server_version_num')",
  );
  const s = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
  if (s.wal_level !== 'logical') {
    problems.push({
      code: ErrorCodes.PG_WAL_LEVEL,
      severity: 'error',
      message: `wal_level is "${s.wal_level}"; logical decoding needs "logical"`,
      fix: "run ALTER SYSTEM SET wal_level = 'logical'; then restart Postgres (e.g. pg_ctlcluster 15 main restart)",
    });
  }
  const role = await client.query<{ rolname: string; ok: boolean }>('SELECT rolname, (rolreplication OR rolsuper) AS ok FROM pg_roles WHERE rolname = current_user');
  if (!role.rows[0]?.ok) {
    const name = role.rows[0]?.rolname ?? 'current_user';
    problems.push({
      code: ErrorCodes.PG_REPLICATION_PRIVILEGE,
      severity: 'error',
      message: `role "${name}" lacks the REPLICATION attribute`,
      fix: `run ALTER ROLE "${name}" WITH REPLICATION; (as a superuser)`,
    });
  }
  const slot = await slotInfo(client, opts.slot);
  if (!slot.exists) {
    const used = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM pg_replication_slots');
    const max = Number(s.max_replication_slots ?? 10);
    if (Number(used.rows[0]?.n ?? 0) >= max) {
      problems.push({
        code: ErrorCodes.PG_SLOT_HEADROOM,
        severity: 'error',
        message: `all ${max} replication slots are in use; the slot "${opts.slot}" cannot be created`,
        fix: `drop an unused slot (SELECT pg_drop_replication_slot('name')) or ALTER SYSTEM SET max_replication_slots = ${max + 4}; and restart`,
      });
    }
  } else if (slot.walStatus === 'lost') {
    problems.push({
      code: ErrorCodes.PG_SLOT_LOST,
      severity: 'error',
      message: `replication slot "${opts.slot}" is lost: the WAL it needed was removed (max_slot_wal_keep_size)`,
      fix: `drop it (SELECT pg_drop_replication_slot('${opts.slot}')) and re-snapshot with source.snapshot: when_needed or initial`,
    });
  } else if (slot.plugin && slot.plugin !== 'pgoutput') {
    problems.push({
      code: ErrorCodes.PG_SLOT_PLUGIN,
      severity: 'error',
      message: `replication slot "${opts.slot}" uses the plugin ${slot.plugin}, not pgoutput`,
      fix: `drop it (SELECT pg_drop_replication_slot('${opts.slot}')) or set source.slot to another name`,
    });
  }
  const senders = await client.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_stat_replication");
  if (Number(senders.rows[0]?.n ?? 0) >= Number(s.max_wal_senders ?? 10)) {
    problems.push({
      code: ErrorCodes.PG_SLOT_HEADROOM,
      severity: 'error',
      message: `all ${s.max_wal_senders} WAL senders are busy`,
      fix: `ALTER SYSTEM SET max_wal_senders = ${Number(s.max_wal_senders ?? 10) + 4}; and restart`,
    });
  }
  if (!opts.tables.length) {
    problems.push({
      code: ErrorCodes.PG_TABLE_MISSING,
      severity: 'error',
      message: `no table matches source.tables [${opts.include.join(', ')}]`,
      fix: 'create the tables first, or correct source.tables (schema.table, * as wildcard)',
    });
  }
  for (const lit of opts.include.filter((t) => !t.includes('*'))) {
    const [schema, table] = lit.replace(/"/g, '').split('.');
    // A partition named beside its partitioned table is captured through it.
    const is = (t: { schema: string; table: string }) => t.schema === schema && t.table === table;
    if (!opts.tables.some((t) => is(t) || t.partitions.some(is))) {
      problems.push({ code: ErrorCodes.PG_TABLE_MISSING, severity: 'error', message: `table ${lit} does not exist`, fix: `create ${lit}, or remove it from source.tables` });
    }
  }
  const isOptedIn = optedIn(opts.replicaIdentityFull);
  for (const name of opts.replicaIdentityFull ?? []) {
    if (!opts.tables.some((t) => tableName(t) === name.replace(/"/g, ''))) {
      problems.push({
        code: ErrorCodes.PG_TABLE_MISSING,
        severity: 'warning',
        message: `source.replica_identity_full names ${name}, which is not a table source.tables captures (yet)`,
        fix: `correct the name (schema.table), or remove it from source.replica_identity_full`,
      });
    }
  }
  // What this start will publish: keyless tables are left out unless opted in (then altered).
  const captured: CapturedTable[] = [];
  const toAlter: CapturedTable[] = [];
  for (const t of opts.tables) {
    if (isOptedIn(t)) {
      if (replicaIdentityStatements(t).length) toAlter.push(t);
      captured.push(t);
    } else if (!t.hasIdentity) {
      problems.push(keylessProblem(t));
    } else {
      captured.push(t);
      if (t.replicaIdentity !== 'f') {
        problems.push({
          code: ErrorCodes.PG_REPLICA_IDENTITY,
          severity: 'warning',
          message: `${tableName(t)} has REPLICA IDENTITY ${t.replicaIdentity === 'd' ? 'DEFAULT' : 'USING INDEX'}: updates and deletes carry only the key in "before", and unchanged TOAST columns cannot be filled`,
          fix: `ALTER TABLE ${qualified(t)} REPLICA IDENTITY FULL; (or list it in source.replica_identity_full)`,
        });
      }
    }
  }
  const state = await publicationState(client, opts.publication);
  const changes = publicationChanges(state, captured);
  if (!state.exists && !opts.createPublication) {
    problems.push({
      code: ErrorCodes.PG_PUBLICATION,
      severity: 'error',
      message: `publication "${opts.publication}" does not exist and source.create_publication is false`,
      fix: `as the tables' owner: ${publicationStatements(opts.publication, changes).join('; ')}; or set source.create_publication: true`,
    });
  }
  // Without the publication and without leave to create it, the owner's rights are moot: the
  // error above says who must create it.
  const missing = !state.exists && !opts.createPublication;
  problems.push(
    ...(await privilegeProblems(client, {
      publication: opts.publication,
      state,
      changes: missing ? { create: false, setViaRoot: false, add: [], drop: [] } : changes,
      captured,
      toAlter,
      snapshotNever: opts.snapshotNever,
    })),
  );
  return problems;
}
