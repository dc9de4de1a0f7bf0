import type pg from 'pg';
import type { HeldBack } from '../../src/core/source.js';

/**
 * What a replication slot makes the server keep: the WAL between the slot's `restart_lsn`
 * (the oldest WAL decoding may still need) and the current write position. This is the disk
 * a stalled pipeline costs the database, and what `max_slot_wal_keep_size` caps.
 *
 * One small catalog query on the source's control connection; the runtime polls it every
 * ~15 s (src/runtime/held-back.ts), never on the replication path. On a standby,
 * `pg_current_wal_lsn()` is not available: the replay position stands in for it.
 */
export async function slotHeldBack(client: pg.ClientBase, slot: string): Promise<HeldBack> {
  const r = await client.query<{ retained: string | null; wal_status: string | null }>(
    `SELECT pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::text AS retained,
            wal_status
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = r.rows[0];
  // No slot (not created yet, or dropped): it holds nothing back.
  if (!row) return { wal_bytes: 0, slot_missing: true };
  return { wal_bytes: row.retained === null ? 0 : Math.max(0, Number(row.retained)), ...(row.wal_status ? { wal_status: row.wal_status } : {}) };
}
