import type pg from 'pg';
import type { Logger } from 'pino';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { PreflightProblem } from '../../src/core/source.js';
import type { StateStore } from '../../src/state/store.js';
import { qualified, resolveTables, tableName, type CapturedTable } from './catalog.js';
import { applyPublicationChanges, hasChanges, publicationChanges, publicationState, publicationStatements } from './publication.js';

/** State key of the tables being added to the publication whose snapshot has not begun yet. */
const JOINING_KEY = 'pg_joining_tables';

/** Whether a table is in `source.replica_identity_full` (exact `schema.table` names). */
export function optedIn(list: readonly string[] | undefined): (t: { schema: string; table: string }) => boolean {
  const names = new Set((list ?? []).map((n) => n.replace(/"/g, '')));
  return (t) => names.has(tableName(t));
}

/**
 * The statements of the `replica_identity_full` opt-in for one table: the table, and for a
 * partitioned table each leaf too (the setting is per relation, not inherited, and an UPDATE
 * checks the leaf it changes).
 */
export function replicaIdentityStatements(t: CapturedTable): string[] {
  const out = t.replicaIdentity === 'f' ? [] : [`ALTER TABLE ${qualified(t)} REPLICA IDENTITY FULL`];
  for (const p of t.partitions) if (p.replicaIdentity !== 'f') out.push(`ALTER TABLE ${qualified(p)} REPLICA IDENTITY FULL`);
  return out;
}

/** The TRB2020 warning for a table left out because it has no replica identity. */
export function keylessProblem(t: CapturedTable): PreflightProblem {
  const leaves = t.partitions.filter((p) => !p.hasIdentity).map(tableName);
  const what = leaves.length ? `partition(s) ${leaves.join(', ')} of ${tableName(t)} have` : `${tableName(t)} has`;
  return {
    code: ErrorCodes.PG_KEYLESS_TABLE,
    severity: 'warning',
    message: `${what} no replica identity (no PRIMARY KEY, and REPLICA IDENTITY ${t.replicaIdentity === 'n' ? 'NOTHING' : 'DEFAULT'}), so ${tableName(t)} is left out of the publication and not captured: published, Postgres would reject UPDATE and DELETE on it in your application`,
    fix: `add a PRIMARY KEY to ${tableName(t)}, or run ALTER TABLE ${qualified(t)} REPLICA IDENTITY FULL; (or list ${tableName(t)} in source.replica_identity_full to have Tributary run it); it is captured from the next table check`,
  };
}

/**
 * Decides which tables are captured and keeps the publication in step, at start and on every
 * periodic table check:
 *
 * - the tables `source.tables` / `exclude` match (partitions through their partitioned table);
 * - minus those without a replica identity, left out with a TRB2020 warning (once per table),
 *   since publishing them breaks the application's UPDATE and DELETE;
 * - after running `ALTER TABLE … REPLICA IDENTITY FULL` on the tables the user opted in.
 *
 * A table added to an existing publication (at a restart, or while streaming) had rows written
 * before it joined, which the slot never decodes (publication membership is read as of each
 * change). Those tables are snapshotted through `requestSnapshot`. Their names are stored
 * before the ALTER PUBLICATION and removed once the snapshot has begun, so a crash in between
 * leaves the request to the next start. (Only a publication created now needs none: the
 * initial snapshot, which begins after it, reads every table it publishes. A stored snapshot
 * that resumes does not, since its table list is fixed, so the request stands even when no
 * sink has a checkpoint yet.)
 */
export class TableCapture {
  /** The tables the publication publishes, as of the last sync. */
  tables: CapturedTable[] = [];
  private readonly warned = new Set<string>();
  private joining: Set<string> | null = null;
  private readonly requested = new Set<string>();
  private persisting: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: {
      pipeline: string;
      publication: string;
      include: readonly string[];
      exclude: readonly string[] | undefined;
      replicaIdentityFull: readonly string[] | undefined;
      create: boolean;
      logger: Logger;
      store: StateStore;
      requestSnapshot?: (tables: string[]) => Promise<void>;
    },
  ) {}

  /** Tables whose TRB2020 warning was already given (by preflight), not to be repeated. */
  noteWarned(tables: readonly CapturedTable[]): void {
    for (const t of tables) this.warned.add(tableName(t));
  }

  /**
   * One pass. `lockTimeoutMs` bounds lock waits (periodic checks); at start the statements wait
   * as long as it takes.
   */
  async sync(c: pg.ClientBase, opts: { lockTimeoutMs?: number } = {}): Promise<{ created: boolean; added: string[]; dropped: string[] }> {
    this.joining ??= new Set((await this.o.store.get<string[]>(this.o.pipeline, JOINING_KEY)) ?? []);
    let all = await resolveTables(c, this.o.include, this.o.exclude);
    const isOptedIn = optedIn(this.o.replicaIdentityFull);
    const alter = all.filter(isOptedIn).flatMap(replicaIdentityStatements);
    if (alter.length) {
      const timeout = opts.lockTimeoutMs ? `SELECT set_config('lock_timeout', '${Math.floor(opts.lockTimeoutMs)}ms', true); ` : '';
      await c.query(timeout + alter.join('; '));
      this.o.logger.info({ statements: alter }, `REPLICA IDENTITY FULL set, as source.replica_identity_full asks: ${alter.join('; ')}`);
      all = await resolveTables(c, this.o.include, this.o.exclude);
    }
    const keyless = all.filter((t) => !t.hasIdentity);
    const keylessNames = new Set(keyless.map(tableName));
    for (const t of keyless) {
      if (this.warned.has(tableName(t))) continue;
      this.warned.add(tableName(t));
      const p = keylessProblem(t);
      this.o.logger.warn({ code: p.code, fix: p.fix, table: tableName(t) }, `${p.message} (fix: ${p.fix})`);
    }
    // A table that gets a key, and later loses it again, is warned about again.
    for (const n of this.warned) if (!keylessNames.has(n)) this.warned.delete(n);

    const want = all.filter((t) => t.hasIdentity);
    const state = await publicationState(c, this.o.publication);
    if (!state.exists && !this.o.create) {
      throw new TributaryError(ErrorCodes.PG_PUBLICATION, `publication "${this.o.publication}" does not exist and source.create_publication is false`, {
        fix: `as the tables' owner: ${publicationStatements(this.o.publication, publicationChanges(state, want)).join('; ')}; or set source.create_publication: true`,
      });
    }
    const changes = publicationChanges(state, want);
    const wanted = new Set(want.map(tableName));
    const joined = state.exists ? changes.add.map(tableName) : [];
    if (joined.length) {
      for (const n of joined) this.joining.add(n);
      await this.persistJoining();
    }
    if (hasChanges(changes)) {
      await applyPublicationChanges(c, this.o.publication, changes, opts.lockTimeoutMs);
      this.o.logger.info(
        { publication: this.o.publication, added: changes.add.map(tableName), dropped: changes.drop.map(tableName), via_root: true },
        `publication ${changes.create ? 'created' : 'updated'}${changes.add.length ? `; added ${changes.add.map(tableName).join(', ')}` : ''}${changes.drop.length ? `; dropped ${changes.drop.map(tableName).join(', ')}` : ''}`,
      );
    }
    this.tables = want;
    this.requestJoinSnapshots(wanted);
    return { created: changes.create, added: changes.add.map(tableName), dropped: changes.drop.map(tableName) };
  }

  /** Ask for the snapshots of joined tables (this run's and any a crash left behind). */
  private requestJoinSnapshots(published: Set<string>): void {
    const joining = this.joining!;
    let forgot = false;
    for (const n of joining) {
      // Gone from the publication (dropped, or no longer matched): nothing to snapshot.
      if (!published.has(n)) {
        joining.delete(n);
        forgot = true;
      }
    }
    if (forgot) this.saveJoining();
    const ask = [...joining].filter((n) => !this.requested.has(n));
    if (!ask.length || !this.o.requestSnapshot) return;
    for (const n of ask) this.requested.add(n);
    this.o.requestSnapshot(ask).then(
      () => {
        for (const n of ask) {
          joining.delete(n);
          this.requested.delete(n);
        }
        this.saveJoining();
      },
      (err: unknown) => {
        for (const n of ask) this.requested.delete(n);
        this.o.logger.warn({ err, tables: ask }, 'cannot request the snapshot of tables that joined the publication; asking again at the next table check');
      },
    );
  }

  /** Store the joining set; writes are queued so the last one carries the latest set. */
  private persistJoining(): Promise<void> {
    const write = this.persisting.catch(() => undefined).then(() => this.o.store.put(this.o.pipeline, JOINING_KEY, [...this.joining!]));
    this.persisting = write;
    return write;
  }

  /** Store the joining set in the background; a failure only costs a repeated snapshot after a restart. */
  private saveJoining(): void {
    this.persistJoining().catch((err: unknown) => this.o.logger.warn({ err }, 'cannot store the tables joining the publication'));
  }

  /** Resolves once stored state is written (for a clean close). */
  async flushed(): Promise<void> {
    await this.persisting.catch(() => undefined);
  }
}
