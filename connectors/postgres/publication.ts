import type pg from 'pg';
import { ident, qualified, tableName, type CapturedTable } from './catalog.js';

/** A publication as the catalog has it. */
export interface PublicationState {
  exists: boolean;
  /** `publish_via_partition_root`: partitions' changes carry the partitioned table's name. */
  viaRoot: boolean;
  owner: string | null;
  ownerIsSuperuser: boolean;
  /** The source role has the owner's rights (ALTER PUBLICATION needs them). */
  owned: boolean;
  /** The tables listed in it (`pg_publication_rel`, not the expanded `pg_publication_tables`). */
  members: { schema: string; table: string }[];
}

/** What must change so the publication publishes exactly `want`, through partition roots. */
export interface PublicationChanges {
  create: boolean;
  setViaRoot: boolean;
  add: CapturedTable[];
  drop: { schema: string; table: string }[];
}

export async function publicationState(client: pg.ClientBase, name: string): Promise<PublicationState> {
  const p = await client.query<{ oid: string; pubviaroot: boolean; owner: string; owner_super: boolean; owned: boolean }>(
    `SELECT p.oid::int8::text AS oid, p.pubviaroot, pg_get_userbyid(p.pubowner) AS owner,
            (SELECT rolsuper FROM pg_roles WHERE oid = p.pubowner) AS owner_super, pg_has_role(p.pubowner, 'USAGE') AS owned
       FROM pg_publication p WHERE p.pubname = $1`,
    [name],
  );
  const row = p.rows[0];
  if (!row) return { exists: false, viaRoot: false, owner: null, ownerIsSuperuser: false, owned: true, members: [] };
  // The listed tables, not pg_publication_tables: that view expands a partitioned table into
  // its leaves (or hides listed leaves under their root), so it never says what to ADD or DROP.
  const m = await client.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, c.relname AS table
       FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE r.prpubid = $1::int8::oid ORDER BY 1, 2`,
    [row.oid],
  );
  return { exists: true, viaRoot: row.pubviaroot, owner: row.owner, ownerIsSuperuser: row.owner_super, owned: row.owned, members: m.rows };
}

export function publicationChanges(state: PublicationState, want: readonly CapturedTable[]): PublicationChanges {
  if (!state.exists) return { create: true, setViaRoot: false, add: [...want], drop: [] };
  const have = new Set(state.members.map(tableName));
  const wanted = new Set(want.map(tableName));
  return {
    create: false,
    setViaRoot: !state.viaRoot,
    add: want.filter((t) => !have.has(tableName(t))),
    drop: state.members.filter((m) => !wanted.has(tableName(m))),
  };
}

export function hasChanges(c: PublicationChanges): boolean {
  return c.create || c.setViaRoot || c.add.length > 0 || c.drop.length > 0;
}

/**
 * The statements that make the change, in order. Created publications (and existing ones,
 * altered) publish through the partition root, so a partitioned table's changes carry its
 * own name, as its snapshot rows and the sinks' filters do, not a leaf partition's.
 */
export function publicationStatements(name: string, c: PublicationChanges): string[] {
  const pub = ident(name);
  const list = (ts: readonly { schema: string; table: string }[]) => ts.map(qualified).join(', ');
  if (c.create) return [`CREATE PUBLICATION ${pub}${c.add.length ? ` FOR TABLE ${list(c.add)}` : ''} WITH (publish_via_partition_root = true)`];
  const out: string[] = [];
  if (c.setViaRoot) out.push(`ALTER PUBLICATION ${pub} SET (publish_via_partition_root = true)`);
  if (c.add.length) out.push(`ALTER PUBLICATION ${pub} ADD TABLE ${list(c.add)}`);
  if (c.drop.length) out.push(`ALTER PUBLICATION ${pub} DROP TABLE ${list(c.drop)}`);
  return out;
}

/**
 * Apply the change in one implicit transaction (one simple-query message): all of it or none.
 * `lockTimeoutMs` bounds the wait for a table lock (ADD TABLE takes one), so a long
 * application transaction delays a periodic check instead of stalling it.
 */
export async function applyPublicationChanges(client: pg.ClientBase, name: string, c: PublicationChanges, lockTimeoutMs = 0): Promise<void> {
  const stmts = publicationStatements(name, c);
  if (!stmts.length) return;
  const timeout = lockTimeoutMs ? `SELECT set_config('lock_timeout', '${Math.floor(lockTimeoutMs)}ms', true); ` : '';
  await client.query(timeout + stmts.join('; '));
}
