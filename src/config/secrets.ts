import { readFileSync } from 'node:fs';
import { ConfigError, ErrorCodes } from '../core/errors.js';

/**
 * Secrets in a config: connection URLs (checked without ever echoing them), `password:` /
 * `password_file:` fields, and token files. Every error here names the field and its
 * file:line, never the value: a malformed URL is usually malformed because of its password.
 */

const ENCODE_HINT = 'percent-encode special characters in a URL password (# is %23, % is %25, @ is %40, / is %2F, ? is %3F, : is %3A), or move the password to a `password:` or `password_file:` field';

/**
 * Throw a coded error when `url` (the value of `field`, at `where` = `file:line`) is not a
 * URL a driver would read as written. The message never contains any part of the URL.
 *
 * Caught: an unparsable URL; a `#` (drivers take the rest as a fragment, and an error then
 * quoted it as a host name); a `?` or `@` that moved the password into the query string;
 * a `%` not followed by two hex digits in the user or password.
 */
export function checkUrl(url: string, field: string, where: string): URL | null {
  if (!url.includes('://')) return null; // a socket path or a plain host: nothing to parse
  const fail = (what: string) =>
    new ConfigError(ErrorCodes.CONFIG_URL, `${where}: ${field}: ${what} (the value is not shown, since it may hold a password)`, { fix: ENCODE_HINT });
  if (url.includes('#')) throw fail('the URL holds a "#", which ends a URL: the rest would be read as a fragment');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw fail('not a valid URL');
  }
  if (u.search.includes('@')) throw fail('the URL holds a "?" before its "@": the password would be read as a query string');
  for (const part of [u.username, u.password]) {
    try {
      decodeURIComponent(part);
    } catch {
      throw fail('the user or password holds a "%" that does not start a percent-encoded byte');
    }
  }
  return u;
}

/** Read a secret from a file (a mounted Secret): its text without surrounding whitespace. */
export function readSecretFile(path: string, field: string, where: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(ErrorCodes.CONFIG_SECRET_FILE, `${where}: ${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      fix: 'mount the secret at that path (relative paths start at the config file\'s directory) and make it readable by this user',
    });
  }
  const secret = text.trim();
  if (!secret) {
    throw new ConfigError(ErrorCodes.CONFIG_SECRET_FILE, `${where}: ${field}: ${path} is empty`, { fix: 'write the secret into the file' });
  }
  return secret;
}

/**
 * The password of a block from `password:` or `password_file:` (at most one of them, and not
 * also inside `url`), or undefined when neither is set.
 */
export function blockPassword(block: { url?: unknown; password?: unknown; password_file?: unknown }, prefix: string, where: string): string | undefined {
  const inline = typeof block.password === 'string' && block.password !== '' ? block.password : undefined;
  const file = typeof block.password_file === 'string' && block.password_file !== '' ? block.password_file : undefined;
  if (inline !== undefined && file !== undefined) {
    throw new ConfigError(ErrorCodes.CONFIG_SECRET_TWICE, `${where}: ${prefix}: both password and password_file are set`, { fix: 'keep one of them' });
  }
  const password = file !== undefined ? readSecretFile(file, `${prefix}.password_file`, where) : inline;
  if (password !== undefined && typeof block.url === 'string' && block.url.includes('://')) {
    const u = checkUrl(block.url, `${prefix}.url`, where);
    if (u?.password) {
      throw new ConfigError(ErrorCodes.CONFIG_SECRET_TWICE, `${where}: ${prefix}: the url holds a password and ${file !== undefined ? 'password_file' : 'password'} is set too`, {
        fix: 'remove the password from the url',
      });
    }
  }
  return password;
}

/**
 * `url` with `password` put into it, percent-encoded, so every driver that reads the URL
 * (pg, mysql2, the binlog client) decodes it back exactly, whatever characters it holds.
 */
export function urlWithPassword(url: string, password: string, field: string, where: string): string {
  const u = checkUrl(url, field, where);
  if (!u) {
    throw new ConfigError(ErrorCodes.CONFIG_URL, `${where}: ${field}: a password field needs a URL such as postgres://user@host:5432/db`, { fix: 'write the connection as a URL' });
  }
  if (!u.host) {
    throw new ConfigError(ErrorCodes.CONFIG_URL, `${where}: ${field}: a URL without a host cannot carry a password`, { fix: 'name the host in the URL, or authenticate without a password (a local socket)' });
  }
  if (!u.username) {
    throw new ConfigError(ErrorCodes.CONFIG_URL, `${where}: ${field}: the URL names no user for the password`, { fix: 'write the user into the URL: scheme://user@host/...' });
  }
  u.password = encodeURIComponent(password);
  return u.toString();
}
