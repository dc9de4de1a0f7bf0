import type mysql from 'mysql2';
import type { HeldBack } from '../../src/core/source.js';
import { mysqlQuery } from './client.js';
import { fileSequence } from './position.js';

/**
 * What this pipeline makes a MySQL/MariaDB server keep: MySQL has no slot, so nothing stops
 * the server purging binlogs (`binlog_expire_logs_seconds`, `PURGE BINARY LOGS`), but every
 * file from the one holding the pipeline's acknowledged position onward is still needed to
 * resume; once the oldest of them is purged, the pipeline cannot resume (TRB2103). The count
 * and their size tell an operator how close the retention is to that edge.
 *
 * `oldest` is the file of the acknowledged position (or of the start position before the
 * first acknowledgement). One `SHOW BINARY LOGS`, polled every ~15 s by the runtime
 * (src/runtime/held-back.ts), never on the replication path.
 */
export async function binlogsHeldBack(conn: mysql.Connection, oldest: string | null): Promise<HeldBack> {
  const logs = await mysqlQuery<{ Log_name: string; File_size?: number | string }>(conn, 'SHOW BINARY LOGS');
  if (!oldest) return {};
  const from = fileSequence(oldest);
  let files = 0;
  let bytes = 0;
  for (const l of logs) {
    if (fileSequence(l.Log_name) < from) continue;
    files++;
    bytes += Number(l.File_size ?? 0);
  }
  // The needed file is gone from the list: it was purged (the next reconnect fails with TRB2103).
  const purged = !logs.some((l) => l.Log_name === oldest);
  return { binlog_files: files, binlog_bytes: bytes, oldest_binlog_file: oldest, ...(purged ? { oldest_binlog_purged: true } : {}) };
}
