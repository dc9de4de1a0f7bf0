/**
 * Logs for a person at a terminal. Outside a terminal the process logs pino JSON lines (for
 * collectors); on a TTY each line is rewritten as a short human line (time, level, message,
 * key fields) and, while progress bars are drawn, printed above them by the bars themselves,
 * so a log line neither glues onto a bar nor leaves a stale copy of one behind.
 */

/** Something drawn at the bottom of the terminal (progress bars) that prints lines above itself. */
export interface Overlay {
  /** Print `text` (ending in a newline) above the overlay, at its next redraw. */
  log(text: string): void;
}

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[90m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[41m'],
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** pino's own fields, and the message: not repeated as key fields. */
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v']);
const MAX_VALUE = 160;

function two(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** One key field's value, short: errors by their message (and code), long values cut. */
function fieldValue(v: unknown): string {
  let s: string;
  if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
    const e = v as { message: string; code?: unknown };
    s = e.code !== undefined ? `${String(e.code)} ${e.message}` : e.message;
    s = JSON.stringify(s);
  } else if (typeof v === 'string') s = /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  else s = JSON.stringify(v) ?? String(v);
  return s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE - 1)}…` : s;
}

/**
 * A pino JSON line as a human line: `12:00:01.234 INFO  message key=value …`, ending in a
 * newline. A line that is not JSON passes through unchanged.
 */
export function formatLogLine(json: string, opts: { color?: boolean } = {}): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const d = new Date(typeof o.time === 'number' ? o.time : Date.now());
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${two(d.getMilliseconds(), 3)}`;
  const [label, color] = LEVELS[Number(o.level)] ?? [String(o.level).toUpperCase().padEnd(5), ''];
  const fields: string[] = [];
  for (const [k, v] of Object.entries(o)) if (!SKIP.has(k) && v !== undefined) fields.push(`${k}=${fieldValue(v)}`);
  const msg = typeof o.msg === 'string' ? o.msg.replace(/\n/g, '\n    ') : '';
  if (!opts.color) return `${time} ${label} ${msg}${fields.length ? `  ${fields.join(' ')}` : ''}\n`;
  return `${DIM}${time}${RESET} ${color}${label}${RESET} ${msg}${fields.length ? `  ${DIM}${fields.join(' ')}${RESET}` : ''}\n`;
}

/**
 * The destination of the process logger on a TTY: pino writes each JSON line here; it is
 * formatted and written to the terminal, or handed to the overlay while one is drawn.
 */
export class TerminalLog {
  private overlay: Overlay | null = null;

  constructor(
    private readonly out: { write(s: string): unknown },
    private readonly color = true,
  ) {}

  /** pino's stream interface: one JSON line. */
  write(line: string): void {
    const text = formatLogLine(line, { color: this.color });
    if (this.overlay) this.overlay.log(text);
    else this.out.write(text);
  }

  /** Route log lines through `o` while it is on screen; null when it is gone. */
  setOverlay(o: Overlay | null): void {
    this.overlay = o;
  }
}

let stderrLog: TerminalLog | null = null;

/**
 * The terminal logger of this process's stderr when stderr is a TTY (and logs were not asked
 * for as JSON with `TRIBUTARY_LOG_FORMAT=json`), else null. One per process: progress bars
 * register with it as its overlay.
 */
export function stderrTerminal(): TerminalLog | null {
  if (!process.stderr.isTTY || process.env.TRIBUTARY_LOG_FORMAT === 'json') return null;
  return (stderrLog ??= new TerminalLog(process.stderr, !process.env.NO_COLOR));
}
