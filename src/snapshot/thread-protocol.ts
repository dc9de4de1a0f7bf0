/**
 * The messages between the main thread and a snapshot reader thread, and how an error
 * crosses between them: a {@link TributaryError} arrives as a TributaryError with the same
 * code, fix and retryability; any other error keeps its message and its driver fields
 * (`code`, `errno`, `sqlState`), which the connectors' error handling looks at.
 */
import { TributaryError, type ErrorCode } from '../core/errors.js';
import type { PackedRows } from './packed-rows.js';
import type { ChunkBounds, SnapshotTable } from './types.js';

export type ThreadRequest =
  | { id: number; op: 'open'; reader: number }
  | { id: number; op: 'watermark'; reader: number; wid: string; mark: 'low' | 'high' }
  | { id: number; op: 'read'; reader: number; table: SnapshotTable; chunk: ChunkBounds; where: string | null }
  | { id: number; op: 'close'; reader: number };

export interface ThreadReply {
  id: number;
  rows?: PackedRows;
  error?: SerializedError;
}

export interface SerializedError {
  tributary: boolean;
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
  errno?: unknown;
  sqlState?: unknown;
  fix?: string;
  retryable?: boolean;
}

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { tributary: false, name: 'Error', message: String(err) };
  const e = err as Error & { code?: unknown; errno?: unknown; sqlState?: unknown };
  const out: SerializedError = { tributary: err instanceof TributaryError, name: e.name, message: e.message, stack: e.stack };
  if (e.code !== undefined) out.code = e.code;
  if (e.errno !== undefined) out.errno = e.errno;
  if (e.sqlState !== undefined) out.sqlState = e.sqlState;
  if (err instanceof TributaryError) {
    out.fix = err.fix;
    out.retryable = err.retryable;
  }
  return out;
}

export function deserializeError(s: SerializedError): Error {
  if (s.tributary) {
    const err = new TributaryError(s.code as ErrorCode, s.message, { fix: s.fix, retryable: s.retryable });
    if (s.stack) err.stack = s.stack;
    return err;
  }
  const err = new Error(s.message) as Error & Record<string, unknown>;
  err.name = s.name;
  if (s.stack) err.stack = s.stack;
  for (const k of ['code', 'errno', 'sqlState'] as const) if (s[k] !== undefined) err[k] = s[k];
  return err;
}
