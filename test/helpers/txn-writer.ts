import type { ChangeEvent } from '../../src/core/event.js';
import type { SinkEvent, WriteContext } from '../../src/sdk/index.js';
import { makeSinkEvent } from '../../src/testing/index.js';

/**
 * Writes each call's events to a sink as one transaction, numbered from `first` up. `commit`
 * false writes them as a batch that ends inside its transaction (`ctx.commit` null). Resolves
 * with the events as the sink received them. `sink` is a getter: tests open the sink later.
 */
export function txnWriter(sink: () => { write(events: readonly SinkEvent[], ctx: WriteContext): Promise<void> }, first: number) {
  let txn = first;
  return async (evs: ChangeEvent[], commit = true): Promise<SinkEvent[]> => {
    const t = txn++;
    const batch = evs.map((e, i) => makeSinkEvent(e, t, i));
    await sink().write(batch, { signal: new AbortController().signal, commit: commit ? String(t) : null });
    return batch;
  };
}
