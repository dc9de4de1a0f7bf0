import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, TributaryError } from '../core/errors.js';

/**
 * One parked event, as the dead-letter store keeps it. The envelope is kept as its JSON text
 * (`envelope`), never parsed and printed again, so numbers beyond a double's precision stay
 * exact when the event is retried or shown.
 */
export interface StoredDeadLetter {
  /**
   * The event's fence (SinkEvent.fence): unique in the pipeline and sorting like the stream,
   * so the store's id order is the order the events came in, and parking the same event
   * again (after a crash, a rewind) replaces it instead of adding a copy.
   */
  id: string;
  pipeline: string;
  sink: string;
  /** `schema.table` or `db.table`. */
  table: string;
  /** The event's key (null for events without one, e.g. a truncate). */
  key: unknown;
  /** Serialized position of the event's transaction, and its index in it. */
  position: string;
  index: number;
  /** The event's log offset (stream: log). */
  offset?: number;
  /** Failed writes of this event on its own (0: it was parked behind an earlier dead letter of its key). */
  attempts: number;
  error: { code?: string; message: string };
  /** ISO-8601. */
  first_failed_at: string;
  last_failed_at: string;
  /** The envelope as one JSON line. */
  envelope: string;
}

/** What happened to dead letters that left the store. */
export interface DeadLetterRemoval {
  outcome: 'delivered' | 'discarded';
  /** Why they were discarded (required for a discard). */
  reason?: string;
  /** ISO-8601. */
  at: string;
}

/**
 * The dead letters of one sink. Every write is durable when it resolves: a parked event is
 * in the store before the sink's checkpoint moves past it, so it is never lost between the
 * two. Only the process holding the pipeline's lock (or lease) writes; readers (`dlq list`)
 * may read while it runs.
 */
export interface DeadLetterQueue {
  /** Every dead letter, in id (= stream) order. */
  list(): Promise<StoredDeadLetter[]>;
  /** Add or replace (same id) dead letters, durably. */
  put(items: StoredDeadLetter[]): Promise<void>;
  /** Remove dead letters durably, and record why in the sink's dead-letter history. */
  remove(items: StoredDeadLetter[], why: DeadLetterRemoval): Promise<void>;
  /** The latest removals, newest last (at most the last 1000 for the file store, 10000 for Redis). */
  history(): Promise<(DeadLetterRemoval & { ids: string[] })[]>;
}

/** Sort by id: the stream order of the events. */
export function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The file store's dead letters: a journal `<dir>/dlq.<sink>.jsonl` beside the checkpoints.
 * Each line is `{"put":[...]}` or `{"remove":[ids],...}`, appended and fsynced; the queue is
 * the journal replayed. When removed entries outweigh the live ones the journal is rewritten
 * (temporary file, fsync, rename, directory fsync), so it stays about the size of what is
 * parked. A torn last line (a crash during an append) is ignored: that append never
 * resolved, so nothing relied on it. Removals are also appended to `dlq.<sink>.history.jsonl`
 * (with the reason of a discard and the removed events), the audit trail of discards.
 */
export class FileDeadLetters implements DeadLetterQueue {
  private readonly path: string;
  private readonly historyPath: string;

  constructor(
    private readonly dir: string,
    sink: string,
  ) {
    const s = encodeURIComponent(sink);
    this.path = join(dir, `dlq.${s}.jsonl`);
    this.historyPath = join(dir, `dlq.${s}.history.jsonl`);
  }

  private async replay(): Promise<{ items: Map<string, StoredDeadLetter>; lines: number }> {
    const items = new Map<string, StoredDeadLetter>();
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { items, lines: 0 };
      throw err;
    }
    const lines = text.split('\n');
    // A final piece without its newline is an append that never completed.
    if (lines.at(-1) !== '') lines.pop();
    let n = 0;
    for (const line of lines) {
      if (!line) continue;
      n++;
      let rec: { put?: StoredDeadLetter[]; remove?: string[] };
      try {
        rec = JSON.parse(line);
      } catch {
        throw new TributaryError(ErrorCodes.DLQ_STORE, `the dead-letter journal ${this.path} has a damaged line (${n})`, {
          fix: 'restore it from a backup or move it away; each line is JSON ({"put":[...]} or {"remove":[...]})',
        });
      }
      for (const it of rec.put ?? []) items.set(it.id, it);
      for (const id of rec.remove ?? []) items.delete(id);
    }
    return { items, lines: n };
  }

  async list(): Promise<StoredDeadLetter[]> {
    return [...(await this.replay()).items.values()].sort(byId);
  }

  async put(items: StoredDeadLetter[]): Promise<void> {
    if (!items.length) return;
    await this.append(this.path, JSON.stringify({ put: items }) + '\n');
  }

  async remove(items: StoredDeadLetter[], why: DeadLetterRemoval): Promise<void> {
    if (!items.length) return;
    const ids = items.map((i) => i.id);
    // The history first: a crash between the two leaves the item parked and its removal
    // noted, never an item gone without a trace.
    await this.append(this.historyPath, JSON.stringify({ ...why, ids, ...(why.outcome === 'discarded' ? { items } : {}) }) + '\n');
    await this.append(this.path, JSON.stringify({ remove: ids, outcome: why.outcome, at: why.at }) + '\n');
    const { items: live, lines } = await this.replay();
    if (lines > 2 * live.size + 64) await this.rewrite([...live.values()].sort(byId));
  }

  async history(): Promise<(DeadLetterRemoval & { ids: string[] })[]> {
    try {
      const lines = (await readFile(this.historyPath, 'utf8')).split('\n').filter((l) => l.endsWith('}'));
      return lines.slice(-1000).map((l) => {
        const { items: _items, ...rest } = JSON.parse(l) as DeadLetterRemoval & { ids: string[]; items?: unknown };
        return rest;
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  private async append(path: string, text: string): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      const fh = await open(path, 'a');
      try {
        await fh.write(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw storeError(path, err);
    }
  }

  private async rewrite(items: StoredDeadLetter[]): Promise<void> {
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      const fh = await open(tmp, 'w');
      try {
        if (items.length) await fh.write(JSON.stringify({ put: items }) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      const dh = await open(this.dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (err) {
      throw storeError(this.path, err);
    }
  }
}

function storeError(path: string, err: unknown): TributaryError {
  return new TributaryError(ErrorCodes.DEAD_LETTER, `cannot write the dead-letter store ${path}: ${(err as Error).message}`, {
    fix: 'make state.dir writable with free space; the event was not skipped and is read again after a restart',
    cause: err,
    retryable: true,
  });
}

/** Dead letters held in memory: for stores without a dead-letter queue of their own (tests). */
export class MemoryDeadLetters implements DeadLetterQueue {
  private readonly items = new Map<string, StoredDeadLetter>();
  private readonly removed: (DeadLetterRemoval & { ids: string[] })[] = [];
  async list(): Promise<StoredDeadLetter[]> {
    return [...this.items.values()].sort(byId);
  }
  async put(items: StoredDeadLetter[]): Promise<void> {
    for (const it of items) this.items.set(it.id, it);
  }
  async remove(items: StoredDeadLetter[], why: DeadLetterRemoval): Promise<void> {
    for (const it of items) this.items.delete(it.id);
    this.removed.push({ ...why, ids: items.map((i) => i.id) });
  }
  async history(): Promise<(DeadLetterRemoval & { ids: string[] })[]> {
    return this.removed.slice();
  }
}
