import { usePoll } from '../hooks';
import { bytes, num, secs, time } from '../format';
import { ErrorNote } from '../ui';

export interface StatusSink {
  name: string;
  position: string | null;
  offset?: number | null;
  lagEvents: number;
  lagSeconds: number;
  eventsOut?: number;
  deadLettered?: number;
  /** Dead letters in the sink's store now. */
  deadLetters?: number;
  lag?: { events: number; bytes: number; seconds: number | null } | null;
  failed: string | null;
}
export interface HeldBack {
  wal_bytes?: number;
  binlog_files?: number;
  oldest_binlog_file?: string;
  checked_at: string;
  /** Why the last check failed (the figures are the previous ones). */
  error?: string;
}
export interface StatusPipeline {
  name: string;
  state: string;
  error: string | null;
  acknowledged: string | null;
  stream: string | null;
  bufferBytes: number;
  source?: { up?: boolean; reconnects?: number; downSeconds?: number; lastError?: string | null };
  held_back?: HeldBack | null;
  snapshot: any;
  restarts?: number;
  sinks: StatusSink[];
}
export interface Status {
  pipelines: StatusPipeline[];
}

/** What the source holds back: the slot's WAL (Postgres) or the binlog files still needed (MySQL). */
function heldBack(h: HeldBack | null | undefined) {
  if (!h) return <span class="muted">not reported</span>;
  const parts: string[] = [];
  if (h.wal_bytes !== undefined) parts.push(`${bytes(h.wal_bytes)} of WAL`);
  if (h.binlog_files !== undefined) parts.push(`${num(h.binlog_files)} binlog file(s)`);
  if (h.oldest_binlog_file) parts.push(`oldest needed: ${h.oldest_binlog_file}`);
  return (
    <span data-testid="held-back">
      {parts.join(', ') || '—'} <span class="muted">(checked {time(h.checked_at)})</span>
      {h.error && <span class="error"> last check failed: {h.error}</span>}
    </span>
  );
}

export function Pipelines() {
  const { data, error } = usePoll<Status>('/status', 2000);
  return (
    <section>
      <h2>Pipelines</h2>
      <ErrorNote error={error} />
      {data?.pipelines.map((p) => (
        <article class="card" data-testid={`pipeline-${p.name}`} key={p.name}>
          <header>
            <h3>{p.name}</h3>
            <span class={`badge state-${p.state}`} data-testid="pipeline-state">
              {p.state}
            </span>
          </header>
          {p.error && <p class="error">{p.error}</p>}
          <dl class="grid">
            <dt>Source</dt>
            <dd>{p.source?.up === false ? <span class="error">down {secs(p.source.downSeconds ?? null)}</span> : 'connected'}{p.source?.reconnects ? `, ${p.source.reconnects} reconnect(s)` : ''}</dd>
            <dt>Acknowledged position</dt>
            <dd class="mono" data-testid="source-position">{p.acknowledged ?? '—'}</dd>
            <dt>Held back by the source</dt>
            <dd>{heldBack(p.held_back)}</dd>
            <dt>Stream</dt>
            <dd>
              {p.stream ?? '—'}, {bytes(p.bufferBytes)} buffered
            </dd>
            <dt>Restarts</dt>
            <dd>{num(p.restarts ?? 0)}</dd>
            <dt>Sinks</dt>
            <dd>
              {p.sinks.map((s) => (
                <span class={`badge ${s.failed ? 'state-failed' : ''}`} key={s.name} title={s.failed ?? ''}>
                  {s.name}: {num(s.lagEvents)} behind
                </span>
              ))}
            </dd>
          </dl>
        </article>
      ))}
      {data && !data.pipelines.length && <p class="muted">No pipelines run in this process.</p>}
    </section>
  );
}
