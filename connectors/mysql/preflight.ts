import type mysql from 'mysql2';
import { ErrorCodes } from '../../src/core/errors.js';
import type { PreflightProblem } from '../../src/core/source.js';
import { mysqlQuery } from './client.js';

/**
 * Checks everything binlog CDC needs, in one pass, and returns every problem with the exact
 * statement or my.cnf line that fixes it (rather than failing on the first one).
 *
 * - log_bin on; binlog_format=ROW; binlog_row_image=FULL (before images are whole rows);
 * - binlog_row_metadata=FULL (column names in the binlog: DDL is followed without schema
 *   history guesswork). MINIMAL/NO_LOG is a warning: it works from the schema history only;
 * - server_id set; binlog_checksum NONE or CRC32;
 * - GTID mode (MySQL) is reported for information;
 * - privileges: REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: BINLOG MONITOR), SELECT.
 */
export async function checkMysql(c: mysql.Connection, opts: { serverId: number }): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const rows = await mysqlQuery<{ Variable_name: string; Value: string }>(
    c,
    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin','binlog_format','binlog_row_image','binlog_row_metadata','server_id','gtid_mode','enforce_gtid_consistency','binlog_checksum','version','binlog_row_value_options')",
  );
  const v = Object.fromEntries(rows.map((r) => [r.Variable_name, String(r.Value)]));
  const mariadb = /mariadb/i.test(v.version ?? '');
  const setGlobal = (name: string, value: string, cnf: string) =>
    `SET GLOBAL ${name} = '${value}'; and in my.cnf under [mysqld]: ${cnf} (new sessions pick up the global value; restart the pipeline)`;

  if ((v.log_bin ?? 'OFF').toUpperCase() !== 'ON' && v.log_bin !== '1') {
    problems.push({
      code: ErrorCodes.MYSQL_BINLOG_OFF,
      severity: 'error',
      message: 'the binary log is off (log_bin=OFF)',
      fix: `add to my.cnf under [mysqld]: log_bin = ${mariadb ? 'mariadb-bin' : 'mysql-bin'} (and server_id = 1), then restart the server`,
    });
  }
  if ((v.binlog_format ?? '').toUpperCase() !== 'ROW') {
    problems.push({
      code: ErrorCodes.MYSQL_BINLOG_FORMAT,
      severity: 'error',
      message: `binlog_format is ${v.binlog_format ?? 'unknown'}; row changes need ROW`,
      fix: setGlobal('binlog_format', 'ROW', 'binlog_format = ROW'),
    });
  }
  if ((v.binlog_row_image ?? '').toUpperCase() !== 'FULL') {
    problems.push({
      code: ErrorCodes.MYSQL_ROW_IMAGE,
      severity: 'error',
      message: `binlog_row_image is ${v.binlog_row_image ?? 'unknown'}; updates and deletes need FULL before images`,
      fix: setGlobal('binlog_row_image', 'FULL', 'binlog_row_image = FULL'),
    });
  }
  if (v.binlog_row_metadata === undefined) {
    problems.push({
      code: ErrorCodes.MYSQL_ROW_METADATA,
      severity: 'warning',
      message: 'this server has no binlog_row_metadata (MySQL < 8.0.1, MariaDB < 10.5): column names come from the schema history only',
      fix: 'upgrade to MySQL 8.0.1+ or MariaDB 10.5+ and set binlog_row_metadata = FULL',
    });
  } else if (v.binlog_row_metadata.toUpperCase() !== 'FULL') {
    problems.push({
      code: ErrorCodes.MYSQL_ROW_METADATA,
      severity: 'warning',
      message: `binlog_row_metadata is ${v.binlog_row_metadata}: the binlog does not name columns, so events are decoded with the schema history (FULL is recommended)`,
      fix: setGlobal('binlog_row_metadata', 'FULL', 'binlog_row_metadata = FULL'),
    });
  }
  if (!v.server_id || v.server_id === '0') {
    problems.push({
      code: ErrorCodes.MYSQL_SERVER_ID_ZERO,
      severity: 'error',
      message: 'server_id is 0: the server cannot serve replicas',
      fix: 'SET GLOBAL server_id = 1; and in my.cnf under [mysqld]: server_id = 1',
    });
  } else if (Number(v.server_id) === opts.serverId) {
    problems.push({
      code: ErrorCodes.MYSQL_SERVER_ID_TAKEN,
      severity: 'error',
      message: `source.server_id ${opts.serverId} equals the server's own server_id`,
      fix: 'set source.server_id to a number no other server or replica uses',
    });
  }
  const cs = (v.binlog_checksum ?? 'NONE').toUpperCase();
  if (cs !== 'NONE' && cs !== 'CRC32') {
    problems.push({
      code: ErrorCodes.MYSQL_CHECKSUM_ALGORITHM,
      severity: 'error',
      message: `binlog_checksum ${cs} is not supported`,
      fix: setGlobal('binlog_checksum', 'CRC32', 'binlog_checksum = CRC32'),
    });
  }
  if (!mariadb && v.gtid_mode !== undefined && v.gtid_mode.toUpperCase() !== 'ON') {
    problems.push({
      code: ErrorCodes.MYSQL_GTID_MODE,
      severity: 'warning',
      message: `gtid_mode is ${v.gtid_mode}: positions are file/offset only, and cannot follow a failover to another server`,
      fix: "SET GLOBAL enforce_gtid_consistency = ON; then SET GLOBAL gtid_mode step by step OFF_PERMISSIVE → ON_PERMISSIVE → ON; my.cnf: gtid_mode = ON and enforce_gtid_consistency = ON",
    });
  }
  if (!mariadb && v.binlog_row_value_options && /PARTIAL_JSON/i.test(v.binlog_row_value_options) && (v.binlog_row_image ?? '').toUpperCase() !== 'FULL') {
    problems.push({
      code: ErrorCodes.MYSQL_PARTIAL_JSON,
      severity: 'error',
      message: 'binlog_row_value_options=PARTIAL_JSON with a non-FULL row image logs JSON diffs that cannot be applied',
      fix: "SET GLOBAL binlog_row_value_options = ''; my.cnf: binlog_row_value_options = ''",
    });
  }

  // Privileges: read from SHOW GRANTS (no mysql.* access needed).
  let grants = '';
  try {
    const g = await mysqlQuery<Record<string, string>>(c, 'SHOW GRANTS');
    grants = g.map((r) => Object.values(r)[0]).join('\n').toUpperCase();
  } catch {
    /* cannot tell: say nothing rather than guess */
  }
  if (grants) {
    const globalGrants = grants
      .split('\n')
      .filter((l) => / ON \*\.\* /.test(l))
      .join('\n');
    const all = /ALL PRIVILEGES/.test(globalGrants);
    const has = (p: string) => all || new RegExp(`\\b${p}\\b`).test(globalGrants);
    const [{ u } = { u: 'current_user' }] = await mysqlQuery<{ u: string }>(c, 'SELECT CURRENT_USER() AS u').catch(() => [{ u: 'current_user' }]);
    const who = String(u).replace(/^(.*)@(.*)$/, "'$1'@'$2'");
    const missing: string[] = [];
    if (!has('REPLICATION SLAVE')) missing.push('REPLICATION SLAVE');
    if (!has('REPLICATION CLIENT') && !has('BINLOG MONITOR') && !has('SUPER')) missing.push(mariadb ? 'BINLOG MONITOR' : 'REPLICATION CLIENT');
    if (!has('SELECT') && !/GRANT .*SELECT.* ON /.test(grants)) missing.push('SELECT');
    if (missing.length) {
      problems.push({
        code: ErrorCodes.MYSQL_PRIVILEGE,
        severity: 'error',
        message: `user ${who} lacks ${missing.join(', ')}`,
        fix: `GRANT ${missing.join(', ')} ON *.* TO ${who};`,
      });
    }
  }
  return problems;
}
