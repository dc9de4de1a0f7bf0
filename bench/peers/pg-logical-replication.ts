/**
 * The Node peer for Postgres: pg-logical-replication with its own pgoutput parser (values
 * through pg-types), decoding a slot with no sink, until the workload's end message.
 * Run as a child process by the benchmark: `node pg-logical-replication.js URL SLOT PUBLICATION PREFIX`.
 * Prints `{"rows": N}`.
 */
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';

const [url, slot, publication, endPrefix] = process.argv.slice(2) as [string, string, string, string];
const service = new LogicalReplicationService({ connectionString: url }, { acknowledge: { auto: false, timeoutSeconds: 0 } });
const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication], messages: true });
let rows = 0;
service.on('data', (_lsn: string, msg: { tag: string; prefix?: string }) => {
  if (msg.tag === 'insert' || msg.tag === 'update' || msg.tag === 'delete') rows++;
  else if (msg.tag === 'message' && msg.prefix === endPrefix) {
    process.stdout.write(JSON.stringify({ rows }) + '\n', () => process.exit(0));
  }
});
service.on('error', (err: Error) => {
  console.error(err);
  process.exit(1);
});
await service.subscribe(plugin, slot);
