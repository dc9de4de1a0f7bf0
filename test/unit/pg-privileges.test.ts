import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CapturedTable } from '../../connectors/postgres/catalog.js';
import { privilegeError } from '../../connectors/postgres/privileges.js';
import { publicationChanges, publicationStatements } from '../../connectors/postgres/publication.js';
import { TributaryError } from '../../src/core/errors.js';

const denied = (message: string, detail?: string) => Object.assign(new Error(message), { code: '42501', detail });

describe('postgres privileges and publication statements', () => {
  it('maps each "permission denied" to TRB2021 with the statement that fixes it', () => {
    const cases: [Error, { schema: string; table: string } | undefined, string][] = [
      [denied('permission denied for table t'), { schema: 'app', table: 't' }, 'GRANT SELECT ON TABLE "app"."t" TO "cdc";'],
      [denied('permission denied for schema app'), undefined, 'GRANT USAGE ON SCHEMA "app" TO "cdc";'],
      [denied('permission denied for database shop'), undefined, 'GRANT CREATE ON DATABASE "shop" TO "cdc";'],
      [denied('permission denied for database "shop"', 'User does not have CONNECT privilege.'), undefined, 'GRANT CONNECT ON DATABASE "shop" TO "cdc";'],
      [denied('must be owner of table orders'), undefined, 'ALTER TABLE "orders" OWNER TO "cdc";'],
      [denied('must be superuser or replication role to start walsender'), undefined, 'ALTER ROLE "cdc" WITH REPLICATION;'],
    ];
    for (const [err, table, fix] of cases) {
      const e = privilegeError(err, { role: 'cdc', doing: 'reading', table });
      assert.ok(e instanceof TributaryError, err.message);
      assert.equal(e.code, 'TRB2021');
      assert.equal(e.retryable, false);
      assert.ok(e.fix!.startsWith(fix), `${err.message}: ${e.fix}`);
      assert.match(e.message, new RegExp(`^reading: ${err.message}`));
    }
    assert.equal(privilegeError(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }), { role: 'cdc', doing: 'x' }), null);
  });

  it('creates the publication through partition roots, and alters an existing one to match', () => {
    const t = (schema: string, table: string) => ({ schema, table }) as CapturedTable;
    const none = { exists: false, viaRoot: false, owner: null, ownerIsSuperuser: false, owned: true, members: [] };
    assert.deepEqual(publicationStatements('p', publicationChanges(none, [t('public', 'a'), t('s', 'B')])), [
      'CREATE PUBLICATION "p" FOR TABLE "public"."a", "s"."B" WITH (publish_via_partition_root = true)',
    ]);
    const old = { exists: true, viaRoot: false, owner: 'cdc', ownerIsSuperuser: false, owned: true, members: [t('public', 'm'), t('public', 'm_0'), t('public', 'a')] };
    assert.deepEqual(publicationStatements('p', publicationChanges(old, [t('public', 'm'), t('public', 'a'), t('public', 'late')])), [
      'ALTER PUBLICATION "p" SET (publish_via_partition_root = true)',
      'ALTER PUBLICATION "p" ADD TABLE "public"."late"',
      'ALTER PUBLICATION "p" DROP TABLE "public"."m_0"',
    ]);
    assert.deepEqual(publicationStatements('p', publicationChanges({ ...old, viaRoot: true, members: [t('public', 'a')] }, [t('public', 'a')])), []);
  });
});
