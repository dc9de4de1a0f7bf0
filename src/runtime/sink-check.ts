import type { Logger } from 'pino';
import type { ResolvedPipeline } from '../config/load.js';
import type { SinkProblem } from '../sdk/index.js';

/** The outcome of one sink's preflight. */
export interface SinkCheckResult {
  sink: string;
  type: string;
  /** False when the sink has no `check()`. */
  checked: boolean;
  problems: SinkProblem[];
}

/**
 * Run every sink's `check()` (the SDK's optional preflight) for `tributary validate
 * --check-source`, all of a pipeline's sinks at once. A check that throws, or has not settled
 * after `timeoutMs`, reports one problem: validation must finish, whatever a plugin does.
 */
export async function checkSinks(p: ResolvedPipeline, logger: Logger, timeoutMs = 10_000): Promise<SinkCheckResult[]> {
  return Promise.all(
    p.sinks.map(async (s): Promise<SinkCheckResult> => {
      const base = { sink: s.base.name, type: s.base.type };
      const check = s.definition.check;
      if (!check) return { ...base, checked: false, problems: [] };
      const ac = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<SinkProblem[]>((resolve) => {
        timer = setTimeout(() => {
          ac.abort();
          resolve([{ message: `the check did not finish within ${timeoutMs / 1000} s`, fix: 'check that the target is reachable (a firewall that drops packets looks like this)' }]);
        }, timeoutMs);
      });
      try {
        const run = Promise.resolve()
          .then(() => check.call(s.definition, s.config, { logger, signal: ac.signal, pipeline: p.config.name, sinkName: s.base.name }))
          .catch((err: unknown): SinkProblem[] => [{ message: err instanceof Error ? err.message : String(err), fix: 'see the message' }]);
        return { ...base, checked: true, problems: (await Promise.race([run, timeout])) ?? [] };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}
