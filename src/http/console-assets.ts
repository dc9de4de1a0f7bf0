import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, TributaryError } from '../core/errors.js';

/**
 * The web console's built files (`console/dist/`, committed and shipped in the package, so
 * `tributary run` serves them with no build step). The shell itself is public: it holds no
 * data, and every data call it makes carries the admin token (docs/console.md).
 */

/** Where the built console lives: `<package>/console/dist` (this file is `dist/src/http/`). */
export const CONSOLE_DIR = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The console's Content-Security-Policy: scripts and styles only from this origin (no inline
 * script, no eval), data only from this origin's API, never framed.
 */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** True for the paths of the console's shell: `/`, `/index.html` and `/assets/*`, served without the token. */
export function isConsoleShell(path: string): boolean {
  return path === '/' || path === '/index.html' || path === '/favicon.svg' || path.startsWith('/assets/');
}

interface Asset {
  body: Buffer;
  type: string;
  /** Hashed file names never change content: cache them for a year. */
  immutable: boolean;
}

/**
 * Serves the console from `dir`. The file list is read once, at the first request: a request
 * can only name a file that was listed, so `..` and encoded separators cannot reach anything else.
 */
export class ConsoleAssets {
  private files: Map<string, Asset> | null = null;

  constructor(private readonly dir = CONSOLE_DIR) {}

  private load(): Map<string, Asset> {
    if (this.files) return this.files;
    const files = new Map<string, Asset>();
    const walk = (d: string) => {
      let names: string[];
      try {
        names = readdirSync(d);
      } catch {
        return;
      }
      for (const n of names) {
        const full = join(d, n);
        if (statSync(full).isDirectory()) walk(full);
        else {
          const rel = '/' + relative(this.dir, full).split(sep).join('/');
          files.set(rel, { body: readFileSync(full), type: TYPES[extname(n)] ?? 'application/octet-stream', immutable: rel.startsWith('/assets/') });
        }
      }
    };
    walk(this.dir);
    return (this.files = files);
  }

  /** Answers a shell path; a missing build is a 404 with TRB6020 naming the fix. */
  serve(path: string, res: ServerResponse, head = false): void {
    const files = this.load();
    const asset = files.get(path === '/' ? '/index.html' : path);
    const security = { 'content-security-policy': CONSOLE_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };
    if (!asset) {
      const missing = !files.has('/index.html');
      const err = missing
        ? new TributaryError(ErrorCodes.CONSOLE_MISSING, `the web console's built files are missing from ${this.dir}`, { fix: 'run `npm run console:build` in the Tributary checkout (a published package ships them)' })
        : new TributaryError(ErrorCodes.CONSOLE_MISSING, `${path} is not a file of the web console`, { fix: 'open / ; asset names change with every console build, so reload the page' });
      res.writeHead(404, { 'content-type': 'application/json', ...security });
      res.end(JSON.stringify({ error: `${err.code} ${err.message}`, code: err.code, fix: err.fix }));
      return;
    }
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': String(asset.body.length),
      'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...security,
    });
    res.end(head ? undefined : asset.body);
  }
}
