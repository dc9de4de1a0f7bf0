import { ConfigError, ErrorCodes } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import type { LoadedConfig, ResolvedPipeline } from '../config/load.js';
import { Metrics } from '../runtime/metrics.js';
import { createSource } from '../runtime/source-registry.js';
import { standaloneLink } from '../runtime/source-link.js';
import { openStateStore } from '../state/open.js';

/** Why `pipeline` cannot take snapshot chunk jobs, or null when it can. */
function whyNoJobs(p: ResolvedPipeline): string | null {
  if (!p.config.snapshot.queue) return 'it has no snapshot.queue.redis, and chunk jobs are shared only through that queue';
  return null;
}

/**
 * `tributary run --worker [--pipeline P ...]`: no streaming, only snapshot chunk jobs from the
 * BullMQ queues of pipelines with `snapshot.queue.redis`, so several machines share one big
 * table.
 *
 * Every chosen pipeline is vetted before anything starts, and a pipeline that cannot take
 * jobs is an error (exit 2), not a warning: a worker that started the others and then failed
 * kept their queue connections open and never exited. `--pipeline` picks the pipelines of a
 * multi-pipeline file that can.
 */
export async function runWorker(cfg: LoadedConfig, only: readonly string[] = []): Promise<void> {
  for (const name of only) {
    if (!cfg.pipelines.some((p) => p.config.name === name)) {
      throw new ConfigError(ErrorCodes.USAGE, `--pipeline ${name}: no such pipeline in the config`, { fix: `name one of: ${cfg.pipelines.map((p) => p.config.name).join(', ')}` });
    }
  }
  const chosen = only.length ? cfg.pipelines.filter((p) => only.includes(p.config.name)) : cfg.pipelines;
  const refused = chosen.flatMap((p) => {
    const why = whyNoJobs(p);
    return why ? [`${p.origin}: pipeline ${p.config.name}: --worker cannot take its jobs: ${why}`] : [];
  });
  if (refused.length) {
    const able = cfg.pipelines.filter((p) => !whyNoJobs(p)).map((p) => p.config.name);
    throw new ConfigError(ErrorCodes.CONFIG_INVALID, refused.join('\n'), {
      fix: able.length
        ? `serve only the pipelines that can: ${able.map((n) => `--pipeline ${n}`).join(' ')}`
        : 'set snapshot: { queue: { redis: redis://... } } in the pipeline (the running pipeline and its workers share it)',
    });
  }
  const logger = createLogger({ level: process.env.TRIBUTARY_LOG_LEVEL ?? cfg.log.level });
  const { ChunkQueue } = await import('../snapshot/distributed.js');
  const cleanup: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    for (const p of chosen) {
      const queue = p.config.snapshot.queue!;
      const store = await openStateStore(p.config.state);
      cleanup.push(() => store.close());
      const ac = new AbortController();
      const source = await createSource(p.config, { pipeline: p.config.name, logger, signal: ac.signal, metrics: new Metrics(), store, link: standaloneLink(p.config.name, logger, ac.signal) });
      cleanup.push(() => source.close());
      if (!source.snapshots) {
        throw new ConfigError(ErrorCodes.CONFIG_INVALID, `${p.origin}: pipeline ${p.config.name}: the ${p.config.source.type} source cannot snapshot, so it has no chunk jobs`, { fix: 'remove --worker, or pass --pipeline for the others' });
      }
      const q = new ChunkQueue(queue.redis, p.config.name);
      cleanup.push(() => q.close());
      let chunks = 0;
      q.work(source.snapshots(), p.config.source.snapshot_workers || 1, logger, (job, rows) => {
        chunks++;
        logger.info({ pipeline: p.config.name, table: job.table.name, rows, chunks }, 'snapshot chunk done');
      });
    }
  } catch (err) {
    // Close what started, or its connections keep the process alive after the error.
    await closeAll();
    throw err;
  }
  logger.info({ pipelines: chosen.map((p) => p.config.name) }, 'snapshot worker waiting for chunk jobs');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await closeAll();
  logger.info('snapshot worker stopped');
  logger.flush();
}
