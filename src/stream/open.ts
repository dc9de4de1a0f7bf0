import type { Logger } from 'pino';
import type { PipelineConfig } from '../config/schema.js';
import type { Position } from '../core/source.js';
import { LogStream, logDir } from './log-stream.js';
import { MemoryStream } from './memory-stream.js';
import type { EventStream } from './types.js';

/** Where a pipeline keeps its files (the log among them): `state.dir`, or `./.tributary` with the Redis store. */
export function pipelineStateDir(cfg: PipelineConfig): string {
  return cfg.state.type === 'file' ? cfg.state.dir : './.tributary';
}

/** The directory of a pipeline's log. */
export function pipelineLogDir(cfg: PipelineConfig): string {
  return logDir(pipelineStateDir(cfg), cfg.name);
}

/**
 * The stream a pipeline's `stream:` block names. The log lives under the state directory
 * (`<state.dir>/<pipeline>/log`), next to the checkpoints that point into it.
 */
export async function openStream(cfg: PipelineConfig, stateDir: string, parse: (s: string) => Position, logger: Logger, opts: { readOnly?: boolean } = {}): Promise<EventStream> {
  const s = cfg.stream;
  if (s.type !== 'log') return new MemoryStream(s.max_bytes);
  return LogStream.open({
    dir: logDir(stateDir, cfg.name),
    parse,
    logger,
    readOnly: opts.readOnly,
    tailBytes: s.max_bytes,
    followMs: s.follow,
    log: { segmentBytes: s.segment_bytes, compression: s.compression },
    retention: { maxAgeMs: s.retention.max_age, maxBytes: s.retention.max_bytes },
    compaction: { enabled: s.compaction.enabled, tombstonesMs: s.compaction.tombstones },
  });
}
