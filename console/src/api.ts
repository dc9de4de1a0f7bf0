// Every data call of the console: the admin API of the same origin, with the token (if the
// operator gave one) as `Authorization: Bearer`. The token lives in sessionStorage: it is
// forgotten when the tab closes, and never stored in a cookie the browser would send by itself.

const KEY = 'tributary.token';

export function getToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
  needsToken = false; // the next call tells whether the new token is accepted
  for (const f of listeners) f();
}

const listeners = new Set<() => void>();
/** Called when the token changes or the server refuses it (the login form shows again). */
export function onAuthChange(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** A refusal of the API, with its code and fix when the server gave them. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    readonly fix?: string,
  ) {
    super(message);
  }
}

/** True after the server said 401: the console asks for the token. */
export let needsToken = false;

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const token = getToken();
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { error: text };
  }
  if (res.status === 401) {
    needsToken = true;
    for (const f of listeners) f();
  }
  if (!res.ok) throw new ApiError(res.status, json?.error ?? `${res.status} ${res.statusText}`, json?.code, json?.fix);
  needsToken = false;
  return json as T;
}

export const api = {
  get: <T>(path: string) => call<T>('GET', path),
  post: <T>(path: string, body: unknown) => call<T>('POST', path, body),
};

/** `?a=1&b=2` from the defined values. */
export function qs(params: Record<string, string | number | null | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
