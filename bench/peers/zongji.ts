/**
 * The Node peer for MariaDB: @vlasky/zongji decoding row events of the bench table from a
 * binlog position until it has counted the workload's rows.
 * Run as a child process: `node zongji.js URL FILE POS DB TABLE EXPECTED_ROWS SERVER_ID`.
 * Prints `{"rows": N}`.
 */
import ZongJi from '@vlasky/zongji';

const [url, file, pos, db, table, expected, serverId] = process.argv.slice(2) as string[];
const u = new URL(url!);
const zongji = new ZongJi({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username || 'root'), password: decodeURIComponent(u.password) });
const want = Number(expected);
let rows = 0;
zongji.on('binlog', (evt: { getEventName(): string; rows?: unknown[] }) => {
  const name = evt.getEventName();
  if ((name === 'writerows' || name === 'updaterows' || name === 'deleterows') && evt.rows) {
    rows += evt.rows.length;
    if (rows >= want) process.stdout.write(JSON.stringify({ rows }) + '\n', () => process.exit(0));
  }
});
zongji.on('error', (err: Error) => {
  console.error(err);
  process.exit(1);
});
zongji.start({
  serverId: Number(serverId),
  filename: file,
  position: Number(pos),
  includeEvents: ['tablemap', 'writerows', 'updaterows', 'deleterows'],
  includeSchema: { [db!]: [table!] },
});
