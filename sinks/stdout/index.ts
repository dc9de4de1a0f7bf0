import { z } from 'zod';
import { defineSink, once, type Row, type SinkEvent } from '../../src/sdk/index.js';

export const StdoutConfig = z.object({
  format: z.enum(['pretty', 'json']).default('pretty').describe('pretty: one readable line per event, coloured on a terminal. json: the envelope.'),
});

const OPS: Record<string, string> = { c: 'INSERT', u: 'UPDATE', d: 'DELETE', r: 'READ  ', t: 'TRUNC ' };
const COLORS: Record<string, string> = { c: '\x1b[32m', u: '\x1b[33m', d: '\x1b[31m', r: '\x1b[36m', t: '\x1b[35m' };

function brief(row: Row | null, max = 6): string {
  if (!row) return '';
  const parts = Object.entries(row)
    .slice(0, max)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.join(' ');
}

/** Shows a changed column as old→new; everything else as is. */
function diff(before: Row | null, after: Row | null): string {
  if (!before || !after) return brief(after ?? before);
  const out: string[] = [];
  for (const [k, v] of Object.entries(after)) {
    const old = before[k];
    if (k in before && JSON.stringify(old) !== JSON.stringify(v)) out.push(`${k}: ${JSON.stringify(old)} → ${JSON.stringify(v)}`);
  }
  return out.length ? out.join(', ') : brief(after);
}

/** For a person watching: one line per event. */
export default defineSink({
  type: 'stdout',
  description: 'Prints events to standard output, readable (pretty) or as JSON lines.',
  config: StdoutConfig,
  create(config) {
    const tty = process.stdout.isTTY;
    return {
      async write(events: readonly SinkEvent[]) {
        let text = '';
        for (const e of events) {
          if (config.format === 'json') {
            text += e.json + '\n';
            continue;
          }
          const ev = e.event;
          const op = OPS[ev.op] ?? ev.op;
          const key = ev.key ? brief(ev.key) : '';
          const line = `${op} ${e.table}${key ? ` [${key}]` : ''}  ${ev.op === 'u' ? diff(ev.before, ev.after) : ev.op === 't' ? '' : brief(ev.after ?? ev.before)}`;
          text += tty ? `${COLORS[ev.op] ?? ''}${line}\x1b[0m\n` : line + '\n';
        }
        await new Promise<void>((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
      },
      close: once(async () => {}),
    };
  },
});
