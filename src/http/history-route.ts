import type { ServerResponse } from 'node:http';
import type { LagHistory } from '../runtime/lag-history.js';

/**
 * `GET /history[?pipeline=P][&sink=S]`: the last hour of each sink's lag and throughput, for the
 * console's charts: `{ interval_ms, series: [{ pipeline, sink, points: [[t, lag_events,
 * lag_bytes, lag_seconds, events_per_s]] }] }` (docs/admin-api.md).
 */
export function historyRoute(history: LagHistory): (url: URL, res: ServerResponse) => Promise<void> {
  return async (url, res) => {
    const body = history.body({ pipeline: url.searchParams.get('pipeline'), sink: url.searchParams.get('sink') });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
}
