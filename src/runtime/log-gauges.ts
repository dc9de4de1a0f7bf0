import type { Logger } from 'pino';
import { lagOf, logInfo, startOffset, type Lag, type LogInfo } from './log-info.js';
import { liveLogView } from '../log/view.js';
import type { LogStream } from '../stream/log-stream.js';
import type { Metrics } from './metrics.js';
import type { SinkRunner } from './sink-runner.js';

/** The log's facts, and each sink's lag from its committed offset, as last measured. */
export interface LogSummary {
  info: Omit<LogInfo, 'sinks'>;
  lags: Map<string, Lag>;
}

/**
 * The log's gauges on `/metrics` and its block in `/status`, measured once a second by the
 * pipeline (a few reads: the first commit time is remembered, a lag reads one record).
 */
export class LogGauges {
  summary: LogSummary | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly stream: LogStream,
    private readonly pipeline: string,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** Measure again unless a measure is still running. */
  update(runners: readonly SinkRunner[], now = Date.now()): void {
    this.running ??= this.measure(runners, now).finally(() => (this.running = null));
  }

  private async measure(runners: readonly SinkRunner[], now: number): Promise<void> {
    try {
      const view = liveLogView(this.stream);
      const { sinks: _none, ...info } = await logInfo(view, [], now);
      const lags = new Map<string, Lag>();
      for (const r of runners) {
        const from = r.rebuild ? view.log.start : (r.offset ?? startOffset(view.log, r.sink.base.start, r.position !== null));
        lags.set(r.name, await lagOf(view.log, from, now));
      }
      this.summary = { info, lags };
      const m = this.metrics;
      const l = { pipeline: this.pipeline };
      const secs = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : 0);
      m.set('tributary_log_bytes', info.bytes, l);
      m.set('tributary_log_segments', info.segments, l);
      m.set('tributary_log_first_offset', info.offsets.first, l);
      m.set('tributary_log_last_offset', info.offsets.last ?? -1, l);
      m.set('tributary_log_first_timestamp_seconds', secs(info.times.firstCommit), l);
      m.set('tributary_log_last_timestamp_seconds', secs(info.times.lastCommit), l);
      m.set('tributary_log_horizon_offset', info.horizon?.offset ?? 0, l);
      m.set('tributary_log_horizon_timestamp_seconds', secs(info.horizon?.time), l);
      for (const [sink, lag] of lags) m.set('tributary_sink_lag_bytes', lag.bytes, { pipeline: this.pipeline, sink });
      for (const r of runners) if (r.offset !== null) m.set('tributary_sink_committed_offset', r.offset, { pipeline: this.pipeline, sink: r.name });
    } catch (err) {
      // A segment removed by retention under a read: the next tick measures again.
      this.logger.debug({ err }, 'log gauges not updated');
    }
  }
}
