/**
 * A private redis-server for tests that must configure, kill or restart Redis (never the
 * shared one on 6379): `await using r = await RedisServer.start({ appendonly: 'yes', appendfsync: 'always' })`.
 *
 * It runs on a free loopback port with its own data directory, which outlives `kill()` so
 * that `restart()` comes back with the same AOF/RDB files. Dispose stops it and removes the
 * directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, ServerProcess, waitUntil } from './common.js';

export interface RedisServerOptions {
  appendonly?: 'yes' | 'no';
  appendfsync?: 'always' | 'everysec' | 'no';
}

export class RedisServer implements AsyncDisposable {
  private proc!: ServerProcess;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly o: RedisServerOptions,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(o: RedisServerOptions = {}): Promise<RedisServer> {
    const r = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'tributary-redis-')), o);
    try {
      await r.launch();
    } catch (err) {
      rmSync(r.dir, { recursive: true, force: true });
      throw err;
    }
    return r;
  }

  private async launch(): Promise<void> {
    this.proc = ServerProcess.start('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--appendonly', this.o.appendonly ?? 'no', '--appendfsync', this.o.appendfsync ?? 'everysec',
      // No RDB snapshots: what survives a kill is exactly what the AOF holds.
      '--save', '', '--daemonize', 'no', '--protected-mode', 'yes',
    ]);
    await waitUntil(async () => {
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    }, `redis-server on ${this.port}`, this.proc, 30_000);
  }

  get running(): boolean {
    return this.proc.running;
  }

  /** SIGKILL the server (no shutdown save, no AOF rewrite). */
  async kill(): Promise<void> {
    if (this.proc.running) this.proc.child.kill('SIGKILL');
    await this.proc.exited;
  }

  /** Start it again on the same port and directory. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** A short-lived client for assertions. */
  async client<T>(fn: (c: Redis) => Promise<T>): Promise<T> {
    const c = new Redis(this.url, { maxRetriesPerRequest: 1 });
    c.on('error', () => undefined);
    try {
      return await fn(c);
    } finally {
      c.disconnect();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
    if (!process.env.TRIBUTARY_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}
