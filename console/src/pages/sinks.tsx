import { useEffect, useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { Chart } from '../chart';
import { bytes, num, secs } from '../format';
import { usePoll } from '../hooks';
import { ErrorNote } from '../ui';
import type { Status } from './pipelines';

type Point = [number, number, number | null, number, number];
interface History {
  interval_ms: number;
  series: Array<{ pipeline: string; sink: string; points: Point[] }>;
}

/** Aligns every sink's points on one time axis (uPlot wants one x array) for field `f`. */
function aligned(h: History, f: 1 | 2 | 3 | 4): uPlot.AlignedData {
  const xs = [...new Set(h.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = h.series.map((s) => {
    const y: (number | null)[] = new Array(xs.length).fill(null);
    for (const p of s.points) y[index.get(p[0])!] = p[f];
    return y;
  });
  return [xs.map((x) => x / 1000), ...ys] as uPlot.AlignedData;
}

export function Sinks() {
  const status = usePoll<Status>('/status', 2000);
  // The history changes once per sample: poll it at the server's sampling interval.
  const [historyMs, setHistoryMs] = useState(2000);
  const history = usePoll<History>('/history', historyMs);
  useEffect(() => {
    if (history.data) setHistoryMs(Math.max(1000, history.data.interval_ms));
  }, [history.data?.interval_ms]);
  const h = history.data;
  const labels = h?.series.map((s) => `${s.pipeline}/${s.sink}`) ?? [];
  const charts = useMemo(() => (h ? { events: aligned(h, 1), bytes: aligned(h, 2), seconds: aligned(h, 3), rate: aligned(h, 4) } : null), [h]);
  const rateOf = (pipeline: string, sink: string) => h?.series.find((s) => s.pipeline === pipeline && s.sink === sink)?.points.at(-1)?.[4] ?? null;
  return (
    <section>
      <h2>Sinks</h2>
      <ErrorNote error={status.error ?? history.error} />
      <table data-testid="sinks-table">
        <thead>
          <tr>
            <th>pipeline / sink</th>
            <th>lag (events)</th>
            <th>lag (bytes)</th>
            <th>lag (seconds)</th>
            <th>written</th>
            <th>events/s</th>
            <th>dead letters (parked)</th>
            <th>state</th>
          </tr>
        </thead>
        <tbody>
          {status.data?.pipelines.flatMap((p) =>
            p.sinks.map((s) => (
              <tr key={`${p.name}/${s.name}`} data-testid={`sink-${p.name}-${s.name}`}>
                <td>
                  {p.name}/<b>{s.name}</b>
                </td>
                <td class="num" data-testid="lag-events">{num(s.lagEvents)}</td>
                <td class="num">{bytes(s.lag?.bytes)}</td>
                <td class="num">{secs(s.lagSeconds)}</td>
                <td class="num">{num(s.eventsOut ?? null)}</td>
                <td class="num">{num(rateOf(p.name, s.name) === null ? null : Math.round(rateOf(p.name, s.name)!))}</td>
                <td class="num" data-testid="dead-letters" title={`${num(s.deadLettered ?? 0)} parked since this attempt started`}>
                  {num(s.deadLetters ?? 0)}
                </td>
                <td>{s.failed ? <span class="error">{s.failed}</span> : <span class="badge state-running">ok</span>}</td>
              </tr>
            )),
          )}
        </tbody>
      </table>
      {charts && labels.length > 0 && (
        <div class="charts">
          <Chart title="Lag (events)" data={charts.events} labels={labels} format={(v) => num(Math.round(v))} testId="chart-lag-events" />
          <Chart title="Lag (seconds)" data={charts.seconds} labels={labels} format={(v) => secs(v)} testId="chart-lag-seconds" />
          <Chart title="Lag (bytes)" data={charts.bytes} labels={labels} format={(v) => bytes(v)} testId="chart-lag-bytes" />
          <Chart title="Throughput (events/s)" data={charts.rate} labels={labels} format={(v) => num(Math.round(v))} testId="chart-rate" />
        </div>
      )}
      {h && <p class="muted">One sample every {h.interval_ms / 1000} s, the last hour.</p>}
    </section>
  );
}
