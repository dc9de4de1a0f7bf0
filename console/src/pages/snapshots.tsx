import { useRef, useState } from 'preact/hooks';
import { api, type ApiError } from '../api';
import { num, secs, time } from '../format';
import { usePoll } from '../hooks';
import { ErrorNote } from '../ui';
import type { Status } from './pipelines';

interface SnapTable {
  table: string;
  where: string | null;
  chunksDone: number;
  chunks: number;
  rows: number;
  estimate: number | null;
}

/**
 * Rate and ETA per table, from the rows seen over successive polls of /status (the server
 * reports rows, chunks and the planner's estimate).
 */
function useRates() {
  const first = useRef(new Map<string, { t: number; rows: number }>());
  return (id: string, t: SnapTable) => {
    const k = `${id}\u0000${t.table}`;
    const now = Date.now();
    const f = first.current.get(k);
    if (!f) {
      first.current.set(k, { t: now, rows: t.rows });
      return { rate: null, eta: null };
    }
    const dt = (now - f.t) / 1000;
    const rate = dt > 0.5 ? (t.rows - f.rows) / dt : null;
    const left = t.estimate !== null ? Math.max(0, t.estimate - t.rows) : null;
    const eta = t.chunksDone === t.chunks ? 0 : rate && rate > 0 && left !== null ? left / rate : null;
    return { rate, eta };
  };
}

export function Snapshots() {
  const { data, error, refresh } = usePoll<Status>('/status', 1500);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const [table, setTable] = useState('');
  const [where, setWhere] = useState('');
  const [pipeline, setPipeline] = useState('');
  const rates = useRates();

  const send = async (body: Record<string, unknown>) => {
    setActionError(null);
    setResult(null);
    try {
      const r = await api.post<Record<string, unknown>>('/snapshot', body);
      setResult(`${String(body.action ?? 'start')}: accepted${typeof r.status === 'string' ? ` (${r.status})` : ''}`);
    } catch (e) {
      setActionError(e as ApiError);
    }
    refresh();
  };

  const pipelines = data?.pipelines ?? [];
  return (
    <section>
      <h2>Snapshots</h2>
      <ErrorNote error={error ?? actionError} />
      {result && <p class="ok" data-testid="snapshot-result">{result}</p>}
      {pipelines.map((p) => {
        const s = p.snapshot as { id: string; kind: string; status: string; startedAt: string; finishedAt: string | null; error: string | null; tables: SnapTable[] } | null;
        return (
          <article class="card" key={p.name} data-testid={`snapshot-${p.name}`}>
            <header>
              <h3>{p.name}</h3>
              {s && (
                <span class={`badge state-${s.status}`} data-testid="snapshot-status">
                  {s.status}
                </span>
              )}
              {s && (
                <span class="actions">
                  <button disabled={s.status !== 'running'} onClick={() => send({ pipeline: p.name, action: 'pause' })}>
                    Pause
                  </button>
                  <button disabled={s.status !== 'paused'} onClick={() => send({ pipeline: p.name, action: 'resume' })}>
                    Resume
                  </button>
                  <button class="danger" disabled={s.status !== 'running' && s.status !== 'paused'} onClick={() => confirm('Cancel this snapshot?') && send({ pipeline: p.name, action: 'cancel' })}>
                    Cancel
                  </button>
                </span>
              )}
            </header>
            {!s && <p class="muted">No snapshot has run in this attempt.</p>}
            {s && (
              <>
                <p class="muted">
                  {s.kind} snapshot {s.id}, started {time(s.startedAt)}
                  {s.finishedAt ? `, finished ${time(s.finishedAt)}` : ''}
                </p>
                {s.error && <p class="error">{s.error}</p>}
                <table>
                  <thead>
                    <tr>
                      <th>table</th>
                      <th>filter</th>
                      <th>rows</th>
                      <th>table has about</th>
                      <th>chunks</th>
                      <th>rows/s</th>
                      <th>ETA</th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.tables.map((t) => {
                      const r = rates(s.id, t);
                      const pct = t.chunks ? Math.round((100 * t.chunksDone) / t.chunks) : 0;
                      return (
                        <tr key={t.table} data-testid={`snapshot-table-${t.table}`}>
                          <td class="mono">{t.table}</td>
                          <td class="mono">{t.where ?? ''}</td>
                          <td class="num" data-testid="rows">{num(t.rows)}</td>
                          <td class="num">{num(t.estimate)}</td>
                          <td>
                            <progress max={100} value={pct} /> {t.chunksDone}/{t.chunks}
                          </td>
                          <td class="num">{r.rate === null ? '—' : num(Math.round(r.rate))}</td>
                          <td class="num">{s.status === 'running' ? secs(r.eta) : '—'}</td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </>
            )}
          </article>
        );
      })}
      <form
        class="card"
        data-testid="resnapshot-form"
        onSubmit={(e) => {
          e.preventDefault();
          send({ ...(pipeline ? { pipeline } : {}), table, ...(where.trim() ? { where } : {}) });
        }}
      >
        <h3>Start a (filtered) re-snapshot</h3>
        <label>
          Pipeline
          <select value={pipeline} onChange={(e) => setPipeline((e.target as HTMLSelectElement).value)}>
            <option value="">(the one that captures the table)</option>
            {pipelines.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Table
          <input name="table" required placeholder="public.orders" value={table} onInput={(e) => setTable((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Filter (SQL condition, optional)
          <input name="where" placeholder="id > 1000" value={where} onInput={(e) => setWhere((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Start snapshot</button>
      </form>
    </section>
  );
}
