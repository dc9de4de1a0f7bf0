import { pino, type Logger } from 'pino';
import { stderrTerminal } from './terminal-log.js';

/** Replace the password of every URL in a string with `***`. */
export function redactUrl(s: string): string {
  return s.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^@\s]*)@/gi, '$1***@');
}


/**
 * The process logger: JSON lines on stderr, or readable lines when stderr is a terminal
 * (`TRIBUTARY_LOG_FORMAT=json` keeps JSON there too). Secrets never reach the output: known
 * secret paths are censored by pino's redaction, and every string passes through the
 * URL-password scrubber in a formatter (errors carry connection strings in their messages
 * more often than not).
 */
export function createLogger(opts: { level?: string; destination?: number } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      redact: {
        paths: ['password', '*.password', 'url', '*.url', '*.*.url', 'config.source.url', 'connectionString', '*.connectionString', 'auth_token', '*.auth_token', 'authorization', '*.authorization', '*.headers.authorization'],
        censor: (v: unknown) => (typeof v === 'string' ? redactUrl(v).replace(/^(?![a-z]+:\/\/).+$/i, '***') : '***'),
      },
      formatters: {
        log(obj) {
          for (const k of Object.keys(obj)) {
            const v = obj[k];
            if (typeof v === 'string') obj[k] = redactUrl(v);
            else if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
              // A serialized error: its message and stack often quote a connection string.
              const e = v as { message: string; stack?: string };
              obj[k] = { ...e, message: redactUrl(e.message), stack: e.stack ? redactUrl(e.stack) : undefined };
            }
          }
          return obj;
        },
      },
      hooks: {
        logMethod(args, method) {
          if (typeof args[args.length - 1] === 'string') args[args.length - 1] = redactUrl(args[args.length - 1] as string);
          return method.apply(this, args as Parameters<typeof method>);
        },
      },
    },
    // On a terminal: short human lines, printed above any progress bars (terminal-log.ts);
    // elsewhere JSON lines.
    ((opts.destination ?? 2) === 2 && stderrTerminal()) || pino.destination({ dest: opts.destination ?? 2, sync: false }),
  );
}
