import { ErrorCodes, TributaryError } from '../core/errors.js';
import type { ResolvedPipeline } from '../config/load.js';
import type { SnapshotCoordinator } from '../snapshot/coordinator.js';
import { qualified, tableMatcher } from '../runtime/table-filter.js';

/** The body of `POST /snapshot` (what `tributary snapshot` sends). */
export interface SnapshotRequest {
  /** Optional when one pipeline runs, or when exactly one captures `table`. */
  pipeline?: string;
  table?: string | null;
  where?: string | null;
  action?: 'start' | 'pause' | 'resume' | 'cancel';
}

type Reply = { status: number; body: unknown };

/** What the route needs of a pipeline (a supervisor: its snapshots exist only while it runs). */
export interface SnapshotTarget {
  readonly name: string;
  readonly state: string;
  readonly resolved: ResolvedPipeline;
  readonly snapshots?: SnapshotCoordinator | undefined;
}

const coded = (status: number, err: TributaryError): Reply => ({ status, body: { error: `${err.code} ${err.message}`, code: err.code, fix: err.fix } });

/** `table` as the source names it (runtime/table-filter.ts), for the routes that used it from here. */
export { qualified };

/**
 * The pipelines whose `source.tables` (minus `exclude`) capture `table`, by the same patterns
 * the sources use.
 */
export function pipelinesCapturing<T extends SnapshotTarget>(table: string, pipelines: readonly T[]): T[] {
  return pipelines.filter((p) => {
    const src = p.resolved.config.source;
    return tableMatcher(src.tables, src.exclude)(qualified(table, src.type));
  });
}

/**
 * `POST /snapshot`: find the pipeline (named, the only one, or the one that captures the
 * table) and hand the request to its snapshot coordinator.
 */
export function snapshotRoute(pipelines: readonly SnapshotTarget[]): (body: unknown) => Promise<Reply> {
  return async (body) => {
    const b = (body ?? {}) as SnapshotRequest;
    let p: SnapshotTarget | undefined;
    if (b.pipeline) {
      p = pipelines.find((x) => x.name === b.pipeline);
      if (!p) {
        return coded(404, new TributaryError(ErrorCodes.SNAPSHOT_TABLE_PIPELINE, `no pipeline named "${b.pipeline}" runs here`, { fix: `name one of: ${pipelines.map((x) => x.name).join(', ')}` }));
      }
    } else if (pipelines.length === 1 || !b.table) {
      if (pipelines.length > 1) {
        return coded(400, new TributaryError(ErrorCodes.SNAPSHOT_TABLE_PIPELINE, `${pipelines.length} pipelines run here and the request names neither a pipeline nor a table`, { fix: `pass --pipeline (one of: ${pipelines.map((x) => x.name).join(', ')})` }));
      }
      p = pipelines[0];
    } else {
      const capturing = pipelinesCapturing(b.table, pipelines);
      if (capturing.length !== 1) {
        const msg = capturing.length ? `table ${b.table} is captured by ${capturing.length} pipelines: ${capturing.map((x) => x.name).join(', ')}` : `no pipeline here captures table ${b.table}`;
        return coded(capturing.length ? 409 : 404, new TributaryError(ErrorCodes.SNAPSHOT_TABLE_PIPELINE, msg, { fix: capturing.length ? 'pass --pipeline with one of them' : `name a table that a pipeline's source.tables includes (pipelines: ${pipelines.map((x) => x.name).join(', ')})` }));
      }
      p = capturing[0];
    }
    if (!p?.snapshots) {
      return coded(409, new TributaryError(ErrorCodes.SNAPSHOT_NOT_RUNNING, `pipeline ${p?.name ?? '?'} is not running (${p?.state ?? 'unknown'}), so it cannot take snapshot requests`, { fix: 'wait until `tributary status` shows it running' }));
    }
    const r = await p.snapshots.control(b.action ?? 'start', b.table ?? null, b.where ?? null);
    return { status: r.status, body: { pipeline: p.name, ...(r.body as object) } };
  };
}
