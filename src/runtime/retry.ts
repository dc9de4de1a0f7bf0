/**
 * What the runtime's retry loops use, in one import: the backoff helpers (src/core/backoff.ts,
 * where the SDK can re-export them without importing the runtime) and the error
 * classification that decides whether to retry (./error-class.ts).
 */
export { sleep, backoffDelay } from '../core/backoff.js';
export { isRetryableError } from './error-class.js';
