/**
 * The Postgres side of the benchmark: a dedicated database, the 7-column table, the
 * workload (inserts then updates, in transactions of 1,000 rows), a publication and the
 * logical slots every contender reads. Everything it creates is dropped on dispose.
 */
import pg from 'pg';

export const PG_DB = 'tributary_bench';
/** Prefix of the transactional logical message that ends a workload. */
export const END_PREFIX = 'tributary_bench_end';
const ROWS_PER_TXN = 1000;

export const PG_COLUMNS = `id bigint PRIMARY KEY, qty int, title text, price numeric(12,2), updated_at timestamptz, status text, attrs jsonb`;

const INSERT = (table: string) => `INSERT INTO ${table} (id, qty, title, price, updated_at, status, attrs)
  SELECT g, (g % 10000)::int, 'product ' || g || ' lorem ipsum dolor sit amet', ((g % 1000000) / 100.0)::numeric(12,2),
         timestamptz '2024-01-15 10:30:00.123456+00' + g * interval '1 second',
         (ARRAY['new','paid','shipped','returned'])[g % 4 + 1],
         jsonb_build_object('color', (ARRAY['red','green','blue'])[g % 3 + 1], 'size', g % 50, 'tags', jsonb_build_array('a', g % 10))
  FROM generate_series($1::bigint, $2::bigint) g`;

const UPDATE = (table: string) => `UPDATE ${table} SET qty = qty + 1, status = 'paid', updated_at = updated_at + interval '1 hour'
  WHERE id BETWEEN $1::bigint AND $2::bigint AND id % 2 = 0`;

export class PgWorkload implements AsyncDisposable {
  private constructor(
    readonly adminUrl: string,
    readonly url: string,
    readonly client: pg.Client,
    readonly version: string,
  ) {}

  /** Drop any leftover bench database (and its slots), create a fresh one. */
  static async open(adminUrl: string): Promise<PgWorkload> {
    await dropBenchDb(adminUrl);
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${PG_DB}`);
    } finally {
      await admin.end();
    }
    const u = new URL(adminUrl);
    u.pathname = `/${PG_DB}`;
    const client = new pg.Client({ connectionString: u.toString() });
    await client.connect();
    const v = (await client.query<{ v: string }>('SELECT current_setting(\'server_version\') AS v')).rows[0]!.v;
    await client.query(`CREATE TABLE bench_rows (${PG_COLUMNS})`);
    await client.query('ALTER TABLE bench_rows REPLICA IDENTITY FULL');
    await client.query(`CREATE TABLE bench_big (${PG_COLUMNS})`);
    await client.query('ALTER TABLE bench_big REPLICA IDENTITY FULL');
    await client.query(`CREATE TABLE bench_live (${PG_COLUMNS})`);
    await client.query('ALTER TABLE bench_live REPLICA IDENTITY FULL');
    // One publication per table, so a contender decodes only the table it is measured on.
    for (const t of ['bench_rows', 'bench_big', 'bench_live']) await client.query(`CREATE PUBLICATION ${pubFor(t)} FOR TABLE ${t}`);
    return new PgWorkload(adminUrl, u.toString(), client, v);
  }

  /** `n` inserts then n/2 updates into `table`, 1,000 rows per transaction. Returns the row changes. */
  async streamWorkload(table: string, n: number): Promise<number> {
    for (let a = 1; a <= n; a += ROWS_PER_TXN) await this.client.query(INSERT(table), [a, Math.min(n, a + ROWS_PER_TXN - 1)]);
    let updates = 0;
    for (let a = 1; a <= n; a += 2 * ROWS_PER_TXN) updates += (await this.client.query(UPDATE(table), [a, Math.min(n, a + 2 * ROWS_PER_TXN - 1)])).rowCount ?? 0;
    await this.client.query(`ANALYZE ${table}`);
    return n + updates;
  }

  /** One transaction inserting rows `from..to`. */
  async insert(table: string, from: number, to: number, client: pg.Client = this.client): Promise<void> {
    await client.query(INSERT(table), [from, to]);
  }

  async update(table: string, from: number, to: number, client: pg.Client = this.client): Promise<void> {
    await client.query(`UPDATE ${table} SET qty = qty + 1, updated_at = now() WHERE id BETWEEN $1::bigint AND $2::bigint`, [from, to]);
  }

  /**
   * End the workload with a transactional logical message. Returns its LSN (every contender
   * is done once it has passed it) and the WAL insert position after it (pg_recvlogical's
   * --endpos).
   */
  async endMarker(): Promise<{ markLsn: bigint; endpos: string }> {
    const r = await this.client.query<{ lsn: string }>(`SELECT pg_logical_emit_message(true, '${END_PREFIX}', 'end')::text AS lsn`);
    const e = await this.client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    return { markLsn: parseLsn(r.rows[0]!.lsn), endpos: e.rows[0]!.lsn };
  }

  async createSlot(name: string): Promise<void> {
    await this.client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
  }

  /** A copy of `from` at the same position: each contender drains the same WAL. */
  async copySlot(from: string, to: string): Promise<void> {
    await this.client.query('SELECT pg_copy_logical_replication_slot($1, $2)', [from, to]);
  }

  async dropSlot(name: string): Promise<void> {
    await this.client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [name]).catch(() => undefined);
    for (let i = 0; i < 50; i++) {
      try {
        await this.client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [name]);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100)); // still active for a moment
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.client.end().catch(() => undefined);
    await dropBenchDb(this.adminUrl);
  }
}

export const pubFor = (table: string) => `bench_pub_${table.replace(/^bench_/, '')}`;

export function parseLsn(s: string): bigint {
  const [hi, lo] = s.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/** Terminate walsenders of the bench database, drop its slots, drop it. */
export async function dropBenchDb(adminUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (let i = 0; i < 50; i++) {
      await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL', [PG_DB]);
      const r = await admin.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE database = $1', [PG_DB]);
      if (!r.rowCount) break;
      for (const row of r.rows) await admin.query('SELECT pg_drop_replication_slot($1)', [row.slot_name]).catch(() => undefined);
      await new Promise((res) => setTimeout(res, 100));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${PG_DB} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
