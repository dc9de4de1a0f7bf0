import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const PALETTE = ['#2f7dd1', '#d1572f', '#2fa36b', '#9b59b6', '#c9a227', '#17a2b8'];

export interface ChartProps {
  title: string;
  /** x in seconds since the epoch, then one array per series (null = no value). */
  data: uPlot.AlignedData;
  labels: string[];
  format?: (v: number) => string;
  testId?: string;
}

/**
 * A live uPlot line chart. The plot is created once per set of series and then fed new data
 * with setData, so polling never rebuilds the canvas.
 */
export function Chart({ title, data, labels, format, testId }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = labels.join('\u0000');
  useEffect(() => {
    if (!box.current) return;
    const width = () => Math.max(280, box.current!.clientWidth - 8);
    const fmt = format ?? ((v: number) => String(v));
    plot.current = new uPlot(
      {
        title,
        width: width(),
        height: 190,
        series: [{}, ...labels.map((l, i) => ({ label: l, stroke: PALETTE[i % PALETTE.length], width: 2, value: (_u: uPlot, v: number | null) => (v === null ? '—' : fmt(v)) }))],
        axes: [
          { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } },
          { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' }, size: 84, values: (_u, vals) => vals.map((v) => fmt(v)) },
        ],
        scales: { y: { range: (_u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] } },
        legend: { live: true },
      },
      data,
      box.current,
    );
    const onResize = () => plot.current?.setSize({ width: width(), height: 190 });
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, [key, title]);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  return <div class="chart" ref={box} data-testid={testId} />;
}
