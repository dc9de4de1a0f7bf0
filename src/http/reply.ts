/** What the admin routes answer, and how a coded refusal becomes one. */
import type { ServerResponse } from 'node:http';
import { ErrorCodes, TributaryError, type ErrorCode } from '../core/errors.js';

/** An HTTP status and a JSON body. */
export type Reply = { status: number; body: unknown };

/**
 * A coded error as a reply: the status from `status` (500 for a code it does not name) and a
 * body with the code, the message and the fix. Anything that is not a TributaryError is a bug,
 * and is rethrown for the server to answer 500.
 */
export function codedReply(err: unknown, status: Partial<Record<ErrorCode, number>>): Reply {
  if (!(err instanceof TributaryError)) throw err;
  return { status: status[err.code] ?? 500, body: { error: `${err.code} ${err.message}`, code: err.code, ...(err.fix ? { fix: err.fix } : {}) } };
}

/** A request the route cannot take (400), with what to send instead. */
export function badRequest(message: string, fix: string): TributaryError {
  return new TributaryError(ErrorCodes.HTTP_BAD_REQUEST, message, { fix });
}

/** Answer with JSON text as it is. */
export function sendJsonText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(text);
}

/** Answer with a reply, its body as indented JSON. */
export function sendReply(res: ServerResponse, r: Reply): void {
  sendJsonText(res, r.status, JSON.stringify(r.body, null, 2));
}
