/**
 * The constant pieces of a change-event envelope, as bytes, for sources that write
 * envelopes into a {@link JsonBytes} scratch buffer. The key order is the envelope's (see
 * event.ts): `op`, `before`, `after`, `key`, `source`, `ts_ms`.
 */
import type { JsonBytes } from './json-bytes.js';

/** `{"op":"c","before":null` — an insert has no before image. */
export const HEAD_INSERT = Buffer.from('{"op":"c","before":null');
/** `{"op":"u","before":` */
export const HEAD_UPDATE = Buffer.from('{"op":"u","before":');
/** `{"op":"d","before":` */
export const HEAD_DELETE = Buffer.from('{"op":"d","before":');
/** `,"after":` */
export const AFTER = Buffer.from(',"after":');
/** `,"after":null` — a delete has no after image. */
export const AFTER_NULL = Buffer.from(',"after":null');
/** `,"key":` */
export const KEY = Buffer.from(',"key":');

/** Appends one of the pieces above. */
export function put(w: JsonBytes, piece: Buffer): void {
  w.raw(piece, 0, piece.length);
}

/** Appends `,"key":` and notes that the key's value starts here (see JsonBytes.keyFrom). */
export function putKey(w: JsonBytes): void {
  w.raw(KEY, 0, KEY.length);
  w.keyFrom = w.n - w.mark;
}

/** Notes that the key's value ends here: call right after writing it. */
export function keyWritten(w: JsonBytes): void {
  w.keyTo = w.n - w.mark;
}
