import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ChunkBounds, ChunkRows, SnapshotSupport, SnapshotTable } from './types.js';

/** What a chunk job carries: everything a worker on another machine needs. */
export interface ChunkJob {
  pipeline: string;
  windowId: string;
  table: SnapshotTable;
  chunk: ChunkBounds;
  where: string | null;
}

export function queueName(pipeline: string): string {
  return `tributary_snapshot_${pipeline}`;
}

/** Where a worker leaves a chunk's rows for the coordinator (removed once taken). */
export function rowsKey(pipeline: string, windowId: string): string {
  return `tributary:${pipeline}:snapchunk:${windowId}`;
}

/** Where it leaves their keys, a list parallel to the rows. */
function keysKey(pipeline: string, windowId: string): string {
  return `${rowsKey(pipeline, windowId)}:keys`;
}

/** Redis lists get at most this many values per RPUSH. */
const PUSH_BATCH = 1000;

/**
 * The work of one chunk, wherever it runs: low watermark, read, park the rows in Redis,
 * high watermark. The rows are in Redis before the high watermark is written, so the
 * coordinator always finds them when the stream reaches it.
 */
export async function runChunkJob(data: ChunkJob, support: SnapshotSupport, redis: Redis): Promise<{ rows: number }> {
  const reader = await support.reader();
  try {
    await reader.watermark(data.windowId, 'low');
    const { rows, keys } = await reader.read(data.table, data.chunk, data.where);
    // Rows and keys are already JSON text: they are parked as they are.
    const rk = rowsKey(data.pipeline, data.windowId);
    const kk = keysKey(data.pipeline, data.windowId);
    await redis.del(rk, kk);
    for (let i = 0; i < rows.length; i += PUSH_BATCH) {
      await redis.rpush(rk, ...rows.slice(i, i + PUSH_BATCH));
      await redis.rpush(kk, ...keys.slice(i, i + PUSH_BATCH));
    }
    await redis.expire(rk, 24 * 3600);
    await redis.expire(kk, 24 * 3600);
    await reader.watermark(data.windowId, 'high');
    return { rows: rows.length };
  } finally {
    await reader.close();
  }
}

/** Take a chunk's rows out of Redis. */
export async function takeChunkRows(redis: Redis, pipeline: string, windowId: string): Promise<ChunkRows> {
  const rk = rowsKey(pipeline, windowId);
  const kk = keysKey(pipeline, windowId);
  const [rows, keys] = await Promise.all([redis.lrange(rk, 0, -1), redis.lrange(kk, 0, -1)]);
  await redis.del(rk, kk);
  if (keys.length !== rows.length) throw new Error(`chunk ${windowId}: ${rows.length} rows but ${keys.length} keys in Redis`);
  return { rows, keys };
}

/**
 * BullMQ plumbing for snapshot chunks shared across processes (`snapshot.queue.redis`): the
 * coordinator enqueues, any number of `tributary run --worker` processes (and the
 * coordinator's own workers) take jobs.
 */
export class ChunkQueue {
  readonly queue: Queue<ChunkJob>;
  readonly redis: Redis;
  private worker?: Worker<ChunkJob>;
  private closed?: Promise<void>;

  constructor(
    readonly url: string,
    readonly pipeline: string,
  ) {
    this.queue = new Queue<ChunkJob>(queueName(pipeline), { connection: { url } });
    this.redis = new Redis(url, { maxRetriesPerRequest: null });
  }

  /** Forget jobs of an earlier run: their windows no longer exist. */
  async reset(): Promise<void> {
    await this.queue.obliterate({ force: true });
  }

  async enqueue(jobs: ChunkJob[]): Promise<void> {
    await this.queue.addBulk(jobs.map((data) => ({ name: 'chunk', data, opts: { jobId: data.windowId.replace(/[/:]/g, '_'), attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: 100 } })));
  }

  /** Process jobs in this process. */
  work(support: SnapshotSupport, concurrency: number, logger: Logger, onDone?: (job: ChunkJob, rows: number) => void): void {
    this.worker = new Worker<ChunkJob>(
      queueName(this.pipeline),
      async (job: Job<ChunkJob>) => {
        const r = await runChunkJob(job.data, support, this.redis);
        onDone?.(job.data, r.rows);
        return r;
      },
      { connection: { url: this.url }, concurrency },
    );
    this.worker.on('failed', (job, err) => logger.warn({ err, table: job?.data.table.name }, `snapshot chunk job failed: ${err.message}`));
    this.worker.on('error', (err) => logger.warn({ err }, 'snapshot worker error'));
  }

  async pause(): Promise<void> {
    await this.queue.pause();
  }

  async resume(): Promise<void> {
    await this.queue.resume();
  }

  /** Drop jobs not yet taken. */
  async drain(): Promise<void> {
    await this.queue.drain(true);
  }

  close(): Promise<void> {
    return (this.closed ??= (async () => {
      await this.worker?.close().catch(() => undefined);
      await this.queue.close().catch(() => undefined);
      await this.redis.quit().catch(() => undefined);
    })());
  }
}
