import { useState } from 'preact/hooks';
import { api, qs, type ApiError } from '../api';
import { bytes, num, secs, time } from '../format';
import { usePoll } from '../hooks';
import { ErrorNote } from '../ui';

interface LogInfo {
  pipeline: string;
  offsets: { first: number; last: number; durableEnd: number; committedEnd: number };
  times: { firstCommit: string | null; lastCommit: string | null };
  bytes: number;
  segments: number;
  horizon: { offset: number; time: string | null; records: number } | null;
  sinks: Array<{ name: string; offset: number | null; position: string | null; committedAt: string | null; lag: { events: number; bytes: number; seconds: number | null } | null }>;
}

interface RewindPlan {
  pipeline: string;
  sink: string;
  to: string;
  dryRun: boolean;
  offset: number;
  previousOffset: number | null;
  events: number;
  transactions: number;
  skippedEvents?: number;
  rebuild?: boolean;
  compactedRows?: number;
}

/** "Rewind to…": the dry run's count first, then a confirm that performs it. */
function Rewind({ pipeline, sink }: { pipeline: string; sink: string }) {
  const [to, setTo] = useState('earliest');
  const [plan, setPlan] = useState<RewindPlan | null>(null);
  const [done, setDone] = useState<RewindPlan | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const run = async (dry: boolean) => {
    setError(null);
    try {
      const r = await api.post<RewindPlan>('/rewind', { pipeline, sink, to, dry_run: dry });
      if (dry) {
        setPlan(r);
        setDone(null);
      } else {
        setDone(r);
        setPlan(null);
      }
    } catch (e) {
      setError(e as ApiError);
    }
  };
  return (
    <div class="rewind" data-testid={`rewind-${sink}`}>
      <input aria-label="rewind target" value={to} onInput={(e) => { setTo((e.target as HTMLInputElement).value); setPlan(null); }} placeholder="earliest | ISO time | offset | position" />
      <button onClick={() => run(true)}>Rewind to…</button>
      {plan && (
        <span class="plan" data-testid="rewind-plan">
          {sink} would receive <b>{num(plan.events)}</b> event(s) again ({num(plan.transactions)} transaction(s)) from offset {num(plan.offset)}
          {plan.rebuild ? `, the compacted state first (${num(plan.compactedRows ?? 0)} rows)` : ''}.{' '}
          <button class="danger" onClick={() => run(false)}>
            Confirm rewind
          </button>{' '}
          <button onClick={() => setPlan(null)}>Cancel</button>
        </span>
      )}
      {done && (
        <span class="ok" data-testid="rewind-done">
          Rewound {sink} to offset {num(done.offset)}: {num(done.events)} event(s) follow again.
        </span>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

/** Time travel: the row as it was at a time (GET /state). */
function TimeTravel({ pipelines }: { pipelines: string[] }) {
  const [pipeline, setPipeline] = useState('');
  const [table, setTable] = useState('');
  const [key, setKey] = useState('');
  const [at, setAt] = useState(new Date().toISOString());
  const [answer, setAnswer] = useState<{ at: string; cut: number; rows: unknown[] } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  return (
    <form
      class="card"
      data-testid="time-travel"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        setAnswer(null);
        try {
          setAnswer(await api.get(`/state${qs({ pipeline: pipeline || (pipelines.length === 1 ? pipelines[0] : null), table, at, key })}`));
        } catch (err) {
          setError(err as ApiError);
        }
      }}
    >
      <h3>Time travel: a row as it was</h3>
      {pipelines.length > 1 && (
        <label>
          Pipeline
          <select value={pipeline} onChange={(e) => setPipeline((e.target as HTMLSelectElement).value)}>
            {pipelines.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
      )}
      <label>
        Table
        <input name="table" required placeholder="public.orders" value={table} onInput={(e) => setTable((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Key (JSON)
        <input name="key" placeholder='{"id": 7}' value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        At (ISO-8601 or now)
        <input name="at" required value={at} onInput={(e) => setAt((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">Look up</button>
      <ErrorNote error={error} />
      {answer && (
        <div data-testid="time-travel-answer">
          <p class="muted">
            {answer.rows.length} row(s) as of {time(answer.at)} (log offsets before {num(answer.cut)})
          </p>
          <pre>{answer.rows.map((r) => JSON.stringify(r)).join('\n') || 'no such row at that time'}</pre>
        </div>
      )}
    </form>
  );
}

export function Log() {
  const { data, error } = usePoll<{ pipelines: LogInfo[] }>('/log', 3000);
  return (
    <section>
      <h2>Log</h2>
      <ErrorNote error={error} />
      {data?.pipelines.map((l) => (
        <article class="card" key={l.pipeline} data-testid={`log-${l.pipeline}`}>
          <header>
            <h3>{l.pipeline}</h3>
          </header>
          <dl class="grid">
            <dt>Size</dt>
            <dd data-testid="log-size">
              {bytes(l.bytes)} in {num(l.segments)} segment(s)
            </dd>
            <dt>Offsets</dt>
            <dd>
              {num(l.offsets.first)} … {num(l.offsets.last)} (committed end {num(l.offsets.committedEnd)})
            </dd>
            <dt>Commits</dt>
            <dd>
              {time(l.times.firstCommit)} … {time(l.times.lastCommit)}
            </dd>
            <dt>Retention horizon</dt>
            <dd data-testid="log-horizon">{l.horizon ? `offset ${num(l.horizon.offset)}, ${time(l.horizon.time)} (${num(l.horizon.records)} records trimmed)` : 'nothing trimmed yet: the whole history is retained'}</dd>
          </dl>
          <table>
            <thead>
              <tr>
                <th>sink</th>
                <th>offset</th>
                <th>position</th>
                <th>lag</th>
                <th>rewind</th>
              </tr>
            </thead>
            <tbody>
              {l.sinks.map((s) => (
                <tr key={s.name}>
                  <td>
                    <b>{s.name}</b>
                  </td>
                  <td class="num" data-testid={`log-sink-offset-${s.name}`}>{num(s.offset)}</td>
                  <td class="mono">{s.position ?? '—'}</td>
                  <td class="num">{s.lag ? `${num(s.lag.events)} ev, ${bytes(s.lag.bytes)}, ${secs(s.lag.seconds)}` : '—'}</td>
                  <td>
                    <Rewind pipeline={l.pipeline} sink={s.name} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </article>
      ))}
      {data && <TimeTravel pipelines={data.pipelines.map((p) => p.pipeline)} />}
    </section>
  );
}
