/**
 * Shared plumbing for the test servers (ClickHouse, searchd): free loopback ports, spawning a
 * server process with its output captured to a file, and stopping it for sure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A spawned server process; `stop()` sends SIGTERM, then SIGKILL after `graceMs`. */
export class ServerProcess {
  output = '';
  readonly exited: Promise<number | null>;
  private done = false;

  constructor(readonly child: ChildProcess) {
    // If the test process ends without disposing (a crash, a suite that threw while being
    // declared), do not leave an orphaned server holding ports and a temp dir.
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.removeListener('exit', reap));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.output = (this.output + d).slice(-20_000)));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.output = (this.output + d).slice(-20_000)));
    this.exited = new Promise((res) =>
      child.once('exit', (code, signal) => {
        this.done = true;
        res(code ?? (signal ? -1 : null));
      }),
    );
  }

  static start(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ServerProcess {
    return new ServerProcess(spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  get running(): boolean {
    return !this.done;
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** Poll until `fn` resolves truthy; fail with `what` and the server's output on timeout. */
export async function waitUntil(fn: () => Promise<boolean>, what: string, server: ServerProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (!server.running) throw new Error(`${what}: the server exited early:\n${server.output.slice(-3000)}`);
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (${(last as Error).message})` : ''}:\n${server.output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
