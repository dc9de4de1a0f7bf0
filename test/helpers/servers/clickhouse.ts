/**
 * A throwaway ClickHouse server for tests and benchmarks: `await using ch = await ClickHouseServer.start()`.
 *
 * It writes its own config (ports, data paths, a passwordless `default` user, file logs) into
 * a temporary directory, starts Debian's `clickhouse-server` (or `clickhouse server` from a
 * multi-binary) on free loopback ports, waits for `/ping`, and on dispose stops the server
 * and removes the directory. Override the binary with TRIBUTARY_TEST_CLICKHOUSE_BIN.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ServerProcess, waitUntil } from './common.js';

function binary(): { cmd: string; pre: string[] } {
  const env = process.env.TRIBUTARY_TEST_CLICKHOUSE_BIN;
  if (env) return { cmd: env, pre: /clickhouse$/.test(env) ? ['server'] : [] };
  if (existsSync('/usr/sbin/clickhouse-server')) return { cmd: '/usr/sbin/clickhouse-server', pre: [] };
  if (existsSync('/usr/bin/clickhouse-server')) return { cmd: '/usr/bin/clickhouse-server', pre: [] };
  return { cmd: '/usr/bin/clickhouse', pre: ['server'] };
}

export class ClickHouseServer implements AsyncDisposable {
  private constructor(
    readonly url: string,
    readonly dir: string,
    private readonly proc: ServerProcess,
  ) {}

  static async start(): Promise<ClickHouseServer> {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-clickhouse-'));
    const [http, tcp] = [await freePort(), await freePort()];
    for (const d of ['data', 'tmp', 'user_files', 'format_schemas', 'log']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(
      join(dir, 'users.xml'),
      `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`,
    );
    writeFileSync(
      join(dir, 'config.xml'),
      `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/log/server.log</log>
    <errorlog>${dir}/log/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <timezone>UTC</timezone>
</yandex>
`,
    );
    const { cmd, pre } = binary();
    const proc = ServerProcess.start(cmd, [...pre, `--config-file=${dir}/config.xml`], { cwd: dir });
    const url = `http://127.0.0.1:${http}`;
    try {
      await waitUntil(async () => (await fetch(`${url}/ping`)).ok, 'clickhouse /ping', proc, 60_000);
    } catch (err) {
      await proc.stop(2000);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return new ClickHouseServer(url, dir, proc);
  }

  /** Run one statement over HTTP; returns the response body (throws with ClickHouse's message). */
  async query(sql: string, database = 'default'): Promise<string> {
    const res = await fetch(`${this.url}/?database=${encodeURIComponent(database)}`, { method: 'POST', body: sql });
    const text = await res.text();
    if (!res.ok) throw new Error(`ClickHouse: ${text.trim()} (query: ${sql.slice(0, 200)})`);
    return text;
  }

  /** Run a SELECT and parse its JSONEachRow output. */
  async rows<T = Record<string, unknown>>(sql: string, database = 'default'): Promise<T[]> {
    const text = await this.query(`${sql} FORMAT JSONEachRow`, database);
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as T);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.proc.stop();
    if (!process.env.TRIBUTARY_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}
