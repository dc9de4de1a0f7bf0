import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from './api';

export interface Polled<T> {
  data: T | null;
  error: ApiError | Error | null;
  /** Fetch again now (after an action). */
  refresh(): void;
}

/**
 * GET `path` now and every `ms` while the page is shown: live updates without reloads. A
 * request never overlaps the previous one, so a slow server is not flooded.
 */
export function usePoll<T>(path: string | null, ms = 2000): Polled<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const tick = useRef<() => void>(() => {});
  useEffect(() => {
    if (!path) return;
    let alive = true;
    let timer: number | undefined;
    let busy = false;
    const run = async () => {
      if (busy) return;
      busy = true;
      clearTimeout(timer);
      try {
        const d = await api.get<T>(path);
        if (alive) {
          setData(d);
          setError(null);
        }
      } catch (e) {
        if (alive) setError(e as Error);
      } finally {
        busy = false;
        if (alive) timer = window.setTimeout(run, ms);
      }
    };
    tick.current = run;
    run();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [path, ms]);
  return { data, error, refresh: () => tick.current() };
}
