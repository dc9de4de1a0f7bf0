/**
 * The warehouse plugin that docs/sink-sdk.md shows (test/fixtures/warehouse-sink-example.ts,
 * built only from tributary/sdk and tributary/sdk/warehouse) passes the conformance kit
 * against a real Postgres: the example a plugin author follows is a sink that works.
 */
import { after } from 'node:test';
import type { Row } from '../../src/core/event.js';
import { describeSinkConformance } from '../../src/testing/index.js';
import example from '../fixtures/warehouse-sink-example.js';
import { PgTestDb } from '../helpers/context.js';

const db = await PgTestDb.create('whexample');
after(() => db[Symbol.asyncDispose]());

describeSinkConformance(
  {
    definition: example,
    module: new URL('../fixtures/warehouse-sink-example.js', import.meta.url),
    config: { url: db.url },
    kind: 'keyed',
    async reset() {
      await db.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
    },
    async readState() {
      const r = await db.query('SELECT id, name, amount, tags FROM public.conformance');
      return new Map(r.rows.map((x) => [JSON.stringify({ id: Number(x.id) }), { ...x, id: Number(x.id) } as Row]));
    },
    poison: (base) => ({ ...base, after: { ...base.after!, name: 'nul\u0000byte' } }),
  },
  'sink conformance: the warehouse example of docs/sink-sdk.md',
);
