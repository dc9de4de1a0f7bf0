import type { Logger } from 'pino';
import { errorMessage, errorSummary } from '../core/errors.js';
import type { ResolvedPipeline } from '../config/load.js';
import { classifyError, type ErrorClass } from './error-class.js';
import type { Metrics } from './metrics.js';
import { Pipeline, type FailureOrigin } from './pipeline.js';
import { backoffDelay, sleep } from './retry.js';
import { RECONNECT_PACE, SourceLinkMonitor } from './source-link.js';
import { ALL_ROLES, type RoleSpec } from './roles.js';

/**
 * - `starting`: an attempt is connecting and preparing;
 * - `waiting`: the database is unreachable (or refuses a login that worked before); the next
 *   attempt comes after a backoff;
 * - `running`: streaming (the source may still be reconnecting: see `source.up`);
 * - `restarting`: the last attempt failed for another reason; a fresh one comes after a backoff;
 * - `draining`, `stopped`; `failed`: for good (a config error, TRB2200, TRB2201, a sink that
 *   stopped by its `dead_letter.policy: stop`).
 */
export type SupervisorState = 'starting' | 'waiting' | 'running' | 'restarting' | 'draining' | 'stopped' | 'failed';

/** Pace of fresh attempts after a failure that is not the database being away. */
export const RESTART_PACE = {
  /** A bug or an unexpected error: 2 s doubling to 5 minutes, so a crash loop costs little. */
  unknown: { baseMs: 2_000, maxMs: 300_000 },
  /** An attempt that ran this long was healthy: the backoff starts over at its failure. */
  healthyAfterMs: 60_000,
} as const;

/** What `/readyz` and `/status` read from a pipeline (see http/server.ts). */
export interface PipelineView {
  readonly name: string;
  readonly state: string;
  ready(): boolean;
  /** Why a running pipeline is not ready (a failed initial snapshot), or null. */
  problem(): string | null;
  status(): Record<string, unknown>;
}

/**
 * Runs one pipeline for the life of the process: each attempt is a new {@link Pipeline} (a
 * new source, new connections, sinks reopened at their checkpoints; a broken one is never
 * reused), and a failed attempt is followed by another unless retrying cannot help. One
 * pipeline's failure never stops the others.
 *
 * What happens to a failed attempt, by class of error (error-class.ts) and origin:
 * - the database unreachable or lost (transient, from the source): wait and start again,
 *   paced and logged by the {@link SourceLinkMonitor}, for ever or until
 *   `source.reconnect.max_elapsed`; a refused login likewise, slowly, if it worked before;
 * - a config error (bad settings, missing privilege, a lost slot without `when_needed`, a
 *   purged binlog, a poison event under `dead_letter.policy: stop`): the pipeline fails for good;
 * - anything else (an unknown error, or a sink target or state store that is unreachable):
 *   a fresh attempt from the checkpoints, after a backoff that grows while attempts keep
 *   failing (2 s to 5 minutes; 0.5 s to 5 s when the error was transient).
 */
export class PipelineSupervisor implements PipelineView {
  readonly name: string;
  state: SupervisorState = 'starting';
  /** The current attempt. */
  pipeline: Pipeline | null = null;
  readonly link: SourceLinkMonitor;
  /** Set when the pipeline failed for good. */
  error: Error | null = null;
  /** Attempts made (the first start included). */
  attempts = 0;
  /** Fresh attempts after a failure (start-up waits for the database included). */
  restarts = 0;
  /** The last failure, kept after a recovery so `/status` can say what happened. */
  lastFailure: { error: string; class: ErrorClass; origin: FailureOrigin; at: number } | null = null;
  private nextRetryAt: number | null = null;
  /** Consecutive failed attempts that were not the database being away (for their backoff). */
  private streak = 0;
  private readonly ac = new AbortController();
  private loop?: Promise<void>;
  private stopping?: Promise<void>;

  constructor(
    readonly resolved: ResolvedPipeline,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    /** The parts of the pipeline this process runs (`run --role`, `--sink`). */
    readonly role: RoleSpec = ALL_ROLES,
  ) {
    this.name = resolved.config.name;
    this.link = new SourceLinkMonitor({ pipeline: this.name, logger, metrics, maxElapsedMs: resolved.config.source.reconnect.max_elapsed });
  }

  /** Starts the attempts in the background; {@link done} resolves when they end. */
  start(): void {
    this.loop ??= this.run().finally(() => this.link.close());
  }

  /** The running attempt's snapshot coordinator (none while starting, waiting or restarting). */
  get snapshots(): Pipeline['snapshots'] {
    return this.state === 'running' ? this.pipeline?.snapshots : undefined;
  }

  /** Resolves when the pipeline has stopped or failed for good. */
  get done(): Promise<void> {
    this.start();
    return this.loop!;
  }

  private async run(): Promise<void> {
    const signal = this.ac.signal;
    while (!signal.aborted) {
      const p = new Pipeline(this.resolved, this.logger, this.metrics, { link: this.link, role: this.role });
      this.pipeline = p;
      this.attempts++;
      if (this.state !== 'waiting') this.state = 'starting';
      try {
        await p.start();
      } catch (err) {
        await p.close();
        if (signal.aborted) break;
        if (await this.retryAfter(err, p.errorOrigin, 'start')) continue;
        break;
      }
      if (signal.aborted) {
        // stop() came while this attempt was starting.
        await p.drainAndStop();
        break;
      }
      this.state = 'running';
      const startedAt = Date.now();
      await p.done;
      // Stopped by stop(), or ended by itself (initial_only done, source finished).
      if (signal.aborted || p.state !== 'failed') break;
      if (Date.now() - startedAt >= RESTART_PACE.healthyAfterMs) this.streak = 0;
      if (!(await this.retryAfter(p.error, p.errorOrigin, 'run'))) break;
    }
    this.state = this.error ? 'failed' : 'stopped';
  }

  /**
   * Decides what a failed attempt leads to, logs it, and waits. False when the pipeline has
   * failed for good (or is stopping).
   */
  private async retryAfter(err: unknown, origin: FailureOrigin, when: 'start' | 'run'): Promise<boolean> {
    const cls = classifyError(err);
    const msg = errorSummary(err);
    let delay: number;
    try {
      if (origin === 'source' && (cls === 'transient' || cls === 'auth')) {
        // The database is away: the link logs the outage once and paces the attempts.
        delay = this.link.retryDelay(err, cls);
        this.state = 'waiting';
      } else if (cls === 'config') {
        throw err;
      } else {
        this.streak++;
        const pace = cls === 'unknown' ? RESTART_PACE.unknown : RECONNECT_PACE[cls];
        delay = backoffDelay(this.streak, pace.baseMs, pace.maxMs);
        this.state = 'restarting';
        this.logger.error(
          { err, class: cls, restart: this.restarts + 1, delayMs: delay },
          `pipeline ${this.name} ${when === 'start' ? 'could not start' : 'failed'}: ${msg}; starting it again from its checkpoints in ${(delay / 1000).toFixed(1)} s`,
        );
      }
    } catch (final) {
      this.error = final instanceof Error ? final : new Error(String(final));
      this.lastFailure = { error: errorMessage(final), class: classifyError(final), origin, at: Date.now() };
      // A failure while running was logged by the pipeline; one at start-up is logged here.
      if (when === 'start' || final !== err) this.logger.error({ err: final }, `pipeline ${this.name} failed: ${errorMessage(final)}`);
      return false;
    }
    this.lastFailure = { error: msg, class: cls, origin, at: Date.now() };
    this.restarts++;
    this.metrics.inc('tributary_pipeline_restarts_total', 1, { pipeline: this.name });
    this.nextRetryAt = Date.now() + delay;
    await sleep(delay, this.ac.signal);
    this.nextRetryAt = null;
    return !this.ac.signal.aborted;
  }

  /**
   * Stops for good: a running attempt drains (sinks commit what the stream holds), a waiting
   * one stops at once, a starting one stops at its next step. Idempotent.
   */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      this.ac.abort();
      const p = this.pipeline;
      if (p && this.state === 'running') {
        this.state = 'draining';
        await p.drainAndStop();
      } else p?.abort();
      await this.loop;
    })());
  }

  /** Streaming with the database connected, and no sink failed. */
  ready(): boolean {
    return this.state === 'running' && this.link.isUp && !!this.pipeline && this.pipeline.state === 'running' && this.pipeline.runners.every((r) => !r.failed) && !this.problem();
  }

  problem(): string | null {
    return this.pipeline?.snapshots?.readinessProblem ?? null;
  }

  /** For `/status` and `tributary status`: the attempt's positions and lag, and why it is not running. */
  status(): Record<string, unknown> {
    const p = this.pipeline;
    const now = Date.now();
    return {
      ...(p ? p.status() : { sinks: [] }),
      name: this.name,
      role: this.role.role,
      state: this.state,
      error: this.error ? errorMessage(this.error) : this.state === 'running' ? (p?.error ? errorMessage(p.error) : null) : (this.lastFailure?.error ?? null),
      source: this.link.status(),
      attempts: this.attempts,
      restarts: this.restarts,
      lastFailure: this.lastFailure && { ...this.lastFailure, at: new Date(this.lastFailure.at).toISOString() },
      nextRetryAt: this.nextRetryAt !== null && this.nextRetryAt > now ? new Date(this.nextRetryAt).toISOString() : null,
    };
  }
}
