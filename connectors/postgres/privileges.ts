import type pg from 'pg';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { PreflightProblem } from '../../src/core/source.js';
import { ident, qualified, tableName, type CapturedTable } from './catalog.js';
import { publicationStatements, type PublicationChanges, type PublicationState } from './publication.js';

/**
 * What the source role needs, checked only where it is needed:
 * - CREATE on the database, when the publication must be created;
 * - the owner's rights on every table to be added to the publication, or set to REPLICA
 *   IDENTITY FULL (`source.replica_identity_full`), and on the publication when it must change;
 * - SELECT on every captured table and USAGE on its schema, for snapshots (a warning with
 *   `snapshot: never`, since only an on-demand snapshot needs them then).
 * (REPLICATION is checked with the server settings.) Each problem carries the statement that
 * fixes it.
 */
export async function privilegeProblems(
  client: pg.ClientBase,
  o: {
    publication: string;
    state: PublicationState;
    changes: PublicationChanges;
    captured: readonly CapturedTable[];
    /** Opted-in tables whose REPLICA IDENTITY FULL is still to be set. */
    toAlter: readonly CapturedTable[];
    snapshotNever: boolean;
  },
): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const who = await client.query<{ role: string; db: string; can_create: boolean }>(
    "SELECT current_user AS role, current_database() AS db, has_database_privilege(current_database(), 'CREATE') AS can_create",
  );
  const { role, db, can_create } = who.rows[0]!;
  const r = ident(role);
  if (o.changes.create && !can_create) {
    problems.push({
      code: ErrorCodes.PG_PRIVILEGE,
      severity: 'error',
      message: `role "${role}" lacks CREATE on database "${db}", needed to create the publication "${o.publication}"`,
      fix: `GRANT CREATE ON DATABASE ${ident(db)} TO ${r}; (or create the publication yourself: ${publicationStatements(o.publication, o.changes).join('; ')}; and set source.create_publication: false)`,
    });
  }
  if (o.state.exists && !o.state.owned && (o.changes.setViaRoot || o.changes.add.length || o.changes.drop.length)) {
    const stmts = publicationStatements(o.publication, o.changes).join('; ');
    problems.push({
      code: ErrorCodes.PG_PRIVILEGE,
      severity: 'error',
      message: `the publication "${o.publication}" must change (${stmts}) but is owned by "${o.state.owner}", not by role "${role}"`,
      fix: o.state.ownerIsSuperuser ? `run as a superuser: ${stmts};` : `GRANT ${ident(o.state.owner!)} TO ${r}; (or, as "${o.state.owner}": ${stmts};)`,
    });
  }
  // Adding a table to a publication, and ALTER TABLE, need the table owner's rights.
  const needOwner = new Map<string, { t: CapturedTable; why: string }>();
  for (const t of o.changes.add) needOwner.set(tableName(t), { t, why: `add tables to the publication "${o.publication}"` });
  for (const t of o.toAlter) needOwner.set(tableName(t), { t, why: 'set REPLICA IDENTITY FULL (source.replica_identity_full)' });
  const byOwner = new Map<string, { t: CapturedTable; why: string }[]>();
  for (const n of needOwner.values()) if (!n.t.owned) byOwner.set(n.t.owner, [...(byOwner.get(n.t.owner) ?? []), n]);
  for (const [owner, list] of byOwner) {
    const su = list[0]!.t.ownerIsSuperuser;
    const alter = list.map((n) => `ALTER TABLE ${qualified(n.t)} OWNER TO ${r};`).join(' ');
    problems.push({
      code: ErrorCodes.PG_PRIVILEGE,
      severity: 'error',
      message: `role "${role}" does not own ${list.map((n) => tableName(n.t)).join(', ')}, owned by "${owner}", whose rights it needs to ${[...new Set(list.map((n) => n.why))].join(' and to ')}`,
      // Membership in a superuser role would let the source role SET ROLE to it: never suggest it.
      fix: su ? `${alter} (or create the publication as a superuser and set source.create_publication: false)` : `GRANT ${ident(owner)} TO ${r}; (or ${alter})`,
    });
  }
  const noSelect = o.captured.filter((t) => !t.selectable);
  if (noSelect.length) {
    problems.push({
      code: ErrorCodes.PG_PRIVILEGE,
      severity: o.snapshotNever ? 'warning' : 'error',
      message: `role "${role}" lacks SELECT on ${noSelect.map(tableName).join(', ')}: snapshots read the tables${o.snapshotNever ? ' (with snapshot: never, only an on-demand snapshot would)' : ''}`,
      fix: `GRANT SELECT ON TABLE ${noSelect.map(qualified).join(', ')} TO ${r};`,
    });
  }
  const noUsage = [...new Set(o.captured.filter((t) => !t.schemaUsage).map((t) => t.schema))];
  if (noUsage.length) {
    problems.push({
      code: ErrorCodes.PG_PRIVILEGE,
      severity: o.snapshotNever ? 'warning' : 'error',
      message: `role "${role}" lacks USAGE on schema ${noUsage.join(', ')}: snapshots cannot read its tables`,
      fix: `GRANT USAGE ON SCHEMA ${noUsage.map(ident).join(', ')} TO ${r};`,
    });
  }
  return problems;
}

/**
 * A server's "permission denied" (SQLSTATE 42501) as TRB2021, naming the statement that fixes
 * it; null for any other error. `table` is the table being read, when there is one (the
 * server names it without its schema). Not retryable: the privilege does not come back by
 * itself.
 */
export function privilegeError(err: unknown, o: { role: string | undefined; doing: string; table?: { schema: string; table: string } }): TributaryError | null {
  const e = err as { code?: string; message?: string; detail?: string } | null;
  if (!e || e.code !== '42501' || err instanceof TributaryError) return null;
  const msg = e.message ?? '';
  const r = o.role ? ident(o.role) : '<source role>';
  let m: RegExpMatchArray | null;
  let fix: string;
  if ((m = msg.match(/permission denied for (?:table|relation|view) "?([^"]+)"?/))) fix = `GRANT SELECT ON TABLE ${o.table ? qualified(o.table) : ident(m[1]!)} TO ${r};`;
  else if ((m = msg.match(/permission denied for schema "?([^"]+)"?/))) fix = `GRANT USAGE ON SCHEMA ${ident(m[1]!)} TO ${r};`;
  else if ((m = msg.match(/permission denied for database "?([^"]+)"?/))) fix = `GRANT ${/CONNECT/.test(e.detail ?? '') ? 'CONNECT' : 'CREATE'} ON DATABASE ${ident(m[1]!)} TO ${r};`;
  else if ((m = msg.match(/must be owner of (table|relation|publication) "?([^"]+)"?/))) fix = `ALTER ${m[1] === 'publication' ? 'PUBLICATION' : 'TABLE'} ${ident(m[2]!)} OWNER TO ${r}; (or grant ${r} membership in its owner role, if that is not a superuser)`;
  else if (/replication|WAL sender|walsender/i.test(msg)) fix = `ALTER ROLE ${r} WITH REPLICATION;`;
  else if ((m = msg.match(/permission denied for function "?([^"]+)"?/))) fix = `GRANT EXECUTE ON FUNCTION ${m[1]} TO ${r};`;
  else fix = `grant ${r} the privilege the message names (docs/postgres.md lists what the source needs)`;
  return new TributaryError(ErrorCodes.PG_PRIVILEGE, `${o.doing}: ${msg}`, { fix, cause: err, retryable: false });
}
