import { useEffect, useState } from 'preact/hooks';
import { api, qs, type ApiError } from '../api';
import { num, time } from '../format';
import { usePoll } from '../hooks';
import { ErrorNote } from '../ui';

interface DeadLetter {
  id: string;
  pipeline: string;
  sink: string;
  table: string;
  key: unknown;
  offset?: number;
  attempts: number;
  error: { code?: string; message: string };
  first_failed_at: string;
  last_failed_at: string;
  event: unknown;
}

interface Depths {
  sinks: Array<{ pipeline: string; sink: string; depth: number; oldest_at: string | null }>;
}

/** One sink's parked events: browse, retry one/selection/all, discard with a reason. */
function SinkLetters({ pipeline, sink, onChange }: { pipeline: string; sink: string; onChange(): void }) {
  const list = usePoll<{ depth: number; items: DeadLetter[]; next: string | null }>(`/dlq/list${qs({ sink, pipeline, limit: 100 })}`, 3000);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [reason, setReason] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const items = list.data?.items ?? [];
  const toggle = (id: string) => {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  };
  const act = async (what: 'retry' | 'discard', target: { ids?: string[]; all?: boolean }) => {
    setError(null);
    setNote(null);
    if (what === 'discard' && !reason.trim()) {
      setError(Object.assign(new Error('give a reason for the discard (it is recorded)'), { status: 400 }) as ApiError);
      return;
    }
    try {
      if (what === 'retry') {
        const r = await api.post<{ retried: number; delivered: number; parked: number }>('/dlq/retry', { sink, pipeline, ...target });
        setNote(`retried ${r.retried}: ${r.delivered} delivered, ${r.parked} parked again`);
      } else {
        const r = await api.post<{ discarded: number }>('/dlq/discard', { sink, pipeline, ...target, reason });
        setNote(`discarded ${r.discarded}`);
      }
      setSelected(new Set());
    } catch (e) {
      setError(e as ApiError);
    }
    list.refresh();
    onChange();
  };
  return (
    <div data-testid={`dlq-${pipeline}-${sink}`}>
      <div class="toolbar">
        <button disabled={!selected.size} onClick={() => act('retry', { ids: [...selected] })}>
          Retry selected ({selected.size})
        </button>
        <button disabled={!items.length} onClick={() => act('retry', { all: true })}>
          Retry all
        </button>
        <input aria-label="discard reason" placeholder="reason for a discard" value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
        <button class="danger" disabled={!selected.size} onClick={() => act('discard', { ids: [...selected] })}>
          Discard selected
        </button>
        <button class="danger" disabled={!items.length} onClick={() => confirm(`Discard all ${list.data?.depth ?? ''} dead letters of ${sink}?`) && act('discard', { all: true })}>
          Discard all
        </button>
      </div>
      {note && (
        <p class="ok" data-testid="dlq-result">
          {note}
        </p>
      )}
      <ErrorNote error={error ?? list.error} />
      <table>
        <thead>
          <tr>
            <th />
            <th>table / key</th>
            <th>error</th>
            <th>attempts</th>
            <th>failed</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {items.map((d) => (
            <tr key={d.id} data-testid="dead-letter">
              <td>
                <input type="checkbox" aria-label={`select ${d.id}`} checked={selected.has(d.id)} onChange={() => toggle(d.id)} />
              </td>
              <td class="mono">
                {d.table} {JSON.stringify(d.key)}
                <details>
                  <summary>event</summary>
                  <pre>{JSON.stringify(d.event, null, 2)}</pre>
                </details>
              </td>
              <td class="error">
                {d.error.code ? `${d.error.code} ` : ''}
                {d.error.message}
              </td>
              <td class="num">{num(d.attempts)}</td>
              <td>
                {time(d.first_failed_at)}
                {d.last_failed_at !== d.first_failed_at ? ` … ${time(d.last_failed_at)}` : ''}
              </td>
              <td>
                <button onClick={() => act('retry', { ids: [d.id] })}>Retry</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && !items.length && <p class="muted">Nothing parked for {sink}.</p>}
    </div>
  );
}

export function DeadLetters() {
  const depths = usePoll<Depths>('/dlq', 3000);
  const [pick, setPick] = useState<string | null>(null);
  const sinks = depths.data?.sinks ?? [];
  const current = sinks.find((s) => `${s.pipeline}/${s.sink}` === pick) ?? sinks.find((s) => s.depth > 0) ?? sinks[0];
  // The sink shown stays shown when its depth drops to 0 after a retry (its result stays in view).
  useEffect(() => {
    if (!pick && current && current.depth > 0) setPick(`${current.pipeline}/${current.sink}`);
  }, [pick, current]);
  return (
    <section>
      <h2>Dead letters</h2>
      <ErrorNote error={depths.error} />
      <div class="tabs" role="tablist">
        {sinks.map((s) => (
          <button role="tab" key={`${s.pipeline}/${s.sink}`} aria-selected={current === s} class={current === s ? 'active' : ''} onClick={() => setPick(`${s.pipeline}/${s.sink}`)} data-testid={`dlq-tab-${s.sink}`}>
            {s.pipeline}/{s.sink} <span class={`badge ${s.depth ? 'state-failed' : ''}`}>{num(s.depth)}</span>
          </button>
        ))}
      </div>
      {current && <p class="muted">Oldest parked: {time(current.oldest_at)}</p>}
      {current && <SinkLetters key={`${current.pipeline}/${current.sink}`} pipeline={current.pipeline} sink={current.sink} onChange={depths.refresh} />}
      {depths.data && !sinks.length && <p class="muted">No sinks.</p>}
    </section>
  );
}
